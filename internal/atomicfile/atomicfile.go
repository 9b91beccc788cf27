// Package atomicfile is the one place where deltactl makes a file or a folder
// appear complete or not at all: write to a temporary name beside the target,
// fsync it, rename it into place, fsync the parent folder.
//
// The policy, the same for every caller: every error is returned, except an
// fsync of a folder that the filesystem cannot sync (EINVAL, ENOTSUP: some
// network and FUSE filesystems), which is skipped because the rename itself
// has already happened and there is nothing more the caller could do.
package atomicfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// SyncDir fsyncs the folder dir so that entries created or renamed in it are
// durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	cerr := d.Close()
	if err != nil && !unsyncable(err) {
		return fmt.Errorf("fsync %s: %w", dir, err)
	}
	if cerr != nil {
		return fmt.Errorf("close %s: %w", dir, cerr)
	}
	return nil
}

// unsyncable reports an fsync error meaning "this filesystem does not sync
// folders", as opposed to a failed write-back.
func unsyncable(err error) bool {
	return errors.Is(err, syscall.EINVAL) || errors.Is(err, syscall.ENOTSUP) || errors.Is(err, os.ErrInvalid)
}

// SyncTree fsyncs root and every folder under it (the files themselves are
// expected to have been fsynced when they were written).
func SyncTree(root string) error {
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return SyncDir(p)
		}
		return nil
	})
}

// WriteFile creates path with mode perm through a temporary file beside it:
// fill writes the content, then the file is fsynced, closed, renamed over
// path and the parent folder fsynced. On any error the temporary file is
// removed and path is left as it was.
func WriteFile(path string, perm os.FileMode, fill func(*os.File) error) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			_ = f.Close()      // already failed; the first error is the one to report
			_ = os.Remove(tmp) // best effort: a leftover .tmp- file is harmless
		}
	}()
	if err = fill(f); err != nil {
		return err
	}
	if err = f.Chmod(perm); err != nil { // CreateTemp makes 0600
		return err
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", tmp, err)
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp, path); err != nil {
		return err
	}
	return SyncDir(dir)
}

// WriteBytes is WriteFile for content already in memory.
func WriteBytes(path string, perm os.FileMode, data []byte) error {
	return WriteFile(path, perm, func(f *os.File) error {
		_, err := f.Write(data)
		return err
	})
}

// TempDirBeside creates an empty hidden folder next to dst (same filesystem,
// so CommitDir's rename is atomic) and returns its path.
func TempDirBeside(dst string) (string, error) {
	dir, base := filepath.Split(filepath.Clean(dst))
	if dir == "" {
		dir = "."
	}
	return os.MkdirTemp(dir, "."+base+".tmp-")
}

// CommitDir makes the finished folder tmp appear at dst: it fsyncs every
// folder under tmp, renames tmp to dst, and fsyncs dst's parent. dst must not
// exist or be an empty folder, which is replaced atomically; a non-empty dst
// is refused by rename(2) itself (ENOTEMPTY/EEXIST), so nothing is ever
// mixed into or lost from an existing folder.
func CommitDir(tmp, dst string) error {
	if err := SyncTree(tmp); err != nil {
		return err
	}
	// os.Rename refuses any existing folder; rename(2) replaces an empty one.
	if err := syscall.Rename(tmp, dst); err != nil {
		return &os.LinkError{Op: "rename", Old: tmp, New: dst, Err: err}
	}
	return SyncDir(filepath.Dir(filepath.Clean(dst)))
}

// ReplaceDir is CommitDir for a dst that may hold files: an existing dst is
// first renamed aside to a hidden name beside it, tmp is renamed to dst, and
// only then is the old folder removed. A crash leaves either the old or the
// new folder at dst (plus a stray .DST.old-XXXX at worst); if the second
// rename fails the old folder is put back.
func ReplaceDir(tmp, dst string) error {
	dst = filepath.Clean(dst)
	if err := SyncTree(tmp); err != nil {
		return err
	}
	var old string
	if _, err := os.Lstat(dst); err == nil {
		if err := os.Remove(dst); err != nil { // succeeds only if empty
			dir, base := filepath.Split(dst)
			if dir == "" {
				dir = "."
			}
			aside, err := os.MkdirTemp(dir, "."+base+".old-")
			if err != nil {
				return err
			}
			// rename(2) replaces the empty placeholder; it only reserved the name.
			if err := syscall.Rename(dst, aside); err != nil {
				_ = os.Remove(aside) // best effort: an empty hidden folder is harmless
				return &os.LinkError{Op: "rename", Old: dst, New: aside, Err: err}
			}
			old = aside
		}
	}
	if err := os.Rename(tmp, dst); err != nil {
		if old != "" {
			_ = os.Rename(old, dst) // best effort: the rename error below is the one to report
		}
		return err
	}
	if err := SyncDir(filepath.Dir(dst)); err != nil {
		return err
	}
	if old != "" {
		if err := os.RemoveAll(old); err != nil {
			return fmt.Errorf("%s is in place but the old folder %s could not be removed: %w", dst, old, err)
		}
	}
	return nil
}
