package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"

	"github.com/opencontainers/go-digest"
)

// ErrNotEmpty is returned (wrapped) when pull's target folder has content.
var ErrNotEmpty = errors.New("target folder is not empty")

// PullResult is what Pull reports.
type PullResult struct {
	Ref    string        `json:"ref"`
	Digest digest.Digest `json:"digest"`
	Kind   string        `json:"kind"`
	Method string        `json:"method,omitempty"`
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
func (r *Registry) Pull(ctx context.Context, ref, dir string) (res *PullResult, err error) {
	tr, err := ParseRef(ref)
	if err != nil {
		return nil, err
	}
	d, err := r.resolve(ctx, tr)
	if err != nil {
		return nil, fmt.Errorf("pull: %w", err)
	}
	m, err := r.Manifest(ctx, d)
	if err != nil {
		return nil, fmt.Errorf("pull %s: %w", tr, err)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if err := checkEmptyDir(abs); err != nil {
		return nil, fmt.Errorf("pull %s: %w", tr, err)
	}
	parent := filepath.Dir(abs)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return nil, fmt.Errorf("pull %s: %w", tr, err)
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(abs)+".pull-*")
	if err != nil {
		return nil, fmt.Errorf("pull %s: %w", tr, err)
	}
	var open []*os.File
	defer func() {
		for _, f := range open {
			f.Close()
		}
		if err != nil {
			os.RemoveAll(tmp)
		}
	}()

	var jobs []pullJob
	for _, mf := range m.Files {
		p := filepath.Join(tmp, filepath.FromSlash(mf.Path))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return nil, fmt.Errorf("pull %s: %w", tr, err)
		}
		f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return nil, fmt.Errorf("pull %s: %w", tr, err)
		}
		open = append(open, f)
		if err := f.Truncate(mf.Size); err != nil {
			return nil, fmt.Errorf("pull %s: %s: %w", tr, mf.Path, err)
		}
		off := int64(0)
		for _, c := range mf.pieces() {
			jobs = append(jobs, pullJob{f: f, off: off, c: c})
			off += c.Size
		}
	}
	mt := newMeter(r.opt.Progress, StageDownload, m.LogicalSize())
	err = runPool(ctx, r.opt.Workers, len(jobs), func(ctx context.Context, i int) error {
		j := jobs[i]
		raw, err := r.getBlob(ctx, j.c.Digest, j.c.Size)
		if err != nil {
			return err
		}
		if int64(len(raw)) != j.c.Size {
			return fmt.Errorf("blob %s: %w: %d bytes, manifest says %d", j.c.Digest, ErrCorrupt, len(raw), j.c.Size)
		}
		if _, err := j.f.WriteAt(raw, j.off); err != nil {
			return err
		}
		mt.add(j.c.Size)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("pull %s: %w", tr, err)
	}
	for i, f := range open {
		mode := os.FileMode(m.Files[i].Mode) & os.ModePerm
		if mode == 0 {
			mode = 0o644
		}
		if err := f.Sync(); err != nil {
			return nil, fmt.Errorf("pull %s: %s: %w", tr, m.Files[i].Path, err)
		}
		if err := f.Chmod(mode); err != nil {
			return nil, fmt.Errorf("pull %s: %s: %w", tr, m.Files[i].Path, err)
		}
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return nil, err
	}
	// rename(2) replaces an empty folder atomically and refuses a non-empty
	// one (os.Rename refuses any existing folder, hence syscall.Rename).
	if err := syscall.Rename(tmp, abs); err != nil {
		return nil, fmt.Errorf("pull %s: move into place: %w", tr, err)
	}
	syncDir(parent)
	return &PullResult{Ref: tr.String(), Digest: d, Kind: m.Kind, Method: m.Method, Base: m.Base,
		Dir: abs, Files: len(m.Files), Bytes: m.LogicalSize()}, nil
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
	defer f.Close()
	if _, err := f.Readdirnames(1); err == nil {
		return fmt.Errorf("%s: %w", dir, ErrNotEmpty)
	} else if !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}

// syncDir makes a rename durable; errors are ignored (not every OS or
// filesystem can sync a folder).
func syncDir(dir string) {
	if f, err := os.Open(dir); err == nil {
		f.Sync()
		f.Close()
	}
}
