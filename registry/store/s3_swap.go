package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/minio/minio-go/v7"
)

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
	defer func() { _ = rc.Close() }() // read only: what was read is checked, a close error loses nothing
	if oi.Size > int64(limit) {
		return nil, oi.ETag, nil
	}
	data, err := io.ReadAll(io.LimitReader(rc, int64(limit)+1))
	return data, oi.ETag, err
}
