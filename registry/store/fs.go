package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/deltactl/deltactl/internal/atomicfile"
	"golang.org/x/sys/unix"
)

// FS is the local-folder backend. Every key is a file under the root.
//
// Crash safety: Put writes a temp file in the destination folder, fsyncs it,
// moves it into place with a create-only rename (renameat2 RENAME_NOREPLACE,
// or link+unlink on filesystems without it) and fsyncs the folder, so a key
// is either absent or complete. Swap holds an flock(2) on a per-key lock file
// (".lock.<name>" beside the key) while it compares and replaces, so it is
// safe between goroutines and between processes on the same host. flock is
// not reliable over NFS; use the s3 backend for shared network storage.
//
// Temp files (".tmp-*") that a crash left behind are invisible to List and
// removed by CleanTemp. Lock files are left in place on purpose: unlinking a
// lock file that another process may hold would let two writers in.
//
// ETags: for objects up to 1 MiB (refs, manifests) the ETag is the sha256 of
// the content, so it is stable and cheap to recompute; larger objects get an
// ETag built from size, modification time and inode. A Swap that finds the
// same content it read before succeeds, which is the right outcome for refs.
// List leaves ETag empty (computing it would read every small file); call
// Stat when an ETag is needed.
type FS struct {
	root string
	opt  FSOptions
}

// FSOptions tune an fs backend.
type FSOptions struct {
	// Create makes the root folder now. Without it a missing root is made
	// by the first write, and reads of a missing root fail with
	// ErrNoRegistry ("no registry at PATH").
	Create bool
	// LockTimeout bounds how long Swap waits for another writer's per-key
	// lock (DefaultFSLockTimeout when 0); then it fails with ErrLocked,
	// naming the holder.
	LockTimeout time.Duration
	// Notify receives a line naming the holder while Swap waits for a lock.
	Notify func(msg string)
}

// DefaultFSLockTimeout is how long Swap waits for a per-key lock. A ref
// swap holds it for milliseconds; a holder that keeps it this long is
// stuck (stopped, or hung on a dead mount).
const DefaultFSLockTimeout = 30 * time.Second

// Compile-time checks of the interfaces the fs backend's types implement.
var (
	_ Backend       = (*FS)(nil)
	_ io.ReadCloser = limitedFile{}
	_ io.Reader     = ctxReader{}
)

// ErrNotRegular is returned (wrapped, naming the key) when a key's file is a
// symlink, FIFO, device or folder: the fs backend never follows a link out
// of the registry (a ref linked to a secrets file) nor blocks on a FIFO.
var ErrNotRegular = errors.New("not a regular file")

// etagContentMax is the largest object whose ETag is a content hash.
const etagContentMax = 1 << 20

// tempPrefix marks temp files; the '.' keeps them out of the key space.
const tempPrefix = ".tmp-"

// NewFS opens a registry folder at root, creating it if needed (tests and
// library callers that own the folder). The CLI goes through OpenWith,
// which does not create it.
func NewFS(root string) (*FS, error) {
	return NewFSWith(root, FSOptions{Create: true})
}

// NewFSWith opens a registry folder at root with opt. root may be missing
// unless opt.Create (see FSOptions); it must not be anything but a folder.
func NewFSWith(root string, opt FSOptions) (*FS, error) {
	if root == "" {
		return nil, errors.New("fs: empty root path")
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("fs %s: %w", root, err)
	}
	if opt.Create {
		if err := os.MkdirAll(abs, 0o755); err != nil {
			return nil, fmt.Errorf("fs %s: %w", abs, err)
		}
	}
	fi, err := os.Stat(abs)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		// Created by the first write; reads report ErrNoRegistry.
	case err != nil:
		return nil, fmt.Errorf("fs %s: %w", abs, err)
	case !fi.IsDir():
		return nil, fmt.Errorf("fs %s: not a directory", abs)
	}
	return &FS{root: abs, opt: opt}, nil
}

// Location returns the absolute root folder.
func (f *FS) Location() string { return f.root }

func (f *FS) path(key string) string { return filepath.Join(f.root, filepath.FromSlash(key)) }

