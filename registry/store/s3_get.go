package store

import (
	"context"
	"fmt"
	"io"
	"net/http"

	"github.com/minio/minio-go/v7"
)

// s3Reader streams a range of an object and reopens the rest of the range
// after a transient error, pinned to the first response's ETag so a
// replaced object cannot be spliced in.
type s3Reader struct {
	s    *S3
	ctx  context.Context
	key  string
	off  int64 // next byte to read
	left int64 // bytes still wanted; < 0 means to the end
	etag string
	body io.ReadCloser
	// resumes counts reopenings after the first open.
	resumes int
}

// open starts the request for [off, off+left).
func (g *s3Reader) open() error {
	opts := minio.GetObjectOptions{}
	if g.etag != "" {
		if err := opts.SetMatchETag(g.etag); err != nil {
			return err
		}
	}
	switch {
	case g.left > 0:
		if err := opts.SetRange(g.off, g.off+g.left-1); err != nil {
			return err
		}
	case g.off > 0:
		if err := opts.SetRange(g.off, 0); err != nil {
			return err
		}
	}
	body, oi, _, err := g.s.core.GetObject(g.ctx, g.s.bucket, g.s.obj(g.key), opts)
	if err != nil {
		r := minio.ToErrorResponse(err)
		switch {
		case isNotFound(err):
			return ErrNotFound
		case g.etag != "" && isPrecondition(err):
			return fmt.Errorf("%w: object replaced while it was being read", ErrConflict)
		case r.StatusCode == http.StatusRequestedRangeNotSatisfiable || r.Code == "InvalidRange":
			// S3 refuses a range starting at the end; an empty read is the answer then.
			info, serr := g.s.Stat(g.ctx, g.key)
			if serr == nil && g.off == info.Size {
				g.body, g.left = io.NopCloser(eofReader{}), 0
				return nil
			}
			return fmt.Errorf("range start %d outside the object: %w", g.off, err)
		}
		return err
	}
	if g.etag == "" {
		g.etag = oi.ETag
	}
	g.body = body
	return nil
}

type eofReader struct{}

func (eofReader) Read([]byte) (int, error) { return 0, io.EOF }

func (g *s3Reader) Read(p []byte) (int, error) {
	if g.left == 0 {
		return 0, io.EOF
	}
	if g.left > 0 && int64(len(p)) > g.left {
		p = p[:g.left]
	}
	for {
		n, err := g.body.Read(p)
		g.off += int64(n)
		if g.left > 0 {
			g.left -= int64(n)
		}
		if err == nil || n > 0 {
			if err == io.EOF && g.left > 0 {
				err = nil // the next Read reports the short body
			}
			return n, err
		}
		if err == io.EOF {
			if g.left > 0 {
				err = io.ErrUnexpectedEOF // the body ended before the range did
			} else {
				return 0, io.EOF
			}
		}
		if !transient(g.ctx, err) || g.resumes+1 >= g.s.opt.Retry.Attempts {
			return 0, g.s.errorf("get", g.key, err)
		}
		g.resumes++
		_ = g.body.Close() // the broken transfer is dropped; the resume opens a new one
		if oerr := g.s.opt.Retry.do(g.ctx, func(int) error { return g.open() }); oerr != nil {
			return 0, g.s.errorf("get", g.key, fmt.Errorf("resuming at byte %d after %v: %w", g.off, err, oerr))
		}
	}
}

func (g *s3Reader) Close() error { return g.body.Close() }
