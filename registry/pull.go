package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/deltactl/deltactl/format"
	"github.com/deltactl/deltactl/internal/atomicfile"
	"github.com/deltactl/deltactl/registry/codec"

	"github.com/opencontainers/go-digest"
)

// ErrNotEmpty is returned (wrapped) when pull's target folder has content.
var ErrNotEmpty = errors.New("target folder is not empty")

// PullResult is what Pull reports.
type PullResult struct {
	Ref    string        `json:"ref"`
	Digest digest.Digest `json:"digest"`
	Kind   string        `json:"kind"`
	Method format.Method `json:"method,omitempty"`
	Base   digest.Digest `json:"base,omitempty"`
	Dir    string        `json:"dir"`
	Files  int           `json:"files"`
	Bytes  int64         `json:"bytes"`
}

// pullJob is one blob written at one place of one file.
type pullJob struct {
	file int // index in the manifest's files
	off  int64
	c    Chunk
}

// Pull rebuilds the folder pushed under ref into dir, byte for byte.
//
// Every blob is decoded and re-hashed before it is written. The files are
// written into a temporary folder beside dir, synced, and renamed to dir
// only when complete, so dir is either absent (or the empty folder it was)
// or the whole verified content. dir must not exist or be empty; an empty
// mount point is filled in place instead (see fillInPlace). For a delta,
// the delta's own folder is written (an adapter folder, or for a full delta
// the fine-tuned model); pull the base separately.
func (r *Registry) Pull(ctx context.Context, ref, dir string) (*PullResult, error) {
	tr, d, m, err := r.openRef(ctx, "pull", ref)
	if err != nil {
		return nil, err
	}
	defer r.bases.drop()
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if err := r.pullInto(ctx, m, abs); err != nil {
		return nil, fmt.Errorf("pull %s: %w", tr, err)
	}
	return &PullResult{Ref: tr.String(), Digest: d, Kind: m.Kind, Method: m.Method, Base: m.Base,
		Dir: abs, Files: len(m.Files), Bytes: m.LogicalSize()}, nil
}

// pullInto writes m's files into a temporary folder beside abs (inside it
// for a mount point), and renames it to abs (moves its entries into abs)
// once every file is complete, verified and synced.
func (r *Registry) pullInto(ctx context.Context, m *Manifest, abs string) (err error) {
	removeStalePullTemps(abs)
	if err := checkEmptyDir(abs); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o755); err != nil {
		return err
	}
	// An empty mount point cannot be replaced by a rename (EBUSY), and the
	// folder beside it is on another filesystem: fill it in place, through
	// a temp folder inside it.
	isMount := isMountPoint
	if h := r.hooks.isMount; h != nil {
		isMount = h
	}
	inPlace := false
	if fi, err := os.Stat(abs); err == nil && fi.IsDir() && isMount(abs) {
		inPlace = true
	}
	var tmp string
	if inPlace {
		tmp, err = os.MkdirTemp(abs, inPlacePrefix)
	} else {
		tmp, err = atomicfile.TempDirBeside(abs)
	}
	if err != nil {
		return err
	}
	t := &pullTree{m: m}
	defer func() {
		t.closeAll()
		if err != nil {
			_ = os.RemoveAll(tmp) // best effort: a leftover hidden temp folder is harmless
		}
	}()
	if err := t.create(tmp); err != nil {
		return err
	}
	mt := newMeter(r.opt.Progress, StageDownload, m.LogicalSize())
	if err := runPool(ctx, r.inFlight(), len(t.jobs), func(ctx context.Context, i int) (err error) {
		j := t.jobs[i]
		f, err := t.acquire(j.file)
		if err != nil {
			return err
		}
		defer func() {
			if rerr := t.release(j.file, err == nil); err == nil {
				err = rerr
			}
		}()
		if err := r.pullBlob(ctx, j.c, f, j.off); err != nil {
			return err
		}
		mt.add(j.c.Size)
		return nil
	}); err != nil {
		return err
	}
	if inPlace {
		return fillInPlace(tmp, abs)
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	// CommitDir replaces an empty dir atomically and refuses a non-empty one.
	commit := atomicfile.CommitDir
	if h := r.hooks.commitDir; h != nil {
		commit = h
	}
	if err := commit(tmp, abs); err != nil {
		return fmt.Errorf("move into place: %w", err)
	}
	return nil
}