func (f *FS) errorf(op, key string, err error) error {
	if errors.Is(err, ErrNotFound) && f.rootMissing() {
		return fmt.Errorf("fs %s: %w at %s (push creates one, or run `deltactl init`)", f.root, ErrNoRegistry, f.root)
	}
	if errors.Is(err, fs.ErrPermission) {
		return fmt.Errorf("fs %s: %s %q: %w: %w", f.root, op, key, ErrAccessDenied, err)
	}
	return fmt.Errorf("fs %s: %s %q: %w", f.root, op, key, err)
}

// rootMissing reports whether the root folder does not exist (yet).
func (f *FS) rootMissing() bool {
	_, err := os.Stat(f.root)
	return errors.Is(err, fs.ErrNotExist)
}

// Put implements Backend.
func (f *FS) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	if err := ValidKey(key); err != nil {
		return fmt.Errorf("fs %s: put: %w", f.root, err)
	}
	final := f.path(key)
	// Cheap early answer; the rename below is what actually guarantees create-only.
	if fi, err := os.Lstat(final); err == nil {
		if fi.IsDir() {
			return f.errorf("put", key, fmt.Errorf("%w: it is a folder of other keys", ErrBadKey))
		}
		return f.errorf("put", key, ErrExists)
	}
	dir := filepath.Dir(final)
	if err := f.mkdirAllSync(dir); err != nil {
		return f.errorf("put", key, err)
	}
	tmp, err := f.writeTemp(ctx, dir, r, size)
	if err != nil {
		return f.errorf("put", key, err)
	}
	defer func() { _ = os.Remove(tmp) }() // fails (ENOENT) after a successful rename; otherwise a leftover is CleanTemp's
	if err := renameNoReplace(tmp, final); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return f.errorf("put", key, ErrExists)
		}
		return f.errorf("put", key, err)
	}
	if err := atomicfile.SyncDir(dir); err != nil {
		return f.errorf("put", key, err)
	}
	return nil
}

// writeTemp copies r into a fresh fsynced temp file in dir and returns its path.
func (f *FS) writeTemp(ctx context.Context, dir string, r io.Reader, size int64) (string, error) {
	t, err := os.CreateTemp(dir, tempPrefix+"*")
	if err != nil {
		return "", err
	}
	name := t.Name()
	fail := func(err error) (string, error) {
		_ = t.Close()       // already failed; err is the one to report
		_ = os.Remove(name) // best effort: CleanTemp removes what is left
		return "", err
	}
	n, err := io.Copy(t, ctxReader{ctx, r})
	if err != nil {
		return fail(err)
	}
	if size >= 0 && n != size {
		return fail(fmt.Errorf("short input: got %d bytes, want %d", n, size))
	}
	if err := t.Chmod(0o644); err != nil {
		return fail(err)
	}
	if err := t.Sync(); err != nil {
		return fail(err)
	}
	if err := t.Close(); err != nil {
		_ = os.Remove(name) // best effort: CleanTemp removes what is left
		return "", err
	}
	return name, nil
}

// renameNoReplace moves oldpath to newpath, failing with fs.ErrExist if
// newpath exists. It never overwrites, even when racing another writer.
func renameNoReplace(oldpath, newpath string) error {
	err := unix.Renameat2(unix.AT_FDCWD, oldpath, unix.AT_FDCWD, newpath, unix.RENAME_NOREPLACE)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, unix.EEXIST):
		return fs.ErrExist
	case errors.Is(err, unix.EINVAL), errors.Is(err, unix.ENOSYS), errors.Is(err, unix.EOPNOTSUPP):
		// The filesystem lacks RENAME_NOREPLACE: link(2) is create-only too.
		if err := os.Link(oldpath, newpath); err != nil {
			if errors.Is(err, fs.ErrExist) {
				return fs.ErrExist
			}
			return err
		}
		return os.Remove(oldpath)
	default:
		return &os.LinkError{Op: "renameat2", Old: oldpath, New: newpath, Err: err}
	}
}

// mkdirAllSync creates dir and missing parents below the root, fsyncing each
// parent after a child appears so the new entries survive a crash.
func (f *FS) mkdirAllSync(dir string) error {
	if fi, err := os.Stat(dir); err == nil && fi.IsDir() {
		return nil
	}
	if dir == f.root {
		// The registry's first write: make the root and any missing parents.
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		return atomicfile.SyncDir(filepath.Dir(dir))
	}
	parent := filepath.Dir(dir)
	if parent != dir && strings.HasPrefix(parent, f.root) {
		if err := f.mkdirAllSync(parent); err != nil {
			return err
		}
	}
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	return atomicfile.SyncDir(parent)
}

