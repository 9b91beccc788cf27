package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

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
	f   *os.File
	off int64
	c   Chunk
}

// Pull rebuilds the folder pushed under ref into dir, byte for byte.
//
// Every blob is decoded and re-hashed before it is written. The files are
// written into a temporary folder beside dir, synced, and renamed to dir
// only when complete, so dir is either absent (or the empty folder it was)
// or the whole verified content. dir must not exist or be empty. For a delta,
// the delta's own folder is written (an adapter folder, or for a full delta
// the fine-tuned model); pull the base separately.
func (r *Registry) Pull(ctx context.Context, ref, dir string) (*PullResult, error) {
	tr, d, m, err := r.openRef(ctx, "pull", ref)
	if err != nil {
		return nil, err
	}
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

// pullInto writes m's files into a temporary folder beside abs, and renames
// it to abs once every file is complete, verified and synced.
func (r *Registry) pullInto(ctx context.Context, m *Manifest, abs string) (err error) {
	if err := checkEmptyDir(abs); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o755); err != nil {
		return err
	}
	tmp, err := atomicfile.TempDirBeside(abs)
	if err != nil {
		return err
	}
	t := &pullTree{m: m}
	defer func() {
		for _, f := range t.open {
			_ = f.Close() // only still open after a failure, and the folder is thrown away
		}
		if err != nil {
			_ = os.RemoveAll(tmp) // best effort: a leftover hidden temp folder is harmless
		}
	}()
	if err := t.create(tmp); err != nil {
		return err
	}
	mt := newMeter(r.opt.Progress, StageDownload, m.LogicalSize())
	if err := runPool(ctx, r.inFlight(), len(t.jobs), func(ctx context.Context, i int) error {
		j := t.jobs[i]
		if err := r.pullBlob(ctx, j.c, j.f, j.off); err != nil {
			return err
		}
		mt.add(j.c.Size)
		return nil
	}); err != nil {
		return err
	}
	if err := t.finish(); err != nil {
		return err
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	// CommitDir replaces an empty dir atomically and refuses a non-empty one.
	if err := atomicfile.CommitDir(tmp, abs); err != nil {
		return fmt.Errorf("move into place: %w", err)
	}
	return nil
}

// pullTree is the temporary folder a pull writes: one open file per
// manifest file, and the blobs to write into them.
type pullTree struct {
	m    *Manifest
	open []*os.File // open[i] is m.Files[i]; emptied by finish
	jobs []pullJob
}

// create makes every file of t.m under tmp at its final size and plans
// where each blob goes.
func (t *pullTree) create(tmp string) error {
	for _, mf := range t.m.Files {
		p := filepath.Join(tmp, filepath.FromSlash(mf.Path))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return err
		}
		t.open = append(t.open, f)
		if err := f.Truncate(mf.Size); err != nil {
			return fmt.Errorf("%s: %w", mf.Path, err)
		}
		off := int64(0)
		for _, c := range mf.pieces() {
			t.jobs = append(t.jobs, pullJob{f: f, off: off, c: c})
			off += c.Size
		}
	}
	return nil
}

// finish fsyncs each file, gives it its mode and closes it, checking the
// close: it can report a failed write-back.
func (t *pullTree) finish() error {
	// One fsync per file; startWriteback has been pushing each chunk to
	// disk since it was written, so this mostly waits for the last ones.
	for i, f := range t.open {
		mf := t.m.Files[i]
		mode := os.FileMode(mf.Mode) & os.ModePerm
		if mode == 0 {
			mode = 0o644
		}
		if err := f.Sync(); err != nil {
			return fmt.Errorf("%s: %w", mf.Path, err)
		}
		if err := f.Chmod(mode); err != nil {
			return fmt.Errorf("%s: %w", mf.Path, err)
		}
	}
	files := t.open
	t.open = nil // all closed here, whatever happens
	var first error
	for i, f := range files {
		if err := f.Close(); err != nil && first == nil {
			first = fmt.Errorf("%s: %w", t.m.Files[i].Path, err)
		}
	}
	return first
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
	rc, err := r.b.Get(ctx, blobKey(c.Digest), 0, -1)
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
	// Any valid frame of a c.Size-byte blob is at most a raw frame's size
	// plus the longest header; more is damage, and is not read.
	limit := int(c.Size) + frameHeaderMax
	buf := r.getBuf(limit + 1)
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
	frame := buf[:n+m]
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
