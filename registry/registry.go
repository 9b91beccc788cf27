package registry

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/deltactl/deltactl/registry/codec"
	"github.com/deltactl/deltactl/registry/store"
	"github.com/opencontainers/go-digest"
)

// Errors callers branch on.
var (
	// ErrNotFound: a ref, manifest or blob does not exist (wraps store.ErrNotFound).
	ErrNotFound = store.ErrNotFound
	// ErrCorrupt: stored bytes do not hash to their address.
	ErrCorrupt = errors.New("corrupt object")
	// ErrConflict: a ref was not where the caller expected it (a
	// compare-and-swap lost: TagOptions.Expect did not match, or the ref
	// moved while we updated it). It is store.ErrConflict; ErrRefMoved and
	// ErrExpectMismatch wrap it.
	ErrConflict = store.ErrConflict
	// ErrRefMoved: a ref moved while we were updating it; wraps ErrConflict.
	ErrRefMoved = fmt.Errorf("ref moved concurrently: %w", store.ErrConflict)
	// ErrExpectMismatch: a ref did not name the digest the caller expected
	// (TagOptions.Expect, a rollback); wraps ErrConflict.
	ErrExpectMismatch error = &kindError{"ref is not at the expected digest", store.ErrConflict}
	// ErrNoRegistry: the bucket or folder does not exist (see Init).
	ErrNoRegistry = store.ErrNoRegistry
	// ErrAccessDenied: the storage refused the credentials.
	ErrAccessDenied = store.ErrAccessDenied
	// ErrUnreachable: the storage did not answer.
	ErrUnreachable = store.ErrUnreachable
)

// kindError is a sentinel with its own message that is also a more general
// one (ErrExpectMismatch is an ErrConflict).
type kindError struct {
	msg string
	is  error
}

func (e *kindError) Error() string { return e.msg }
func (e *kindError) Unwrap() error { return e.is }

// Defaults of Options.
const (
	// DefaultChunkSize is 32 MiB rather than 64 MiB:
	// a 256 MiB tensor then gives 8 chunks, enough for hashing and
	// encoding some chunks to overlap the transfer of others (with 64 MiB
	// chunks a small model had 4, all hashed at once and then all sent at
	// once), and a compressed chunk's frame fits one S3 PUT (the s3
	// backend's part size is 32 MiB). Smaller chunks pipeline better still
	// but cost more CPU per byte: the codec's fixed-size samples and
	// probes weigh more (16 MiB chunks encoded about 30% slower, and pushed
	// about 8% slower in BenchmarkS3PushPullVsRaw, than 32 MiB ones).
	DefaultChunkSize = 32 << 20
	// DefaultWorkers is the number of blob transfers in flight, on top of
	// one chunk per CPU being hashed, encoded or decoded.
	DefaultWorkers = 4
	// MaxChunkSize is the largest blob the format allows. A manifest naming
	// a bigger one is refused before anything is allocated, and ChunkSize
	// may not exceed it, so pull's memory per chunk in flight is bounded.
	// 128 MiB holds the largest safetensors header (safetensors.MaxHeaderSize
	// plus its 8-byte prefix, stored as one blob) and 4 default chunks.
	MaxChunkSize = 128 << 20
)

// Options tune a Registry. The zero value gives the defaults.
type Options struct {
	// ChunkSize is the largest blob a tensor or file is cut into
	// (DefaultChunkSize when 0). Chunks bound memory per worker and are the
	// unit of parallelism and of resume.
	ChunkSize int64
	// Workers bounds concurrent blob transfers (DefaultWorkers when 0).
	// Push and pull keep Workers + GOMAXPROCS chunks in flight, so CPU work
	// on some overlaps network I/O of others; memory stays bounded by about
	// two chunk buffers per chunk in flight.
	Workers int
	// CacheDir holds the local hash cache; "" means os.UserCacheDir()/deltactl.
	CacheDir string
	// NoCache disables the hash cache (every push re-hashes).
	NoCache bool
	// Progress, when set, receives transfer progress.
	Progress func(Progress)
	// LockWait bounds how long a push, tag or copy waits for a running gc
	// to finish (DefaultLockWait when 0; negative: do not wait). See lock.go.
	LockWait time.Duration
	// LockStale is how long a lock may go unrefreshed before it is taken
	// as left by a dead process (DefaultLockStale when 0).
	LockStale time.Duration
	// Notify, when set, receives one-line notices for a person: who holds a
	// lock an operation waits for, a storage request being retried. It may
	// be called from several goroutines at once and must return quickly.
	Notify func(msg string)
	// Who names the person or job moving refs, for the ref log
	// ("user@host" from the environment when empty).
	Who string
}

