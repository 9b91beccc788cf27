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
	// ErrRefMoved: a ref moved while we were updating it; wraps store.ErrConflict.
	ErrRefMoved = fmt.Errorf("ref moved concurrently: %w", store.ErrConflict)
)

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
	if opt.Workers <= 0 {
		opt.Workers = DefaultWorkers
	}
	c, err := codec.New(codec.Options{})
	if err != nil {
		return nil, err
	}
	return &Registry{b: b, opt: opt, codec: c,
		// Room for the largest valid frame of a full chunk plus the one
		// byte pull reads to detect an oversized frame.
		bufCap: int(opt.ChunkSize) + frameHeaderMax + 1,
		cpu:    make(chan struct{}, runtime.GOMAXPROCS(0)),
	}, nil
}

// Close releases the codec's workers. The Registry must not be used after.
func (r *Registry) Close() error {
	r.codec.Close()
	return nil
}

// Open opens the registry at url (a folder, file://PATH or s3://BUCKET/PREFIX;
// see store.Open).
func Open(ctx context.Context, url string, opt Options) (*Registry, error) {
	b, err := store.Open(ctx, url)
	if err != nil {
		return nil, err
	}
	return New(b, opt)
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

// readAll reads a whole object.
func (r *Registry) readAll(ctx context.Context, key string) ([]byte, error) {
	rc, err := r.b.Get(ctx, key, 0, -1)
	if err != nil {
		return nil, err
	}
	defer func() { _ = rc.Close() }() // read only: what was read is checked, a close error loses nothing
	return io.ReadAll(rc)
}

// resolve turns a ref into a manifest digest.
func (r *Registry) resolve(ctx context.Context, ref Ref) (digest.Digest, error) {
	if ref.Digest != "" {
		return ref.Digest, nil
	}
	data, err := r.readAll(ctx, ref.key())
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return "", fmt.Errorf("ref %s: %w in %s", ref, ErrNotFound, r.b.Location())
		}
		return "", fmt.Errorf("ref %s: %w", ref, err)
	}
	d, err := digest.Parse(strings.TrimSpace(string(data)))
	if err != nil {
		return "", fmt.Errorf("ref %s: %w: holds %q, not a digest", ref, ErrCorrupt, truncate(data, 80))
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

func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "..."
	}
	return string(b)
}

// Manifest reads and validates the manifest with digest d.
func (r *Registry) Manifest(ctx context.Context, d digest.Digest) (*Manifest, error) {
	data, err := r.readAll(ctx, manifestKey(d))
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

// setRef points the tag at d by compare-and-swap. It reads the current
// value and ETag, does nothing if the ref already names d, and otherwise
// swaps; a concurrent change between the read and the swap is reported as
// ErrRefMoved, never overwritten silently.
func (r *Registry) setRef(ctx context.Context, ref Ref, d digest.Digest) error {
	key := ref.key()
	oldETag := ""
	info, err := r.b.Stat(ctx, key)
	switch {
	case err == nil:
		oldETag = info.ETag
		cur, err := r.readAll(ctx, key)
		if err == nil && strings.TrimSpace(string(cur)) == d.String() {
			return nil
		}
	case !errors.Is(err, store.ErrNotFound):
		return fmt.Errorf("ref %s: %w", ref, err)
	}
	if _, err := r.b.Swap(ctx, key, oldETag, []byte(d.String()+"\n")); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return fmt.Errorf("ref %s: %w", ref, ErrRefMoved)
		}
		return fmt.Errorf("ref %s: %w", ref, err)
	}
	return nil
}
