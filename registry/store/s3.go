package store

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
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
	c.Conn.SetReadDeadline(time.Now().Add(c.idle))
	return c.Conn.Read(p)
}

func (c *idleConn) Write(p []byte) (int, error) {
	c.Conn.SetWriteDeadline(time.Now().Add(c.idle))
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

// Conditional is what the probe found the server honours.
type Conditional struct {
	// Put: If-None-Match: * on a single PUT refuses an existing key.
	Put bool
	// Match: If-Match with a stale ETag refuses a PUT.
	Match bool
	// Multipart: If-None-Match: * on a multipart upload (sent on its
	// initiation and completion) refuses an existing key. versitygw v1.8.0
	// honours Put and Match but not this.
	Multipart bool
}

// conditional probes the server once (see the type's doc); a probe that
// fails on an error is repeated at the next write.
func (s *S3) conditional(ctx context.Context) (Conditional, error) {
	if s.opt.DisableConditional {
		return Conditional{}, nil
	}
	s.probeMu.Lock()
	defer s.probeMu.Unlock()
	if s.probed {
		return s.cond, nil
	}
	var rnd [8]byte
	rand.Read(rnd[:])
	key := s.prefix + ".probe/" + hex.EncodeToString(rnd[:])
	defer s.client.RemoveObject(context.WithoutCancel(ctx), s.bucket, key, minio.RemoveObjectOptions{})
	fail := func(err error) (Conditional, error) {
		return Conditional{}, s.errorf("probe conditional writes", "", err)
	}
	put := func(opts minio.PutObjectOptions) (bool, error) {
		err := s.opt.Retry.do(ctx, func(int) error {
			_, err := s.client.PutObject(ctx, s.bucket, key, bytes.NewReader([]byte("probe")), 5, opts)
			return err
		})
		if isPrecondition(err) {
			return true, nil
		}
		return false, err
	}
	create := minio.PutObjectOptions{}
	create.SetMatchETagExcept("*")
	if _, err := put(create); err != nil {
		return fail(err)
	}
	var c Conditional
	var err error
	if c.Put, err = put(create); err != nil {
		return fail(err)
	}
	stale := minio.PutObjectOptions{}
	stale.SetMatchETag("00000000000000000000000000000000")
	if c.Match, err = put(stale); err != nil {
		return fail(err)
	}
	if c.Multipart, err = s.probeMultipart(ctx, key, create); err != nil {
		return fail(err)
	}
	s.probed, s.cond = true, c
	return c, nil
}

// probeMultipart completes a one-part multipart upload onto the existing
// key with opts (If-None-Match: *) and reports whether it was refused.
func (s *S3) probeMultipart(ctx context.Context, key string, opts minio.PutObjectOptions) (refused bool, err error) {
	id, err := s.core.NewMultipartUpload(ctx, s.bucket, key, opts)
	if isPrecondition(err) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	completed := false
	defer func() {
		if !completed {
			s.core.AbortMultipartUpload(context.WithoutCancel(ctx), s.bucket, key, id)
		}
	}()
	part, err := s.core.PutObjectPart(ctx, s.bucket, key, id, 1, bytes.NewReader([]byte("probe")), 5, minio.PutObjectPartOptions{})
	if err != nil {
		return false, err
	}
	_, err = s.core.CompleteMultipartUpload(ctx, s.bucket, key, id, []minio.CompletePart{{PartNumber: 1, ETag: part.ETag}}, opts)
	if isPrecondition(err) {
		return true, nil
	}
	completed = err == nil
	return false, err
}

// ConditionalWrites reports which conditional writes the server honours,
// probing it if that has not happened yet.
func (s *S3) ConditionalWrites(ctx context.Context) (Conditional, error) { return s.conditional(ctx) }

func (s *S3) putOptions(size int64) minio.PutObjectOptions {
	part := s.opt.PartSize
	if size > 0 {
		// Keep within S3's 10,000 parts, in whole MiB.
		if need := (uint64(size) + 9999) / 10000; need > part {
			part = (need + 1<<20 - 1) &^ (1<<20 - 1)
		}
	}
	return minio.PutObjectOptions{
		PartSize:    part,
		NumThreads:  s.opt.Threads,
		ContentType: "application/octet-stream",
	}
}

// Put implements Backend. See S3 for the create-only protocol and
// RetryPolicy for retries. Objects up to one part (plus 1 MiB) go up in one PUT; larger
// ones, and streams of unknown size longer than a part, as a multipart
// upload (multipart.go).
func (s *S3) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	if err := ValidKey(key); err != nil {
		return s.errorf("put", "", err)
	}
	cond, err := s.conditional(ctx)
	if err != nil {
		return s.errorf("put", key, err)
	}
	part := int64(s.putOptions(size).PartSize)
	if size < 0 {
		// Read one part ahead: a short stream becomes a single PUT of
		// known size, a long one a multipart upload.
		var head bytes.Buffer
		n, err := io.CopyN(&head, ctxReader{ctx, r}, part)
		switch {
		case err == io.EOF:
			r, size = bytes.NewReader(head.Bytes()), n
		case err != nil:
			return s.errorf("put", key, fmt.Errorf("reading input: %w", err))
		default:
			r = io.MultiReader(bytes.NewReader(head.Bytes()), r)
		}
	}
	// A known size a little over one part still goes up in one PUT: the
	// registry's frames are a chunk plus a small header, and splitting them
	// into a part and a sliver would double the requests.
	multipart := size < 0 || size > part+singlePutSlack
	if !cond.Put || multipart && !cond.Multipart {
		// The server will not refuse an existing key: look first.
		if _, err := s.Stat(ctx, key); err == nil {
			return s.errorf("put", key, ErrExists)
		} else if !errors.Is(err, ErrNotFound) {
			return err
		}
	}
	body, rewind, err := replayable(r, size)
	if err != nil {
		return s.errorf("put", key, err)
	}
	if multipart {
		if err := s.putMultipart(ctx, key, body, size, part, cond.Multipart); err != nil {
			return s.errorf("put", key, err)
		}
		return nil
	}
	err = s.opt.Retry.do(ctx, func(attempt int) error {
		if attempt > 0 {
			if err := rewind(); err != nil {
				return err
			}
		}
		opts := s.putOptions(size)
		if cond.Put {
			opts.SetMatchETagExcept("*")
		}
		info, err := s.client.PutObject(ctx, s.bucket, s.obj(key), body, size, opts)
		if err != nil {
			if isPrecondition(err) {
				return ErrExists
			}
			return err
		}
		if info.Size != size {
			return fmt.Errorf("stored %d bytes, want %d", info.Size, size)
		}
		return nil
	})
	if err != nil {
		return s.errorf("put", key, err)
	}
	return nil
}

