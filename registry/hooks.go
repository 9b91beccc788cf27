package registry

import "github.com/opencontainers/go-digest"

// testHooks let tests stop an operation at a chosen point to race another
// against it. The zero value does nothing; nothing outside tests sets them.
type testHooks struct {
	// afterExists runs in a push right after the existence check of blob d.
	afterExists func(d digest.Digest, present bool)
	// afterRead runs in a push right after a chunk of file was read.
	afterRead func(file string)
	// commitDir replaces atomicfile.CommitDir in pull (to fail as renaming
	// onto a mount point does); isMount replaces mount point detection.
	commitDir func(tmp, dst string) error
	isMount   func(dir string) bool
}