// pullTree is the temporary folder a pull writes, and the blobs to write
// into it. A file is open only while a job writes to it (reopened by the
// next one), so a pull holds at most one file per job in flight however
// many files the folder has; the job that writes a file's last blob syncs
// it, gives it its mode and closes it.
type pullTree struct {
	m    *Manifest
	jobs []pullJob

	mu    sync.Mutex
	files []pullFile // files[i] is m.Files[i]
}

// pullFile is the state of one file being pulled.
type pullFile struct {
	path  string
	f     *os.File // open while users > 0
	users int
	left  int // jobs not yet done
}

// create makes every file of t.m under tmp at its final size, closed, and
// plans where each blob goes. Files with no blobs are finished at once.
func (t *pullTree) create(tmp string) error {
	t.files = make([]pullFile, len(t.m.Files))
	for i, mf := range t.m.Files {
		p := filepath.Join(tmp, filepath.FromSlash(mf.Path))
		t.files[i].path = p
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return err
		}
		if err := f.Truncate(mf.Size); err != nil {
			_ = f.Close() // failing anyway; the folder is thrown away
			return fmt.Errorf("%s: %w", mf.Path, err)
		}
		off := int64(0)
		for _, c := range mf.pieces() {
			t.jobs = append(t.jobs, pullJob{file: i, off: off, c: c})
			t.files[i].left++
			off += c.Size
		}
		if t.files[i].left == 0 {
			if err := finishFile(f, &mf); err != nil {
				return err
			}
			continue
		}
		if err := f.Close(); err != nil {
			return fmt.Errorf("%s: %w", mf.Path, err)
		}
	}
	return nil
}

// acquire returns file i open for writing.
func (t *pullTree) acquire(i int) (*os.File, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	pf := &t.files[i]
	if pf.f == nil {
		f, err := os.OpenFile(pf.path, os.O_RDWR, 0)
		if err != nil {
			return nil, err
		}
		pf.f = f
	}
	pf.users++
	return pf.f, nil
}

// release ends a job's use of file i; done says the job succeeded. The last
// user closes the file, syncing it first when its last blob is written.
func (t *pullTree) release(i int, done bool) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	pf := &t.files[i]
	pf.users--
	if done {
		pf.left--
	}
	if pf.users > 0 {
		return nil
	}
	f := pf.f
	pf.f = nil
	if pf.left == 0 {
		return finishFile(f, &t.m.Files[i])
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("%s: %w", t.m.Files[i].Path, err)
	}
	return nil
}

// finishFile fsyncs f, gives it mf's mode and closes it, checking the close:
// it can report a failed write-back. startWriteback has been pushing each
// chunk to disk since it was written, so the fsync mostly waits for the
// last ones.
func finishFile(f *os.File, mf *File) error {
	mode := os.FileMode(mf.Mode) & os.ModePerm
	if mode == 0 {
		mode = 0o644
	}
	err := f.Sync()
	if err == nil {
		err = f.Chmod(mode)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("%s: %w", mf.Path, err)
	}
	return nil
}

// closeAll closes files a failed pull left open (their folder is thrown away).
func (t *pullTree) closeAll() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for i := range t.files {
		if f := t.files[i].f; f != nil {
			_ = f.Close() // only after a failure; the folder is removed
			t.files[i].f = nil
		}
	}
}

// inPlacePrefix names the temp folder of a pull filling a mount point.
const inPlacePrefix = ".deltactl-pull-"

