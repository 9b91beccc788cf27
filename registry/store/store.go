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
	// ErrDenied: the storage refused the credentials or the access (S3 403).
	ErrDenied = errors.New("access denied")
)

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
