//go:build linux

package registry

import (
	"os"
	"syscall"
)

// fileIdentity returns the inode and ctime (ns) of a file, which change when
// it is replaced or rewritten even if size and mtime are restored.
func fileIdentity(fi os.FileInfo) (inode uint64, ctimeNano int64) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, 0
	}
	return uint64(st.Ino), int64(st.Ctim.Sec)*1e9 + int64(st.Ctim.Nsec)
}
