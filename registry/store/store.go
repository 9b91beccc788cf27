// Package store holds the storage backends of the registry behind one small
// interface: fs (a local folder, the default) and s3 (any S3-compatible server
// through minio-go).
//
// Keys are slash-separated relative paths such as
// "blobs/sha256/ab/abcd..." or "refs/team/model/v1". Backends never interpret
// them beyond that, except that a key cannot also be the folder of other keys
// ("refs/a" and "refs/a/b" cannot both exist): folders and posix-backed S3
// servers cannot hold both, so key layouts must avoid it. Segments starting
// with "." are reserved for the backends (see ValidKey).
package store

import (
	"context"
	"errors"
	"io"
	"time"
)

// Errors callers branch on. Backends wrap them with the key at fault.
var (
	// ErrNotFound: the key does not exist.
	ErrNotFound = errors.New("not found")
	// ErrExists: a create-only Put found the key already present. For
	// content-addressed objects this is success in disguise.
	ErrExists = errors.New("already exists")
	// ErrConflict: a compare-and-swap lost a race (the object changed since it was read).
	ErrConflict = errors.New("changed concurrently")
	// ErrUnsupported: the backend cannot do this safely, for example an S3
	// server that ignores conditional writes refuses ref moves (see S3).
	ErrUnsupported = errors.New("not supported by this storage")
	// ErrNoRegistry: the bucket or registry folder does not exist. Only an
	// explicit create (OpenOptions.Create, `deltactl init`) makes one, so a
	// mistyped name is an error instead of a fresh empty registry. It is
	// also an ErrNotFound.
	ErrNoRegistry error = &kindError{"no registry", ErrNotFound}
	// ErrAccessDenied: the server refused the credentials or the request
	// (403, bad key or signature), or a folder is not readable.
	ErrAccessDenied = errors.New("access denied")
	// ErrUnreachable: the storage did not answer (connection refused,
	// timeouts, server errors) after the retries.
	ErrUnreachable = errors.New("registry unreachable")
	// ErrLocked: a lock stayed held by someone else for longer than the
	// caller was willing to wait. The error names the holder.
	ErrLocked = errors.New("locked")
	// ErrDenied is ErrAccessDenied (both names are in use).
	ErrDenied = ErrAccessDenied
)

// kindError is a sentinel that is also another, more general sentinel (as
// ErrNoRegistry is an ErrNotFound), with its own short message.
type kindError struct {
	msg string
	is  error
}

func (e *kindError) Error() string { return e.msg }
func (e *kindError) Unwrap() error { return e.is }

// OpenOptions tune Open.
type OpenOptions struct {
	// Create makes the bucket or folder when it does not exist (deltactl
	// init). Without it, opening an S3 bucket that does not exist fails
	// with ErrNoRegistry, and so do reads of a folder that does not exist;
	// a folder registry's root is created by its first write.
	Create bool
	// Notify, when set, receives one-line notices meant for a person:
	// a request that failed and is retried, a lock someone else holds.
	// It may be called from several goroutines at once.
	Notify func(msg string)
}

// Info describes one stored object.
type Info struct {
	Key     string
	Size    int64
	ModTime time.Time
	// ETag identifies this version of the object for compare-and-swap.
	ETag string
}

// Backend is one storage location. All methods are safe for concurrent use.
//
// Put and Swap are the only writes. Put is create-only and atomic: a reader
// sees either nothing or the whole object, never part of it, even if the
// writer crashes. Swap is how mutable refs move.
//
// Every method validates its key (ValidKey) and fails with ErrBadKey before
// touching storage. Errors name the backend's Location and the key, and wrap
// the sentinels above. fs does not retry (local I/O errors are not
// transient); s3 retries transient failures within the bounds documented
// on RetryPolicy, so an error from it is final for that call.
type Backend interface {
	// Put stores size bytes from r under key if key does not exist yet.
	// It returns ErrExists (wrapped) when key is already present, and then
	// the stored object is left unchanged. size may be -1 when unknown.
	Put(ctx context.Context, key string, r io.Reader, size int64) error
	// Get reads length bytes of key starting at off; length < 0 reads to
	// the end. A range running past the end is cut short; one starting
	// past the end is an error. The caller closes the reader.
	Get(ctx context.Context, key string, off, length int64) (io.ReadCloser, error)
	// Stat describes key, or returns ErrNotFound.
	Stat(ctx context.Context, key string) (Info, error)
	// List calls fn for every key under prefix (a plain string prefix:
	// "blobs/sha256/a" matches "blobs/sha256/ab/..."), in no particular
	// order. Returning an error from fn stops the walk and returns that
	// error. Info.ETag may be empty (fs); use Stat for an ETag.
	List(ctx context.Context, prefix string, fn func(Info) error) error
	// Delete removes key. Deleting a missing key is not an error.
	Delete(ctx context.Context, key string) error
	// Swap replaces key's content with data if its current ETag is oldETag,
	// or creates it if oldETag is "" and key does not exist. It returns the
	// new ETag, or ErrConflict (wrapped) when the precondition did not hold.
	Swap(ctx context.Context, key, oldETag string, data []byte) (newETag string, err error)
	// Location names the backend for messages (a path or s3://bucket/prefix),
	// never including credentials.
	Location() string
}
