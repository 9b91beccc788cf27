package registry

import (
	"os"

	"golang.org/x/sys/unix"
)

// startWriteback asks the kernel to start writing [off, off+n) of f to disk
// now, without waiting. Pull calls it after each chunk so that the single
// fsync at the end of a file finds little left to write, instead of a whole
// model's dirty pages. Errors are ignored: the final fsync reports real
// ones.
func startWriteback(f *os.File, off, n int64) {
	_ = unix.SyncFileRange(int(f.Fd()), off, n, unix.SYNC_FILE_RANGE_WRITE) // only a hint; the final fsync reports real errors
}
