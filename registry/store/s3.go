package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// S3Options configure an s3 backend. Credentials are used to sign requests
// and never appear in Location or in any error.
type S3Options struct {
	// Endpoint is "http://host:port" or "https://host[:port]" (a bare host
	// means https). It must not carry credentials or a path.
	Endpoint string
	Bucket   string
	// Prefix puts every key under "PREFIX/" in the bucket ("" for the root).
	Prefix string

	AccessKey, SecretKey, SessionToken string
	// Region defaults to us-east-1.
	Region string

	// CreateBucket makes the bucket when it does not exist.
	CreateBucket bool

	// PartSize is the multipart part size (default 32 MiB, at least 5 MiB;
	// raised for objects over 10,000 parts). Objects up to one part go up
	// in a single atomic PUT. Memory held by one upload is at most
	// (Threads+1)*PartSize when the input is a plain stream; files, byte
	// slices and other io.ReaderAt+io.Seeker inputs are read in place.
	PartSize uint64
	// Threads is the number of parts uploaded at once (default 4).
	Threads uint

	// Retry bounds whole-operation retries; RequestRetries bounds minio-go's
	// own per-request retries (default 3; 1 disables them). See RetryPolicy.
	Retry          RetryPolicy
	RequestRetries int

	// Transport timeouts, so that a stalled server cannot hang an
	// operation: DialTimeout (default 10s) to connect, HeaderTimeout
	// (default 60s) for the server to start answering, IdleTimeout
	// (default 60s) for any read or write on the connection to progress.
	DialTimeout, HeaderTimeout, IdleTimeout time.Duration

	// DisableConditional skips the probe and behaves as for a server that
	// ignores conditional writes (see S3). For servers known to lack them.
	DisableConditional bool
}

// S3 is the backend for S3-compatible servers, through minio-go.
//
// Put is create-only with "If-None-Match: *" (on the single PUT, or on the
// initiation and completion of a multipart upload, so a racing writer can
// never replace an object), and the object becomes visible only when the
// PUT or CompleteMultipartUpload succeeds: a failed multipart upload is
// aborted and leaves no object. A refused precondition maps to ErrExists.
//
// Swap sends "If-Match: <old ETag>" (or "If-None-Match: *" to create); a
// refused precondition maps to ErrConflict, after one re-read: if the key
// already holds exactly the new bytes (the write went through but its answer
// was lost and a retry was refused), Swap reports success.
//
// Servers that ignore conditional writes. Before its first write the backend
// probes the server once, on a probe key under "PREFIX/.probe/" (never
// listed, deleted afterwards): it creates the key with If-None-Match: *,
// tries that again, tries an If-Match with a wrong ETag, and completes a
// one-part multipart upload onto the key with If-None-Match: *. Each second
// try must be refused. Where the server does not refuse, the backend falls
// back to a protocol that stays safe, and says so:
//   - Put (single PUT without If-None-Match support, or a multipart upload
//     without it: versitygw v1.8.0 ignores it on multipart uploads) checks
//     that the key is absent first, then writes. Two writers racing on one
//     key between the check and the write can both write; registry keys
//     written with Put are content-addressed (a blob or manifest is named by
//     the digest of its decoded bytes), so either version is the same
//     content, and each write is atomic, so a reader never sees a mix.
//   - Swap refuses with ErrUnsupported when If-None-Match or If-Match on a
//     PUT is ignored. Moving a ref there would be a silent last-writer-wins
//     race, so the backend does not pretend; use a server with conditional
//     writes (AWS S3, MinIO, versitygw...) or a folder registry for refs.
type S3 struct {
	client   *minio.Client
	core     minio.Core
	bucket   string
	prefix   string // "" or "p/"
	location string
	opt      S3Options

	probeMu sync.Mutex
	probed  bool
	cond    Conditional
}

// Compile-time checks of the interfaces the s3 backend's types implement.
var (
	_ Backend       = (*S3)(nil)
	_ io.ReadCloser = (*s3Reader)(nil)
	_ net.Conn      = (*idleConn)(nil)
)

