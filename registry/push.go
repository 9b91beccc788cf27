package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"sync/atomic"

	"github.com/deltactl/deltactl/format"
	"github.com/deltactl/deltactl/registry/codec"
	"github.com/deltactl/deltactl/registry/store"
	"github.com/opencontainers/go-digest"
)

// PushOptions choose what a push creates.
type PushOptions struct {
	// Base is the reference of the base model. With it, an adapter folder is
	// pushed as a delta of that base.
	Base string
	// Full, with Base, pushes a full fine-tuned model folder as a lossless
	// delta: tensors equal to the base's cost nothing, changed ones are
	// stored XOR-against-base and compressed.
	Full bool
	// FollowSymlinks pushes what symlinks to files outside the folder point
	// to. Without it such a link is refused (naming it), so a stray link to
	// /etc/passwd never lands in a shared registry; links inside the folder,
	// and those of a Hugging Face cache snapshot into its repo's blobs/
	// folder, are followed either way.
	FollowSymlinks bool
	// Repair re-reads every file (ignoring the hash cache), fully checks
	// every blob it would reuse (decode and re-hash) and replaces the
	// damaged ones with the bytes just read.
	Repair bool
	// Labels are stored in the manifest (see Manifest.Labels and CheckLabels).
	Labels map[string]string
}

// PushResult is what Push reports (the CLI's JSON contract).
type PushResult struct {
	Ref    string        `json:"ref"`
	Digest digest.Digest `json:"digest"`
	Kind   string        `json:"kind"`
	Method format.Method `json:"method,omitempty"`
	Base   digest.Digest `json:"base,omitempty"`
	// LogicalBytes is the size of the pushed files.
	LogicalBytes int64 `json:"logical_bytes"`
	// UploadedBytes counts stored bytes this push wrote (blob frames and the
	// manifest); 0 when everything was already there.
	UploadedBytes int64 `json:"uploaded_bytes"`
	// Labels are the labels stored in the manifest.
	Labels map[string]string `json:"labels,omitempty"`
}

// provenanceFiles are JSON files whose content is copied into a delta's
// provenance (they are pushed as files too).
var provenanceFiles = map[string]bool{
	"trainer_state.json": true, "training_args.json": true, "train_config.json": true,
	"training_config.json": true, "metrics.json": true, "all_results.json": true,
	"train_results.json": true, "eval_results.json": true,
	"training_log.json": true, // deltactl train: options, losses, metrics
}

// maxProvenanceFile caps the size of a JSON file copied into provenance.
const maxProvenanceFile = 1 << 20

// Errors of a push asked for the wrong way; callers branch on them (the CLI
// rewords them in terms of its flags).
var (
	// ErrFullWithoutBase: PushOptions.Full without PushOptions.Base.
	ErrFullWithoutBase = errors.New("PushOptions.Full needs PushOptions.Base (the model it was fine-tuned from)")
	// ErrNotAdapter: PushOptions.Base without Full, for a folder with no
	// adapter_config.json.
	ErrNotAdapter = errors.New("has no adapter_config.json; set PushOptions.Full to push a full fine-tune against PushOptions.Base")
	// ErrAdapterWithoutBase: an adapter folder (adapter_config.json)
	// without PushOptions.Base naming the model it adapts.
	ErrAdapterWithoutBase = errors.New("is an adapter folder (adapter_config.json); set PushOptions.Base to the model it adapts")
)

// pushJob is one blob to hash and, if missing, upload.
type pushJob struct {
	file     string // absolute path
	off      int64  // byte offset in the file
	elemSize int    // element size for byte grouping (1 for opaque bytes)
	size     int64
	digest   *digest.Digest // filled in by the worker
	known    bool           // *digest came from the hash cache
	xorBase  digest.Digest
	stamp    *fileStamp // the file as listed; checked again after reading
}