// Get implements Backend. A range that starts past the end is an error; one
// that runs past the end is cut short, as S3 does.
func (f *FS) Get(ctx context.Context, key string, off, length int64) (io.ReadCloser, error) {
	if err := ValidKey(key); err != nil {
		return nil, fmt.Errorf("fs %s: get: %w", f.root, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, f.errorf("get", key, err)
	}
	file, fi, err := openKey(f.path(key))
	if err != nil {
		return nil, f.errorf("get", key, err)
	}
	if off < 0 || off > fi.Size() {
		_ = file.Close() // read only, and failing anyway
		return nil, f.errorf("get", key, fmt.Errorf("range start %d outside object of %d bytes", off, fi.Size()))
	}
	if _, err := file.Seek(off, io.SeekStart); err != nil {
		_ = file.Close() // read only, and failing anyway
		return nil, f.errorf("get", key, err)
	}
	if length < 0 {
		return file, nil
	}
	return limitedFile{io.LimitReader(file, length), file}, nil
}

// openKey opens the file at p for reading if it is a regular file. The last
// component is opened with O_NOFOLLOW, so a key that is a symlink is refused
// rather than followed out of the registry, and with O_NONBLOCK, so a FIFO
// is refused at once rather than waited on forever. (A folder of the
// registry may still be a symlink: operators put blobs/ on another disk.)
func openKey(p string) (*os.File, os.FileInfo, error) {
	file, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		if errors.Is(err, syscall.ELOOP) {
			return nil, nil, fmt.Errorf("%w: it is a symlink", ErrNotRegular)
		}
		return nil, nil, notFound(err)
	}
	fi, err := file.Stat()
	if err != nil {
		_ = file.Close() // read only, and failing anyway
		return nil, nil, err
	}
	if fi.IsDir() {
		_ = file.Close()             // read only, and failing anyway
		return nil, nil, ErrNotFound // a folder of other keys is not an object
	}
	if !fi.Mode().IsRegular() {
		_ = file.Close() // read only, and failing anyway
		return nil, nil, fmt.Errorf("%w: it is a %s", ErrNotRegular, typeName(fi.Mode()))
	}
	return file, fi, nil
}

// typeName names a non-regular file type for errors.
func typeName(m fs.FileMode) string {
	switch {
	case m&fs.ModeNamedPipe != 0:
		return "FIFO"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeDevice != 0:
		return "device"
	}
	return m.Type().String()
}

type limitedFile struct {
	io.Reader
	io.Closer
}

func notFound(err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return ErrNotFound
	}
	return err
}

// Stat implements Backend.
func (f *FS) Stat(ctx context.Context, key string) (Info, error) {
	if err := ValidKey(key); err != nil {
		return Info{}, fmt.Errorf("fs %s: stat: %w", f.root, err)
	}
	file, fi, err := openKey(f.path(key))
	if err != nil {
		return Info{}, f.errorf("stat", key, err)
	}
	defer func() { _ = file.Close() }() // read only
	tag, err := fileETag(file, fi)
	if err != nil {
		return Info{}, f.errorf("stat", key, err)
	}
	return Info{Key: key, Size: fi.Size(), ModTime: fi.ModTime(), ETag: tag}, nil
}

// fileETag computes the ETag of an open file (see the FS doc).
func fileETag(file *os.File, fi os.FileInfo) (string, error) {
	if fi.Size() <= etagContentMax {
		h := sha256.New()
		if _, err := io.Copy(h, io.NewSectionReader(file, 0, fi.Size()+1)); err != nil {
			return "", err
		}
		return hex.EncodeToString(h.Sum(nil)), nil
	}
	var ino uint64
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		ino = st.Ino
	}
	return fmt.Sprintf("m%x-%x-%x", fi.Size(), fi.ModTime().UnixNano(), ino), nil
}