const (
	defaultPartSize = 32 << 20
	singlePutSlack  = 1 << 20
	minPartSize     = 5 << 20
	// replayBuffer: a stream this small is buffered so a Put can be retried.
	replayBuffer = 16 << 20
)

// NewS3 connects to the bucket (creating it when opt.CreateBucket is set).
func NewS3(ctx context.Context, opt S3Options) (*S3, error) {
	if opt.Bucket == "" {
		return nil, errors.New("s3: no bucket given")
	}
	prefix := strings.Trim(opt.Prefix, "/")
	if prefix != "" {
		if err := ValidKey(prefix); err != nil {
			return nil, fmt.Errorf("s3: prefix: %w", err)
		}
		prefix += "/"
	}
	loc := "s3://" + opt.Bucket
	if prefix != "" {
		loc += "/" + strings.TrimSuffix(prefix, "/")
	}
	host, secure, err := parseEndpoint(opt.Endpoint)
	if err != nil {
		return nil, fmt.Errorf("s3 %s: %w", loc, err)
	}
	if opt.Region == "" {
		opt.Region = "us-east-1"
	}
	if opt.PartSize == 0 {
		opt.PartSize = defaultPartSize
	}
	if opt.PartSize < minPartSize {
		return nil, fmt.Errorf("s3 %s: part size %d below the S3 minimum of 5 MiB", loc, opt.PartSize)
	}
	if opt.Threads == 0 {
		opt.Threads = 4
	}
	if opt.RequestRetries <= 0 {
		opt.RequestRetries = 3
	}
	opt.Retry = opt.Retry.withDefaults()
	tr, err := newTransport(secure, opt)
	if err != nil {
		return nil, fmt.Errorf("s3 %s: %w", loc, err)
	}
	client, err := minio.New(host, &minio.Options{
		Creds:      credentials.NewStaticV4(opt.AccessKey, opt.SecretKey, opt.SessionToken),
		Secure:     secure,
		Region:     opt.Region,
		Transport:  tr,
		MaxRetries: opt.RequestRetries,
		// Path-style requests work with every S3-compatible server.
		BucketLookup: minio.BucketLookupPath,
	})
	if err != nil {
		return nil, fmt.Errorf("s3 %s: client: %v", loc, redact(err, opt))
	}
	s := &S3{client: client, core: minio.Core{Client: client}, bucket: opt.Bucket, prefix: prefix, location: loc, opt: opt}
	if err := s.ensureBucket(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// parseEndpoint splits an endpoint URL into host[:port] and whether TLS is used.
func parseEndpoint(ep string) (host string, secure bool, err error) {
	if ep == "" {
		return "", false, errors.New("no endpoint: set DELTACTL_S3_ENDPOINT or AWS_ENDPOINT_URL (e.g. http://127.0.0.1:7070)")
	}
	if !strings.Contains(ep, "://") {
		ep = "https://" + ep
	}
	u, err := url.Parse(ep)
	if err != nil {
		// url's error quotes the input, which could hold a password.
		return "", false, errors.New("endpoint is not a valid URL")
	}
	if u.User != nil {
		return "", false, errors.New("endpoint must not contain credentials; use AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
	}
	if u.Path != "" && u.Path != "/" || u.RawQuery != "" {
		return "", false, fmt.Errorf("endpoint %s://%s must not have a path or query", u.Scheme, u.Host)
	}
	switch u.Scheme {
	case "http":
		return u.Host, false, nil
	case "https":
		return u.Host, true, nil
	}
	return "", false, fmt.Errorf("endpoint scheme %q: want http or https", u.Scheme)
}

// redact removes the secrets from an error's text, in case a library quoted them.
func redact(err error, opt S3Options) string {
	msg := err.Error()
	for _, s := range []string{opt.SecretKey, opt.SessionToken} {
		if len(s) >= 4 {
			msg = strings.ReplaceAll(msg, s, "[REDACTED]")
		}
	}
	return msg
}

// newTransport builds minio-go's transport with our bounded timeouts. Every
// read and write on a connection must make progress within IdleTimeout, so a
// stalled server turns into a retryable timeout instead of a hang.
func newTransport(secure bool, opt S3Options) (*http.Transport, error) {
	tr, err := minio.DefaultTransport(secure)
	if err != nil {
		return nil, err
	}
	dial := opt.DialTimeout
	if dial <= 0 {
		dial = 10 * time.Second
	}
	idle := opt.IdleTimeout
	if idle <= 0 {
		idle = time.Minute
	}
	d := &net.Dialer{Timeout: dial, KeepAlive: 30 * time.Second}
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &idleConn{Conn: c, idle: idle}, nil
	}
	tr.ResponseHeaderTimeout = time.Minute
	if opt.HeaderTimeout > 0 {
		tr.ResponseHeaderTimeout = opt.HeaderTimeout
	}
	return tr, nil
}

// idleConn fails a Read or Write that makes no progress for idle.
type idleConn struct {
	net.Conn
	idle time.Duration
}

func (c *idleConn) Read(p []byte) (int, error) {
	_ = c.Conn.SetReadDeadline(time.Now().Add(c.idle)) // a closed conn fails the Read itself
	return c.Conn.Read(p)
}

func (c *idleConn) Write(p []byte) (int, error) {
	_ = c.Conn.SetWriteDeadline(time.Now().Add(c.idle)) // a closed conn fails the Write itself
	return c.Conn.Write(p)
}

func (s *S3) ensureBucket(ctx context.Context) error {
	var ok bool
	err := s.opt.Retry.do(ctx, func(int) (err error) {
		ok, err = s.client.BucketExists(ctx, s.bucket)
		return err
	})
	if err != nil {
		return s.errorf("open", "", withHint(err))
	}
	if ok {
		return nil
	}
	if !s.opt.CreateBucket {
		return fmt.Errorf("s3 %s: bucket %q does not exist", s.location, s.bucket)
	}
	err = s.opt.Retry.do(ctx, func(int) error {
		err := s.client.MakeBucket(ctx, s.bucket, minio.MakeBucketOptions{Region: s.opt.Region})
		switch minio.ToErrorResponse(err).Code {
		case "BucketAlreadyOwnedByYou", "BucketAlreadyExists":
			return nil // created meanwhile, by us or a concurrent opener
		}
		return err
	})
	if err != nil {
		return s.errorf("create bucket", "", err)
	}
	return nil
}

// Location returns s3://BUCKET[/PREFIX].
func (s *S3) Location() string { return s.location }

func (s *S3) obj(key string) string { return s.prefix + key }

// errorf wraps err with the location, operation and key. S3 errors keep
// their code and message (never request headers or credentials).
func (s *S3) errorf(op, key string, err error) error {
	if r := (minio.ErrorResponse{}); errors.As(err, &r) && r.StatusCode == http.StatusForbidden {
		err = fmt.Errorf("%w: %w", ErrDenied, err)
	}
	if key == "" {
		return fmt.Errorf("s3 %s: %s: %w", s.location, op, err)
	}
	return fmt.Errorf("s3 %s: %s %q: %w", s.location, op, key, err)
}

// withHint adds what to check to errors that arrive without an S3 error
// body (HEAD answers have none).
func withHint(err error) error {
	switch minio.ToErrorResponse(err).StatusCode {
	case http.StatusForbidden:
		return fmt.Errorf("%w (access denied: check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)", err)
	case http.StatusBadRequest:
		return fmt.Errorf("%w (the server refused the request: check the credentials, AWS_SESSION_TOKEN and AWS_REGION)", err)
	}
	return err
}

func isNotFound(err error) bool {
	r := minio.ToErrorResponse(err)
	return r.Code == "NoSuchKey" || (r.StatusCode == http.StatusNotFound && r.Code != "NoSuchBucket")
}

func isPrecondition(err error) bool {
	r := minio.ToErrorResponse(err)
	return r.StatusCode == http.StatusPreconditionFailed || r.Code == "PreconditionFailed" ||
		r.StatusCode == http.StatusNotModified // MinIO once answered 304 (minio/minio#19442)
}