// removeStalePullTemps removes what pulls to abs killed mid-way left: the
// hidden temp folders beside it (atomicfile.TempDirBeside's ".NAME.tmp-*")
// or inside it (a mount point filled in place), once older than
// DefaultGrace, since a pull to the same target may still be running. gc
// cannot find them: they are outside the registry. Failures are ignored:
// a leftover costs space, not correctness.
func removeStalePullTemps(abs string) {
	cutoff := time.Now().Add(-DefaultGrace)
	sweep := func(dir, prefix string) {
		ents, _ := os.ReadDir(dir) // a missing folder has nothing to sweep
		for _, e := range ents {
			if !e.IsDir() || !strings.HasPrefix(e.Name(), prefix) {
				continue
			}
			if fi, err := e.Info(); err == nil && fi.ModTime().Before(cutoff) {
				_ = os.RemoveAll(filepath.Join(dir, e.Name())) // best effort, see above
			}
		}
	}
	sweep(filepath.Dir(abs), "."+filepath.Base(abs)+".tmp-")
	sweep(abs, inPlacePrefix)
}

// fillInPlace moves the finished, synced content of tmp (a folder inside the
// empty folder dst) into dst, then removes tmp. It is not atomic as a whole:
// if a move fails, the entries already moved are moved back, so dst is left
// empty as it was.
func fillInPlace(tmp, dst string) error {
	if err := atomicfile.SyncTree(tmp); err != nil {
		return err
	}
	ents, err := os.ReadDir(tmp)
	if err != nil {
		return err
	}
	for i, e := range ents {
		if err := os.Rename(filepath.Join(tmp, e.Name()), filepath.Join(dst, e.Name())); err != nil {
			for _, back := range ents[:i] {
				_ = os.Rename(filepath.Join(dst, back.Name()), filepath.Join(tmp, back.Name())) // best effort; the caller removes tmp
			}
			return fmt.Errorf("move into place: %w", err)
		}
	}
	if err := os.Remove(tmp); err != nil {
		return err
	}
	return atomicfile.SyncDir(dst)
}

// checkEmptyDir accepts a missing path or an empty folder.
func checkEmptyDir(dir string) error {
	fi, err := os.Stat(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s: exists and is not a folder", dir)
	}
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer func() { _ = f.Close() }() // a folder opened only to list it
	if _, err := f.Readdirnames(1); err == nil {
		return fmt.Errorf("%s: %w", dir, ErrNotEmpty)
	} else if !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}