// Push stores the file or folder at path under ref (NAME[:TAG]).
//
//   - A Hugging Face model folder or a .safetensors file becomes a model.
//   - A PEFT adapter folder (adapter_config.json plus weights) with
//     opt.Base becomes a delta of that base; every target weight must exist
//     in the base with a fitting shape.
//   - A full fine-tuned model folder with opt.Base and opt.Full becomes a
//     delta of method "full".
//
// Blobs go first, then the manifest, then the ref (by compare-and-swap), so
// an interrupted push leaves only unreferenced objects and a rerun resumes
// by skipping the blobs already stored.
func (r *Registry) Push(ctx context.Context, ref, srcPath string, opt PushOptions) (*PushResult, error) {
	tr, err := checkPush(ref, opt)
	if err != nil {
		return nil, err
	}
	// The lock comes before the first existence check (of the base, then
	// of every blob): see lock.go.
	lk, err := r.pushLock(ctx, "push "+tr.String())
	if err != nil {
		return nil, err
	}
	defer lk.unlock()
	defer r.bases.drop()
	files, err := listFiles(srcPath, opt.FollowSymlinks)
	if err != nil {
		return nil, fmt.Errorf("push %s: %w", ref, err)
	}
	m, base, err := r.pushKind(ctx, srcPath, files, opt)
	if err != nil {
		return nil, fmt.Errorf("push %s: %w", ref, err)
	}
	p := r.newPusher()
	p.repair = opt.Repair
	var baseIdx map[string]*Tensor
	if opt.Full {
		baseIdx = base.tensorIndex()
	}
	if err := p.layout(m, files, baseIdx); err != nil {
		return nil, fmt.Errorf("push %s: %w", ref, err)
	}
	total := m.LogicalSize()
	if err := p.upload(ctx, total); err != nil {
		return nil, fmt.Errorf("push %s: %w", ref, err)
	}
	if !opt.Full {
		// A full delta may cut tensors on the base's chunk boundaries;
		// caching that layout would make a later model push of the same
		// file depend on what was pushed before.
		p.remember(m, files)
	}
	if m.Kind == KindDelta {
		m.Provenance = provenance(srcPath, files, p.meta)
	}
	d, n, err := r.commitPush(ctx, lk, ref, tr, m)
	if err != nil {
		return nil, err
	}
	return &PushResult{
		Ref: tr.String(), Digest: d, Kind: m.Kind, Method: m.Method, Base: m.Base,
		LogicalBytes: total, UploadedBytes: p.uploaded.Load() + n, Labels: m.Labels,
	}, nil
}

// checkPush validates ref and opt before anything is read or locked.
func checkPush(ref string, opt PushOptions) (Ref, error) {
	tr, err := ParseRef(ref)
	if err != nil {
		return Ref{}, err
	}
	if tr.Digest != "" {
		return Ref{}, fmt.Errorf("push %s: %w: push needs NAME:TAG, a digest names existing content", ref, ErrBadRef)
	}
	if opt.Full && opt.Base == "" {
		return Ref{}, fmt.Errorf("push %s: %w", ref, ErrFullWithoutBase)
	}
	if err := CheckLabels(opt.Labels); err != nil {
		return Ref{}, fmt.Errorf("push %s: %w", ref, err)
	}
	return tr, nil
}

// pushKind decides what srcPath becomes (a model, an adapter delta or a full
// delta), resolving and checking opt.Base, and returns the manifest to fill
// and the base's manifest (nil without a base).
func (r *Registry) pushKind(ctx context.Context, srcPath string, files []localFile, opt PushOptions) (*Manifest, *Manifest, error) {
	hasAdapterConfig := false
	for _, f := range files {
		if f.rel == "adapter_config.json" {
			hasAdapterConfig = true
		}
	}
	m := &Manifest{SchemaVersion: manifestVersion, Kind: KindModel, Labels: opt.Labels}
	var base *Manifest
	if opt.Base != "" {
		bd, err := r.Resolve(ctx, opt.Base)
		if err != nil {
			return nil, nil, fmt.Errorf("base: %w", err)
		}
		if base, err = r.Manifest(ctx, bd); err != nil {
			return nil, nil, fmt.Errorf("base %s: %w", opt.Base, err)
		}
		if base.Kind == KindDelta && base.Method != MethodFull {
			return nil, nil, fmt.Errorf("base %s is a %s delta; a base must be a model or a full delta", opt.Base, base.Method)
		}
		m.Kind, m.Base = KindDelta, bd
	}
	switch {
	case opt.Full:
		m.Method = MethodFull
	case base != nil:
		if !hasAdapterConfig {
			return nil, nil, fmt.Errorf("%s: %w", srcPath, ErrNotAdapter)
		}
		var err error
		if m.Method, m.Config, err = checkAdapter(srcPath, base, opt.Base); err != nil {
			return nil, nil, err
		}
	case hasAdapterConfig:
		return nil, nil, fmt.Errorf("%s: %w", srcPath, ErrAdapterWithoutBase)
	}
	return m, base, nil
}

