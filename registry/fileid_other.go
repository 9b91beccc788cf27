//go:build !linux

package registry

import "os"

// fileIdentity is unavailable here; the cache relies on size and mtime only.
func fileIdentity(fi os.FileInfo) (inode uint64, ctimeNano int64) { return 0, 0 }