// Registry is a content-addressed store of models and deltas on a backend.
// It is safe for concurrent use; several processes may share one backend.
type Registry struct {
	b     store.Backend
	opt   Options
	codec blobCodec
	hooks testHooks

	// bufs holds chunk buffers (*[]byte of capacity bufCap) reused across
	// push and pull jobs, so a multi-gigabyte transfer does not allocate
	// (and clear) a fresh chunk-sized buffer per chunk.
	bufs   sync.Pool
	bufCap int
	// cpu holds one token per CPU; hashing, encoding and decoding take one,
	// so the jobs in flight beyond that wait on the network instead of
	// fighting over cores.
	cpu chan struct{}
	// bases shares decoded XOR bases between the chunks of an operation.
	bases *baseCache
	// mem bounds the bytes pull's decodes hold at once (budget.go).
	mem *memBudget
}

// blobCodec is what the registry needs of registry/codec.
type blobCodec interface {
	Encode(raw []byte, opt codec.EncodeOptions) ([]byte, error)
	Decode(frame []byte, base func(digest.Digest) ([]byte, error)) ([]byte, error)
	Close()
}

// Compile-time checks of the interfaces registry types implement.
var (
	_ blobCodec    = (*codec.Codec)(nil)
	_ fmt.Stringer = Ref{}
	_ fmt.Stringer = LockInfo{}
)

// New wraps a backend. Close the Registry when done with it.
func New(b store.Backend, opt Options) (*Registry, error) {
	if opt.ChunkSize <= 0 {
		opt.ChunkSize = DefaultChunkSize
	}
	if opt.ChunkSize > MaxChunkSize {
		return nil, fmt.Errorf("registry: chunk size %d over the format's limit of %d", opt.ChunkSize, MaxChunkSize)
	}
	if opt.Workers <= 0 {
		opt.Workers = DefaultWorkers
	}
	// No frame decodes to more than a chunk.
	c, err := codec.New(codec.Options{MaxRawLen: MaxChunkSize})
	if err != nil {
		return nil, err
	}
	return &Registry{b: b, opt: opt, codec: c,
		// Room for the largest valid frame of a full chunk plus the one
		// byte pull reads to detect an oversized frame.
		bufCap: int(opt.ChunkSize) + frameHeaderMax + 1,
		cpu:    make(chan struct{}, runtime.GOMAXPROCS(0)),
		bases:  newBaseCache(baseCacheBudget),
		mem:    newMemBudget(decodeBudget),
	}, nil
}

// Close releases the codec's workers. The Registry must not be used after.
func (r *Registry) Close() error {
	r.codec.Close()
	return nil
}

// Open opens the registry at url (a folder, file://PATH or s3://BUCKET/PREFIX;
// see store.OpenWith). It never creates a bucket: a missing one is
// ErrNoRegistry (see Init). A folder registry is created by its first write.
func Open(ctx context.Context, url string, opt Options) (*Registry, error) {
	b, err := store.OpenWith(ctx, url, store.OpenOptions{Notify: opt.Notify})
	if err != nil {
		return nil, err
	}
	return New(b, opt)
}

// Init creates the registry at url (the bucket, or the folder) if it does
// not exist yet, and opens it. Creating an existing one is not an error.
func Init(ctx context.Context, url string, opt Options) (*Registry, error) {
	b, err := store.OpenWith(ctx, url, store.OpenOptions{Create: true, Notify: opt.Notify})
	if err != nil {
		return nil, err
	}
	return New(b, opt)
}