// List implements Backend. Folders are walked in lexical order.
func (f *FS) List(ctx context.Context, prefix string, fn func(Info) error) error {
	if err := ValidPrefix(prefix); err != nil {
		return fmt.Errorf("fs %s: list: %w", f.root, err)
	}
	start := prefix
	if !strings.HasSuffix(start, "/") {
		start = path.Dir(start)
	}
	startDir := filepath.Join(f.root, filepath.FromSlash(start))
	err := filepath.WalkDir(startDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				if f.rootMissing() {
					return fmt.Errorf("%w at %s (push creates one, or run `deltactl init`)", ErrNoRegistry, f.root)
				}
				return nil // the prefix's folder does not exist (yet): nothing to list
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if strings.HasPrefix(d.Name(), ".") && p != startDir {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil // temp, lock and other reserved files
		}
		if d.IsDir() {
			return nil
		}
		// Symlinks, FIFOs and the like are listed too, so whoever reads
		// them learns they are damaged (Get refuses them: ErrNotRegular)
		// instead of their vanishing from ls and verify.
		rel, err := filepath.Rel(f.root, p)
		if err != nil {
			return err
		}
		key := filepath.ToSlash(rel)
		if !strings.HasPrefix(key, prefix) {
			return nil
		}
		fi, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil // deleted while we walked
		}
		if err != nil {
			return err
		}
		return fn(Info{Key: key, Size: fi.Size(), ModTime: fi.ModTime()})
	})
	if err != nil {
		return fmt.Errorf("fs %s: list %q: %w", f.root, prefix, err)
	}
	return nil
}

// Delete implements Backend.
func (f *FS) Delete(ctx context.Context, key string) error {
	if err := ValidKey(key); err != nil {
		return fmt.Errorf("fs %s: delete: %w", f.root, err)
	}
	if err := ctx.Err(); err != nil {
		return f.errorf("delete", key, err)
	}
	p := f.path(key)
	if err := os.Remove(p); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return f.errorf("delete", key, err)
	}
	if err := atomicfile.SyncDir(filepath.Dir(p)); err != nil {
		return f.errorf("delete", key, err)
	}
	return nil
}

// Swap implements Backend under a per-key flock.
func (f *FS) Swap(ctx context.Context, key, oldETag string, data []byte) (string, error) {
	if err := ValidKey(key); err != nil {
		return "", fmt.Errorf("fs %s: swap: %w", f.root, err)
	}
	final := f.path(key)
	dir := filepath.Dir(final)
	if err := f.mkdirAllSync(dir); err != nil {
		return "", f.errorf("swap", key, err)
	}
	unlock, err := f.lockFile(ctx, filepath.Join(dir, ".lock."+filepath.Base(final)))
	if err != nil {
		return "", f.errorf("swap", key, err)
	}
	defer unlock()

	cur := ""
	if file, fi, err := openKey(final); err == nil {
		cur, err = fileETag(file, fi)
		_ = file.Close() // read only: the ETag is computed
		if err != nil {
			return "", f.errorf("swap", key, err)
		}
	} else if !errors.Is(err, ErrNotFound) {
		return "", f.errorf("swap", key, err)
	}
	if cur != oldETag {
		if oldETag == "" {
			return "", f.errorf("swap", key, fmt.Errorf("%w: created by someone else", ErrConflict))
		}
		if cur == "" {
			return "", f.errorf("swap", key, fmt.Errorf("%w: deleted by someone else", ErrConflict))
		}
		return "", f.errorf("swap", key, fmt.Errorf("%w: expected version %s, found %s", ErrConflict, oldETag, cur))
	}
	tmp, err := f.writeTemp(ctx, dir, bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return "", f.errorf("swap", key, err)
	}
	defer func() { _ = os.Remove(tmp) }() // fails (ENOENT) after a successful rename; otherwise a leftover is CleanTemp's
	file, err := os.Open(tmp)
	if err != nil {
		return "", f.errorf("swap", key, err)
	}
	fi, err := file.Stat()
	var tag string
	if err == nil {
		tag, err = fileETag(file, fi)
	}
	_ = file.Close() // read only: the ETag is computed
	if err != nil {
		return "", f.errorf("swap", key, err)
	}
	if err := os.Rename(tmp, final); err != nil {
		return "", f.errorf("swap", key, err)
	}
	if err := atomicfile.SyncDir(dir); err != nil {
		return "", f.errorf("swap", key, err)
	}
	return tag, nil
}

