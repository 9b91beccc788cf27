package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"syscall"
	"time"

	"github.com/minio/minio-go/v7"
)

// RetryPolicy bounds how the s3 backend retries an operation as a whole.
//
// Retries happen at two levels, both bounded:
//
//   - minio-go retries each HTTP request itself, at most S3Options.RequestRetries
//     times (default 3), when the request body can be rewound (single PUTs
//     of bytes or files, every multipart part, every GET/HEAD/LIST/DELETE):
//     network errors, 408/429/5xx and S3 codes such as InternalError or
//     SlowDown; it waits 200ms*2^i, capped at 1s, with full jitter.
//   - this policy then retries one step at a time (a single PUT; each
//     multipart part, the initiation and the completion; a Get's remaining
//     range; a List from the last key seen; a Stat, Delete or Swap) on the
//     same kinds of errors, at most Attempts times in all, waiting
//     Base*2^i capped at Cap with full jitter. A stream too large to buffer
//     (over 16 MiB, not seekable) is not replayed for a single PUT, but it
//     never needs to be: anything over one part goes up as a multipart
//     upload whose parts are buffered.
//
// So one operation makes at most Attempts*RequestRetries tries of each
// request, and each try is bounded by the transport timeouts (S3Options).
// Precondition failures, missing keys, bad credentials and other 4xx errors
// are never retried. A create-only Put whose first try reached the server but
// whose answer was lost sees ErrExists on the retry: for content-addressed
// keys that is the same outcome, and callers treat ErrExists as success.
// A Swap in the same position re-reads the key and reports success when it
// holds exactly the bytes it wrote.
type RetryPolicy struct {
	Attempts int           // total tries of one operation; 0 means 4
	Base     time.Duration // first backoff; 0 means 100ms
	Cap      time.Duration // longest single backoff; 0 means 2s
}

func (p RetryPolicy) withDefaults() RetryPolicy {
	if p.Attempts <= 0 {
		p.Attempts = 4
	}
	if p.Base <= 0 {
		p.Base = 100 * time.Millisecond
	}
	if p.Cap <= 0 {
		p.Cap = 2 * time.Second
	}
	return p
}

// do runs fn until it succeeds, fails with an error that is not transient,
// runs out of attempts or ctx ends. fn gets the attempt number (0 first).
func (p RetryPolicy) do(ctx context.Context, fn func(attempt int) error) error {
	p = p.withDefaults()
	var err error
	for i := range p.Attempts {
		if err = fn(i); err == nil || !transient(ctx, err) {
			return err
		}
		if i == p.Attempts-1 {
			if i == 0 {
				return err
			}
			return fmt.Errorf("giving up after %d attempts: %w", p.Attempts, err)
		}
		wait := min(p.Cap, p.Base<<uint(i))
		wait = time.Duration(rand.Int64N(int64(wait) + 1)) // full jitter
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
	}
	return err
}

// transient reports whether err may go away on a retry.
func transient(ctx context.Context, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	switch {
	case errors.Is(err, ErrExists), errors.Is(err, ErrConflict), errors.Is(err, ErrNotFound),
		errors.Is(err, ErrBadKey), errors.Is(err, ErrUnsupported), errors.Is(err, errNotReplayable):
		return false
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.EPIPE),
		errors.Is(err, context.DeadlineExceeded): // a transport timeout, ctx itself is live
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	resp := minio.ToErrorResponse(err)
	switch resp.Code {
	case "InternalError", "SlowDown", "RequestTimeout", "ServiceUnavailable", "RequestError",
		"Throttling", "ThrottlingException", "ConditionalRequestConflict", "IncompleteBody":
		return true
	}
	if resp.StatusCode >= 500 || resp.StatusCode == 408 || resp.StatusCode == 429 {
		return true
	}
	if resp.StatusCode == 0 && resp.Code == "" {
		// Not an S3 answer at all: a transport failure minio-go wrapped
		// (connection reset, EOF while reading the answer).
		return errors.Is(err, io.EOF) || isConnError(err)
	}
	return false
}

func isConnError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op)
}

// errNotReplayable marks a failed Put whose input was a stream already consumed.
var errNotReplayable = errors.New("input stream cannot be replayed for a retry")