// mustExist fails with ErrNoRegistry when the registry does not exist (a
// folder registry not created yet), so that commands that only make sense
// on an existing registry (tag, rollback, gc) do not create one by writing
// their lock. Push and copy may create a folder registry.
func (r *Registry) mustExist(ctx context.Context) error {
	errFound := errors.New("found")
	err := r.b.List(ctx, lockPrefix, func(store.Info) error { return errFound })
	if errors.Is(err, store.ErrNoRegistry) {
		return err
	}
	return nil // anything else surfaces in the operation itself
}

// notify sends a notice to Options.Notify, if set.
func (r *Registry) notify(format string, args ...any) {
	if r.opt.Notify != nil {
		r.opt.Notify(fmt.Sprintf(format, args...))
	}
}

// Backend returns the underlying storage.
func (r *Registry) Backend() store.Backend { return r.b }

// Location names the registry for messages, without credentials.
func (r *Registry) Location() string { return r.b.Location() }

func (r *Registry) cacheDir() (string, error) {
	if r.opt.CacheDir != "" {
		return r.opt.CacheDir, nil
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(d, "deltactl"), nil
}

// Storage keys (the layout is described in the package doc).
const (
	blobPrefix     = "blobs/sha256/"
	manifestPrefix = "manifests/sha256/"
	refPrefix      = "refs/"
)

func blobKey(d digest.Digest) string {
	h := d.Encoded()
	return blobPrefix + h[:2] + "/" + h
}

func manifestKey(d digest.Digest) string { return manifestPrefix + d.Encoded() }

// digestFromKey recovers the digest from a blob or manifest key.
func digestFromKey(key string) (digest.Digest, bool) {
	i := strings.LastIndexByte(key, '/')
	d := digest.NewDigestFromEncoded(digest.SHA256, key[i+1:])
	return d, d.Validate() == nil
}

// Size caps of the small objects read whole. A damaged or hostile object
// over its cap is reported (ErrTooLarge, naming it) after reading cap+1
// bytes, never read whole: one 1 GiB ref would otherwise cost every ls,
// show, gc and verify gigabytes.
const (
	// maxRefSize: a ref holds "sha256:<64 hex>\n", 72 bytes.
	maxRefSize = 4 << 10
	// maxManifestSize: a manifest costs about 200 bytes per blob, so 64 MiB
	// describes some 300,000 blobs (10 TB at 32 MiB chunks); provenance
	// files are capped at 1 MiB each (maxProvenanceFile).
	maxManifestSize = 64 << 20
)

// ErrTooLarge is returned (wrapped, naming the object) when a ref or
// manifest is larger than any valid one.
var ErrTooLarge = fmt.Errorf("%w: larger than any valid one", ErrCorrupt)

// getObject opens key like Backend.Get; a key the fs backend refuses as
// not a regular file (a symlink, a FIFO) is damage in the registry, and
// reported as ErrCorrupt like any other.
func (r *Registry) getObject(ctx context.Context, key string, off, length int64) (io.ReadCloser, error) {
	rc, err := r.b.Get(ctx, key, off, length)
	if errors.Is(err, store.ErrNotRegular) {
		return nil, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	return rc, err
}

// readCapped reads a whole object of at most limit bytes. Objects over
// readProbe bytes are sized with Stat first, so an oversized one is refused
// without reading up to limit, and a large valid one is read into a buffer
// of its size instead of one grown by doubling.
func (r *Registry) readCapped(ctx context.Context, key string, limit int64) ([]byte, error) {
	rc, err := r.getObject(ctx, key, 0, limit+1)
	if err != nil {
		return nil, err
	}
	defer func() { _ = rc.Close() }() // read only: what was read is checked, a close error loses nothing
	probe := min(limit, readProbe)
	data, err := io.ReadAll(io.LimitReader(rc, probe+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > probe {
		if info, err := r.b.Stat(ctx, key); err == nil {
			if info.Size > limit {
				return nil, fmt.Errorf("%w (%d bytes, more than %d)", ErrTooLarge, info.Size, limit)
			}
			data = append(make([]byte, 0, info.Size+1), data...)
		}
		buf := bytes.NewBuffer(data)
		if _, err := buf.ReadFrom(io.LimitReader(rc, limit+1-int64(len(data)))); err != nil {
			return nil, err
		}
		data = buf.Bytes()
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%w (larger than %d bytes)", ErrTooLarge, limit)
	}
	return data, nil
}

// readProbe is how much of a ref or manifest is read before its size is
// asked for: all of a ref, and of almost every manifest.
const readProbe = 1 << 20

// preview quotes the first few bytes of a damaged object for an error,
// escaped: enough to recognise it, too little to leak a file a hostile
// registry pointed us at.
func preview(b []byte) string {
	const n = 12
	if len(b) > n {
		return fmt.Sprintf("%d bytes starting %q", len(b), b[:n])
	}
	return fmt.Sprintf("%q", b)
}

// resolve turns a ref into a manifest digest.
func (r *Registry) resolve(ctx context.Context, ref Ref) (digest.Digest, error) {
	if ref.Digest != "" {
		return ref.Digest, nil
	}
	data, err := r.readCapped(ctx, ref.key(), maxRefSize)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) && !errors.Is(err, store.ErrNoRegistry) {
			return "", fmt.Errorf("ref %s: %w in %s", ref, ErrNotFound, r.b.Location())
		}
		return "", fmt.Errorf("ref %s: %w", ref, err)
	}
	d, err := digest.Parse(strings.TrimSpace(string(data)))
	if err != nil {
		return "", fmt.Errorf("ref %s: %w: holds %s, not a digest", ref, ErrCorrupt, preview(data))
	}
	return d, nil
}

// Resolve parses ref and returns the manifest digest it names.
func (r *Registry) Resolve(ctx context.Context, ref string) (digest.Digest, error) {
	p, err := ParseRef(ref)
	if err != nil {
		return "", err
	}
	return r.resolve(ctx, p)
}

// openRef parses ref, resolves it and reads its manifest, for the operation
// op (named in errors).
func (r *Registry) openRef(ctx context.Context, op, ref string) (Ref, digest.Digest, *Manifest, error) {
	tr, err := ParseRef(ref)
	if err != nil {
		return Ref{}, "", nil, err
	}
	d, err := r.resolve(ctx, tr)
	if err != nil {
		return Ref{}, "", nil, fmt.Errorf("%s: %w", op, err)
	}
	m, err := r.Manifest(ctx, d)
	if err != nil {
		return Ref{}, "", nil, fmt.Errorf("%s %s: %w", op, tr, err)
	}
	return tr, d, m, nil
}

// Manifest reads and validates the manifest with digest d.
func (r *Registry) Manifest(ctx context.Context, d digest.Digest) (*Manifest, error) {
	data, err := r.readCapped(ctx, manifestKey(d), maxManifestSize)
	if err != nil {
		return nil, fmt.Errorf("manifest %s: %w", d, err)
	}
	return parseManifest(d, data)
}

// putManifest stores m (create-only) and returns its digest and the number
// of bytes written (0 when it was already there).
func (r *Registry) putManifest(ctx context.Context, m *Manifest) (digest.Digest, int64, error) {
	data, err := m.Marshal()
	if err != nil {
		return "", 0, fmt.Errorf("encode manifest: %w", err)
	}
	d := digest.FromBytes(data)
	n, err := r.putObject(ctx, manifestKey(d), data)
	if err != nil {
		return "", 0, fmt.Errorf("manifest %s: %w", d, err)
	}
	return d, n, nil
}

// putObject stores an immutable object unless present; it returns the bytes
// written.
func (r *Registry) putObject(ctx context.Context, key string, data []byte) (int64, error) {
	if _, err := r.b.Stat(ctx, key); err == nil {
		return 0, nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return 0, err
	}
	err := r.b.Put(ctx, key, bytes.NewReader(data), int64(len(data)))
	if errors.Is(err, store.ErrExists) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return int64(len(data)), nil
}