// replayable returns a reader for r and a function that rewinds it for a
// retry: seekable inputs seek back (and, with a known size, come back as a
// section that multipart uploads read in parallel); small streams are
// buffered; large streams cannot be replayed as a whole (their parts are,
// from their buffers).
func replayable(r io.Reader, size int64) (io.Reader, func() error, error) {
	if sk, ok := r.(io.ReadSeeker); ok {
		start, err := sk.Seek(0, io.SeekCurrent)
		if err == nil && size >= 0 {
			// Refuse short input now rather than retrying it.
			end, err := sk.Seek(0, io.SeekEnd)
			if err != nil {
				return nil, nil, err
			}
			if _, err := sk.Seek(start, io.SeekStart); err != nil {
				return nil, nil, err
			}
			if end-start < size {
				return nil, nil, fmt.Errorf("input has %d bytes, want %d", end-start, size)
			}
		}
		if err == nil {
			if ra, ok := r.(io.ReaderAt); ok && size >= 0 {
				// A section lets minio-go read parts in parallel from the right offset.
				sec := io.NewSectionReader(ra, start, size)
				return sec, func() error { _, err := sec.Seek(0, io.SeekStart); return err }, nil
			}
			return r, func() error { _, err := sk.Seek(start, io.SeekStart); return err }, nil
		}
	}
	if size >= 0 && size <= replayBuffer {
		buf := make([]byte, size)
		if _, err := io.ReadFull(r, buf); err != nil {
			return nil, nil, fmt.Errorf("reading input: %w (want %d bytes)", err, size)
		}
		br := bytes.NewReader(buf)
		return br, func() error { _, err := br.Seek(0, io.SeekStart); return err }, nil
	}
	return r, func() error { return errNotReplayable }, nil
}

// Get implements Backend. A transfer cut in the middle resumes from where
// it stopped, pinned to the same object version (If-Match on its ETag), at
// most Retry.Attempts times.
func (s *S3) Get(ctx context.Context, key string, off, length int64) (io.ReadCloser, error) {
	if err := ValidKey(key); err != nil {
		return nil, s.errorf("get", "", err)
	}
	if off < 0 {
		return nil, s.errorf("get", key, fmt.Errorf("negative range start %d", off))
	}
	if length == 0 {
		info, err := s.Stat(ctx, key)
		if err != nil {
			return nil, err
		}
		if off > info.Size {
			return nil, s.errorf("get", key, fmt.Errorf("range start %d outside object of %d bytes", off, info.Size))
		}
		return io.NopCloser(bytes.NewReader(nil)), nil
	}
	g := &s3Reader{s: s, ctx: ctx, key: key, off: off, left: length}
	if err := s.opt.Retry.do(ctx, func(int) error { return g.open() }); err != nil {
		return nil, s.errorf("get", key, err)
	}
	return g, nil
}