// commitPush stores the manifest and then moves the ref to it, after
// checking the push lock is still ours. It returns the manifest's digest and
// the bytes stored for it (0 if it was already there).
func (r *Registry) commitPush(ctx context.Context, lk *lock, ref string, tr Ref, m *Manifest) (digest.Digest, int64, error) {
	if err := lk.check(); err != nil {
		return "", 0, fmt.Errorf("push %s: %w", ref, err)
	}
	d, n, err := r.putManifest(ctx, m)
	if err != nil {
		return "", 0, fmt.Errorf("push %s: %w", ref, err)
	}
	if _, err := r.moveRef(ctx, tr, d, move{action: ActionPush, labels: m.Labels}); err != nil {
		return "", 0, fmt.Errorf("push: %w", err)
	}
	return d, n, nil
}

// pusher carries one push's jobs and counters.
type pusher struct {
	r        *Registry
	cache    hashCache
	jobs     []pushJob
	meter    *meter
	uploaded atomic.Int64
	// repair: re-read every file and fully check every blob reused,
	// replacing damaged ones (PushOptions.Repair).
	repair bool

	// Per pushed file, filled by layout: its stamp for the hash cache and
	// the cache entry as read (to skip rewriting it unchanged).
	stamps []fileStamp
	prev   [][]byte
	// meta maps a file to its safetensors __metadata__ (delta provenance).
	meta map[string]map[string]string
}

func (r *Registry) newPusher() *pusher {
	p := &pusher{r: r, meta: map[string]map[string]string{}}
	if !r.opt.NoCache {
		if dir, err := r.cacheDir(); err == nil {
			p.cache.dir = dir
		}
	}
	return p
}

// layout fills m.Files from files, from the hash cache where a file is
// unchanged and by reading it otherwise, and plans the blob jobs. baseIdx
// (a full delta's base tensors, else nil) decides chunk boundaries.
func (p *pusher) layout(m *Manifest, files []localFile, baseIdx map[string]*Tensor) error {
	chunk := p.r.opt.ChunkSize
	m.Files = make([]File, len(files))
	p.stamps = make([]fileStamp, len(files))
	p.prev = make([][]byte, len(files))
	for i, lf := range files {
		p.stamps[i] = stampOf(lf.info, chunk)
		if e, raw, ok := p.cache.get(lf.abs, p.stamps[i]); ok && e.File.Path == lf.rel && !p.repair {
			p.prev[i] = raw
			m.Files[i] = e.File
			if e.Meta != nil {
				p.meta[lf.rel] = e.Meta
			}
			p.addJobs(lf.abs, &m.Files[i], baseIdx, true, &p.stamps[i])
			continue
		}
		f, md, err := layoutFile(lf, chunk)
		if err != nil {
			return err
		}
		m.Files[i] = f
		if md != nil {
			p.meta[lf.rel] = md
		}
		p.addJobs(lf.abs, &m.Files[i], baseIdx, false, &p.stamps[i])
	}
	return nil
}

// upload runs the planned jobs: hash, check, and store what is missing.
func (p *pusher) upload(ctx context.Context, total int64) error {
	p.meter = newMeter(p.r.opt.Progress, StageUpload, total)
	return runPool(ctx, p.r.inFlight(), len(p.jobs), func(ctx context.Context, i int) error {
		return p.do(ctx, &p.jobs[i])
	})
}

// remember records each pushed file's layout in the hash cache.
func (p *pusher) remember(m *Manifest, files []localFile) {
	for i, lf := range files {
		e := cacheEntry{Path: lf.abs, Stamp: p.stamps[i], File: m.Files[i]}
		if md, ok := p.meta[lf.rel]; ok {
			e.Meta = md
		}
		p.cache.put(e, p.prev[i])
	}
}

// addJobs plans the blobs of one file, each checked against the file's
// stamp after it is read. For a full delta, a tensor with the
// same name, dtype and byte length as a base tensor is cut on the base's
// chunk boundaries, so each chunk has a base chunk to XOR against.
func (p *pusher) addJobs(abs string, f *File, baseIdx map[string]*Tensor, cached bool, stamp *fileStamp) {
	first := len(p.jobs)
	p.addFileJobs(abs, f, baseIdx, cached)
	for k := first; k < len(p.jobs); k++ {
		p.jobs[k].stamp = stamp
	}
}