// pullBlob writes blob c at off in f, verified: the bytes written must hash
// to c.Digest, or an error wrapping ErrCorrupt is returned (the caller then
// throws the whole temporary folder away, so nothing unverified is ever
// renamed into place).
//
// A raw frame is streamed: each piece is hashed and written at its offset
// as it arrives, so the download, the hash and the write overlap and no
// chunk-sized buffer is needed. Other frames are read whole into a pooled
// buffer (bounded by the largest frame a blob of c.Size bytes can have) and
// decoded and hashed holding a CPU token.
func (r *Registry) pullBlob(ctx context.Context, c Chunk, f *os.File, off int64) error {
	rc, err := r.getObject(ctx, blobKey(c.Digest), 0, -1)
	if err != nil {
		return fmt.Errorf("blob %s: %w", c.Digest, err)
	}
	defer func() { _ = rc.Close() }() // read only: what was read is checked, a close error loses nothing
	corrupt := func(format string, a ...any) error {
		return fmt.Errorf("blob %s: %w: %s", c.Digest, ErrCorrupt, fmt.Sprintf(format, a...))
	}
	var hdr [rawHeaderLen]byte
	if _, err := io.ReadFull(rc, hdr[:]); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return corrupt("stored frame is shorter than a frame header")
		}
		return fmt.Errorf("blob %s: %w", c.Digest, err)
	}
	if h, err := codec.ParseHeader(hdr[:]); err == nil && h.Encoding == codec.Raw {
		if h.RawLen != c.Size {
			return corrupt("%d bytes, manifest says %d", h.RawLen, c.Size)
		}
		return r.streamRaw(ctx, c, rc, f, off)
	}
	// Decoding holds the output, its byte planes and, for XOR, the base:
	// take that from the decode budget first.
	weight := 3 * c.Size
	if codec.Encoding(hdr[5]) == codec.XOR { // the header is cut before its base digest
		weight += c.Size
	}
	if err := r.mem.acquire(ctx, weight); err != nil {
		return err
	}
	defer r.mem.release(weight)
	// Any valid frame of a c.Size-byte blob is at most a raw frame's size
	// plus the longest header; more is damage, and is not read. A pooled
	// chunk buffer takes it when it fits; otherwise the buffer grows with
	// the bytes actually stored, so a small frame under a large claimed
	// size costs only what it holds.
	limit := c.Size + frameHeaderMax
	var frame []byte
	if limit+1 <= int64(r.bufCap) {
		buf := r.getBuf(int(limit) + 1)
		defer r.putBuf(buf)
		n := copy(buf, hdr[:])
		m, err := io.ReadFull(rc, buf[n:])
		switch {
		case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
		case err != nil:
			return fmt.Errorf("blob %s: %w", c.Digest, err)
		default:
			return corrupt("stored frame is larger than any frame of a %d-byte blob", c.Size)
		}
		frame = buf[:n+m]
	} else {
		rest, err := io.ReadAll(io.LimitReader(rc, limit+1-rawHeaderLen))
		if err != nil {
			return fmt.Errorf("blob %s: %w", c.Digest, err)
		}
		if int64(len(rest)) > limit-rawHeaderLen {
			return corrupt("stored frame is larger than any frame of a %d-byte blob", c.Size)
		}
		frame = append(hdr[:], rest...)
	}
	base, err := r.xorBaseOf(ctx, frame, c.Size)
	if err != nil {
		return fmt.Errorf("blob %s: %w", c.Digest, err)
	}
	return r.withCPU(ctx, func() error {
		raw, err := r.decodeOnly(ctx, c.Digest, frame, base, c.Size)
		if err != nil {
			return err
		}
		if int64(len(raw)) != c.Size {
			return corrupt("%d bytes, manifest says %d", len(raw), c.Size)
		}
		// Hash and write piece by piece, each piece while it is still in
		// cache, rather than two passes over the whole chunk.
		h := digest.SHA256.Digester()
		for p := 0; p < len(raw); p += streamPiece {
			piece := raw[p:min(p+streamPiece, len(raw))]
			h.Hash().Write(piece)
			if _, err := f.WriteAt(piece, off+int64(p)); err != nil {
				return fmt.Errorf("blob %s: write %s: %w", c.Digest, f.Name(), err)
			}
		}
		if got := h.Digest(); got != c.Digest {
			return corrupt("decoded bytes hash to %s", got)
		}
		startWriteback(f, off, c.Size)
		return nil
	})
}

// streamPiece is how much of a raw frame is hashed and written at a time.
const streamPiece = 1 << 20

// streamRaw copies the payload of a raw frame from rc to f at off, hashing
// it on the way, and checks length and digest at the end.
func (r *Registry) streamRaw(ctx context.Context, c Chunk, rc io.Reader, f *os.File, off int64) error {
	buf := r.getBuf(min(streamPiece, r.bufCap))
	defer r.putBuf(buf)
	h := digest.SHA256.Digester()
	var done int64
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		n, err := io.ReadFull(rc, buf)
		if n > 0 {
			if done+int64(n) > c.Size {
				return fmt.Errorf("blob %s: %w: raw payload longer than %d bytes", c.Digest, ErrCorrupt, c.Size)
			}
			h.Hash().Write(buf[:n])
			if _, werr := f.WriteAt(buf[:n], off+done); werr != nil {
				return fmt.Errorf("blob %s: write %s: %w", c.Digest, f.Name(), werr)
			}
			done += int64(n)
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("blob %s: %w", c.Digest, err)
		}
	}
	if done != c.Size {
		return fmt.Errorf("blob %s: %w: raw payload is %d bytes, manifest says %d", c.Digest, ErrCorrupt, done, c.Size)
	}
	if got := h.Digest(); got != c.Digest {
		return fmt.Errorf("blob %s: %w: decoded bytes hash to %s", c.Digest, ErrCorrupt, got)
	}
	startWriteback(f, off, c.Size)
	return nil
}
