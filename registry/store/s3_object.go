package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/minio/minio-go/v7"
)

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
// upload (s3_multipart.go).
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