// Stat implements Backend.
func (s *S3) Stat(ctx context.Context, key string) (Info, error) {
	if err := ValidKey(key); err != nil {
		return Info{}, s.errorf("stat", "", err)
	}
	var oi minio.ObjectInfo
	err := s.opt.Retry.do(ctx, func(int) (err error) {
		oi, err = s.client.StatObject(ctx, s.bucket, s.obj(key), minio.StatObjectOptions{})
		if isNotFound(err) {
			return ErrNotFound
		}
		return err
	})
	if err != nil {
		return Info{}, s.errorf("stat", key, err)
	}
	return Info{Key: key, Size: oi.Size, ModTime: oi.LastModified, ETag: oi.ETag}, nil
}

// List implements Backend, in key order. A listing cut by a transient error
// resumes after the last key delivered.
func (s *S3) List(ctx context.Context, prefix string, fn func(Info) error) error {
	if err := ValidPrefix(prefix); err != nil {
		return s.errorf("list", "", err)
	}
	last := ""
	var fnErr error
	err := s.opt.Retry.do(ctx, func(int) error {
		lctx, cancel := context.WithCancel(ctx)
		defer cancel()
		opts := minio.ListObjectsOptions{Prefix: s.prefix + prefix, Recursive: true}
		if last != "" {
			opts.StartAfter = s.prefix + last
		}
		ch := s.client.ListObjects(lctx, s.bucket, opts)
		defer func() {
			cancel()
			for range ch { // drain so the lister goroutine ends
			}
		}()
		for oi := range ch {
			if oi.Err != nil {
				return oi.Err
			}
			key := strings.TrimPrefix(oi.Key, s.prefix)
			if ValidKey(key) != nil {
				continue // reserved names (the probe) and foreign objects
			}
			last = key
			if err := fn(Info{Key: key, Size: oi.Size, ModTime: oi.LastModified, ETag: oi.ETag}); err != nil {
				fnErr = err
				return err
			}
		}
		return nil
	})
	if fnErr != nil {
		return fnErr
	}
	if err != nil {
		return s.errorf("list", prefix, err)
	}
	return nil
}

// Delete implements Backend.
func (s *S3) Delete(ctx context.Context, key string) error {
	if err := ValidKey(key); err != nil {
		return s.errorf("delete", "", err)
	}
	err := s.opt.Retry.do(ctx, func(int) error {
		err := s.client.RemoveObject(ctx, s.bucket, s.obj(key), minio.RemoveObjectOptions{})
		if isNotFound(err) {
			return nil
		}
		return err
	})
	if err != nil {
		return s.errorf("delete", key, err)
	}
	return nil
}

// Swap implements Backend with If-Match / If-None-Match (see S3).
func (s *S3) Swap(ctx context.Context, key, oldETag string, data []byte) (string, error) {
	if err := ValidKey(key); err != nil {
		return "", s.errorf("swap", "", err)
	}
	cond, err := s.conditional(ctx)
	if err != nil {
		return "", s.errorf("swap", key, err)
	}
	if !cond.Put || !cond.Match {
		return "", s.errorf("swap", key, fmt.Errorf("%w: server %s ignores conditional writes (If-Match / If-None-Match), so a ref cannot be moved without risking a lost update", ErrUnsupported, s.location))
	}
	var etag string
	err = s.opt.Retry.do(ctx, func(int) error {
		opts := minio.PutObjectOptions{ContentType: "text/plain"}
		if oldETag == "" {
			opts.SetMatchETagExcept("*")
		} else {
			opts.SetMatchETag(oldETag)
		}
		info, err := s.client.PutObject(ctx, s.bucket, s.obj(key), bytes.NewReader(data), int64(len(data)), opts)
		if err == nil {
			etag = info.ETag
			return nil
		}
		if oldETag != "" && isNotFound(err) {
			return fmt.Errorf("%w: deleted by someone else", ErrConflict)
		}
		if !isPrecondition(err) {
			return err
		}
		// Refused. If the key holds our bytes, our own earlier try went
		// through and only its answer was lost.
		cur, curTag, rerr := s.readSmall(ctx, key, len(data))
		if rerr == nil && bytes.Equal(cur, data) {
			etag = curTag
			return nil
		}
		switch {
		case oldETag == "":
			return fmt.Errorf("%w: created by someone else", ErrConflict)
		case errors.Is(rerr, ErrNotFound):
			return fmt.Errorf("%w: deleted by someone else", ErrConflict)
		}
		return fmt.Errorf("%w: expected version %s, found %s", ErrConflict, oldETag, curTag)
	})
	if err != nil {
		return "", s.errorf("swap", key, err)
	}
	return etag, nil
}

// readSmall reads key if it is at most limit bytes (else returns nil data).
func (s *S3) readSmall(ctx context.Context, key string, limit int) ([]byte, string, error) {
	rc, oi, _, err := s.core.GetObject(ctx, s.bucket, s.obj(key), minio.GetObjectOptions{})
	if err != nil {
		if isNotFound(err) {
			return nil, "", ErrNotFound
		}
		return nil, "", err
	}
	defer rc.Close()
	if oi.Size > int64(limit) {
		return nil, oi.ETag, nil
	}
	data, err := io.ReadAll(io.LimitReader(rc, int64(limit)+1))
	return data, oi.ETag, err
}