// lockFile takes an exclusive flock on path, waiting at most the lock
// timeout (and no longer than ctx). flock locks belong to the open file
// description, so two goroutines of one process exclude each other just as
// two processes do. The holder writes "pid P on HOST since TIME" into the
// file, so a waiter can say who holds it: after a second of waiting through
// Notify (then every 10 s), and in the ErrLocked error on timeout.
func (f *FS) lockFile(ctx context.Context, path string) (unlock func(), err error) {
	file, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	timeout := f.opt.LockTimeout
	if timeout <= 0 {
		timeout = DefaultFSLockTimeout
	}
	start := time.Now()
	nextNote := start.Add(time.Second)
	wait := time.Millisecond
	for {
		err := unix.Flock(int(file.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			host, _ := os.Hostname() // "" on failure: the note only helps a person
			note := fmt.Sprintf("pid %d on %s since %s", os.Getpid(), host, time.Now().UTC().Format(time.RFC3339))
			if file.Truncate(0) == nil {
				_, _ = file.WriteAt([]byte(note), 0) // informational only: the flock is the lock
			}
			return func() {
				_ = unix.Flock(int(file.Fd()), unix.LOCK_UN) // Close releases the lock too
				_ = file.Close()                             // the note need not be durable
			}, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) && !errors.Is(err, unix.EINTR) {
			_ = file.Close() // nothing was written to the lock file
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		now := time.Now()
		if now.Sub(start) >= timeout {
			holder := lockHolder(file)
			_ = file.Close() // nothing was written to the lock file
			return nil, fmt.Errorf("lock %s: %w: held by %s; gave up after %s (a stuck holder: find and stop it)",
				path, ErrLocked, holder, timeout)
		}
		if f.opt.Notify != nil && !now.Before(nextNote) {
			f.opt.Notify(fmt.Sprintf("waiting for lock %s, held by %s (waited %s, giving up after %s)",
				path, lockHolder(file), now.Sub(start).Round(time.Second), timeout))
			nextNote = now.Add(10 * time.Second)
		}
		select {
		case <-ctx.Done():
			_ = file.Close() // nothing was written to the lock file
			return nil, fmt.Errorf("lock %s: %w", path, ctx.Err())
		case <-time.After(wait):
		}
		if wait < 50*time.Millisecond {
			wait *= 2
		}
	}
}

// lockHolder reads the note the holder of a lock file wrote.
func lockHolder(file *os.File) string {
	buf := make([]byte, 200)
	n, _ := file.ReadAt(buf, 0) // io.EOF for a short note; what was read is used
	note := strings.TrimSpace(string(buf[:n]))
	if note == "" || strings.ContainsFunc(note, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return "an unknown process"
	}
	return note
}

// CleanTemp removes temp files left by interrupted writes that are older
// than olderThan (a running writer's temp file is young) and reports how
// many it removed.
func (f *FS) CleanTemp(ctx context.Context, olderThan time.Duration) (int, error) {
	n := 0
	err := f.walkTemp(ctx, olderThan, func(p string, _ fs.FileInfo) {
		if err := os.Remove(p); err == nil {
			n++
		}
	})
	if err != nil {
		return n, fmt.Errorf("fs %s: clean temp files: %w", f.root, err)
	}
	return n, nil
}

// TempFiles counts the temp files older than olderThan (all of them when
// olderThan <= 0) and their bytes, without removing anything.
func (f *FS) TempFiles(ctx context.Context, olderThan time.Duration) (int, int64, error) {
	n, size := 0, int64(0)
	err := f.walkTemp(ctx, olderThan, func(_ string, fi fs.FileInfo) {
		n++
		size += fi.Size()
	})
	if err != nil {
		return n, size, fmt.Errorf("fs %s: list temp files: %w", f.root, err)
	}
	return n, size, nil
}

// walkTemp calls fn for every temp file under the root older than olderThan.
func (f *FS) walkTemp(ctx context.Context, olderThan time.Duration, fn func(p string, fi fs.FileInfo)) error {
	cutoff := time.Now().Add(-olderThan)
	return filepath.WalkDir(f.root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if d.IsDir() || !strings.HasPrefix(d.Name(), tempPrefix) {
			return nil
		}
		fi, err := d.Info()
		if err != nil || (olderThan > 0 && fi.ModTime().After(cutoff)) {
			return nil
		}
		fn(p, fi)
		return nil
	})
}

// ctxReader stops a long copy when ctx is cancelled.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