// addFileJobs is addJobs without the stamps.
func (p *pusher) addFileJobs(abs string, f *File, baseIdx map[string]*Tensor, cached bool) {
	if f.Safetensors == nil {
		off := int64(0)
		for k := range f.Chunks {
			c := &f.Chunks[k]
			p.jobs = append(p.jobs, pushJob{file: abs, off: off, size: c.Size, elemSize: 1, digest: &c.Digest, known: cached})
			off += c.Size
		}
		return
	}
	st := f.Safetensors
	p.jobs = append(p.jobs, pushJob{file: abs, off: 0, size: st.HeaderSize, elemSize: 1, digest: &st.Header, known: cached})
	for ti := range st.Tensors {
		t := &st.Tensors[ti]
		elem := 1
		if dt, err := format.ParseDType(t.DType); err == nil {
			elem = dt.Size()
		}
		var bt *Tensor
		if baseIdx != nil {
			if c := baseIdx[t.Name]; c != nil && c.DType == t.DType && chunksSize(c.Chunks) == t.Offsets[1]-t.Offsets[0] {
				bt = c
				if !sameBoundaries(bt.Chunks, t.Chunks) {
					t.Chunks = make([]Chunk, len(bt.Chunks))
					for k, c := range bt.Chunks {
						t.Chunks[k].Size = c.Size
					}
				}
			}
		}
		off := st.HeaderSize + t.Offsets[0]
		for k := range t.Chunks {
			c := &t.Chunks[k]
			j := pushJob{file: abs, off: off, size: c.Size, elemSize: elem, digest: &c.Digest, known: cached && c.Digest != ""}
			if bt != nil {
				j.xorBase = bt.Chunks[k].Digest
			}
			p.jobs = append(p.jobs, j)
			off += c.Size
		}
	}
}

func sameBoundaries(a, b []Chunk) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Size != b[i].Size {
			return false
		}
	}
	return true
}

// do hashes one blob (unless the cache knew its digest), checks whether it
// is stored, and uploads it if not. The chunk is read into a pooled buffer;
// hashing and encoding hold a CPU token, the existence check and upload do
// not, so with more jobs in flight than CPUs the two overlap across chunks.
func (p *pusher) do(ctx context.Context, j *pushJob) error {
	defer p.meter.add(j.size)
	if j.known {
		ok, err := p.r.statBlob(ctx, *j.digest)
		if err != nil {
			return err
		}
		if h := p.r.hooks.afterExists; h != nil {
			h(*j.digest, ok)
		}
		if ok {
			return p.quickCheck(ctx, j)
		}
	}
	raw := p.r.getBuf(int(j.size))
	defer p.r.putBuf(raw)
	var d digest.Digest
	if err := p.r.withCPU(ctx, func() error {
		var err error
		d, err = readHashInto(raw, j.file, j.off)
		return err
	}); err != nil {
		return err
	}
	if h := p.r.hooks.afterRead; h != nil {
		h(j.file)
	}
	if err := checkUnchanged(j.file, j.stamp); err != nil {
		return err
	}
	if j.known && d != *j.digest {
		return fmt.Errorf("%s: changed while being pushed (bytes at %d hash to %s, expected %s); push again", j.file, j.off, d, *j.digest)
	}
	*j.digest = d
	if !j.known {
		ok, err := p.r.statBlob(ctx, d)
		if err != nil {
			return err
		}
		if h := p.r.hooks.afterExists; h != nil {
			h(d, ok)
		}
		if ok {
			reuse, err := p.reusable(ctx, j, d)
			if err != nil || reuse {
				return err
			}
		}
	}
	var baseRaw []byte
	if j.xorBase != "" && j.xorBase != d {
		var err error
		if baseRaw, err = p.r.xorBase(ctx, j.xorBase, j.size, 0); err != nil {
			return fmt.Errorf("%s: base chunk for XOR: %w", j.file, err)
		}
	}
	n, err := p.r.putBlob(ctx, d, raw, j.elemSize, j.xorBase, baseRaw)
	if err != nil {
		return fmt.Errorf("%s at %d: %w", j.file, j.off, err)
	}
	p.uploaded.Add(n)
	return nil
}

// ErrDamagedBlob is returned (wrapped, naming the blob) when push finds the
// stored copy of a blob it would reuse damaged; PushOptions.Repair
// replaces it.
var ErrDamagedBlob = fmt.Errorf("%w: the stored copy of a blob to reuse is damaged", ErrCorrupt)

// reusable decides whether the stored copy of blob d, just hashed from the
// file, can be reused. On fs, where reading it back is cheap next to the
// read and hash this push just did, and always with Repair, the copy is
// decoded and re-hashed first: a damaged one is reported (ErrDamagedBlob)
// or, with Repair, deleted so the caller uploads it again.
func (p *pusher) reusable(ctx context.Context, j *pushJob, d digest.Digest) (bool, error) {
	if _, local := p.r.b.(*store.FS); !local && !p.repair {
		return true, nil
	}
	_, err := p.r.getBlob(ctx, d, j.size)
	switch {
	case err == nil:
		return true, nil
	case !errors.Is(err, ErrCorrupt):
		return false, fmt.Errorf("%s at %d: %w", j.file, j.off, err)
	case !p.repair:
		return false, fmt.Errorf("%s at %d: blob %s: %w (%v)", j.file, j.off, d, ErrDamagedBlob, err)
	}
	if err := p.r.b.Delete(ctx, blobKey(d)); err != nil {
		return false, fmt.Errorf("%s at %d: replace damaged blob %s: %w", j.file, j.off, d, err)
	}
	return false, nil
}

// quickCheck is what a chunk the hash cache vouches for gets before its
// stored blob is reused on fs, where it costs a header read and a stat: the
// frame must parse and fit the chunk's size, which catches a truncated or
// overwritten blob (not a flipped payload byte; Repair checks everything).
func (p *pusher) quickCheck(ctx context.Context, j *pushJob) error {
	if _, local := p.r.b.(*store.FS); !local {
		return nil
	}
	d := *j.digest
	h, why := p.r.blobHeader(ctx, d)
	if why != nil && !errors.Is(why, ErrCorrupt) {
		return fmt.Errorf("%s at %d: %w", j.file, j.off, why)
	}
	if why == nil {
		info, err := p.r.b.Stat(ctx, blobKey(d))
		if err != nil {
			return fmt.Errorf("%s at %d: blob %s: %w", j.file, j.off, d, err)
		}
		switch {
		case h.RawLen != j.size:
			why = fmt.Errorf("frame holds %d bytes, chunk is %d", h.RawLen, j.size)
		case h.Encoding == codec.Raw && info.Size != int64(h.Len)+j.size:
			why = fmt.Errorf("raw frame of %d bytes stored in %d", j.size, info.Size)
		case info.Size > j.size+frameHeaderMax:
			why = fmt.Errorf("frame of %d bytes for a %d-byte chunk", info.Size, j.size)
		}
	}
	if why != nil {
		return fmt.Errorf("%s at %d: blob %s: %w (%v)", j.file, j.off, d, ErrDamagedBlob, why)
	}
	return nil
}

// ErrChanged is returned (wrapped, naming the file) when a file changed
// while push read it: what was read may mix two versions.
var ErrChanged = errors.New("changed while being pushed; push again once it is complete")

// checkUnchanged re-stats file after a chunk of it was read: a different
// size, mtime, ctime or inode than when it was listed means it was written
// meanwhile, and the chunks read may come from two versions.
func checkUnchanged(file string, listed *fileStamp) error {
	if listed == nil {
		return nil
	}
	fi, err := os.Stat(file)
	if err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	if now := stampOf(fi, listed.ChunkSize); now != *listed {
		return fmt.Errorf("%s: %w", file, ErrChanged)
	}
	return nil
}

// readHashInto fills buf from file at off and returns its sha256, reading
// and hashing a piece at a time so each piece is hashed while in cache.
func readHashInto(buf []byte, file string, off int64) (digest.Digest, error) {
	f, err := os.Open(file)
	if err != nil {
		return "", err
	}
	defer func() { _ = f.Close() }() // read only: the bytes read were hashed and are checked
	h := digest.SHA256.Digester()
	for p := 0; p < len(buf); p += streamPiece {
		piece := buf[p:min(p+streamPiece, len(buf))]
		if _, err := f.ReadAt(piece, off+int64(p)); err != nil {
			return "", fmt.Errorf("%s: read %d bytes at %d: %w", file, len(piece), off+int64(p), err)
		}
		h.Hash().Write(piece)
	}
	return h.Digest(), nil
}

// provenance gathers what a delta folder says about how it was made: each
// safetensors file's __metadata__ and the content of known trainer files.
func provenance(root string, files []localFile, meta map[string]map[string]string) map[string]any {
	out := map[string]any{}
	if len(meta) > 0 {
		sm := map[string]any{}
		for k, v := range meta {
			if len(v) > 0 {
				sm[k] = v
			}
		}
		if len(sm) > 0 {
			out["safetensors_metadata"] = sm
		}
	}
	for _, f := range files {
		if !provenanceFiles[path.Base(f.rel)] || f.info.Size() > maxProvenanceFile {
			continue
		}
		data, err := os.ReadFile(f.abs)
		if err != nil {
			continue
		}
		if v, err := decodeJSON(data); err == nil {
			out[f.rel] = v
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// decodeJSON parses a JSON document keeping numbers exactly as written.
func decodeJSON(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, errors.New("trailing data after JSON value")
	}
	return v, nil
}
