package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"sync"
	"time"

	"github.com/minio/minio-go/v7"
)

// putMultipart uploads r as a multipart upload of size bytes (or up to EOF
// when size < 0) in parts of partSize, Threads at a time, and completes it
// with If-None-Match: * when ifNoneMatch is set.
//
// It drives the upload itself rather than through minio-go's PutObject,
// because minio-go v7.4.1 drops custom headers from CompleteMultipartUpload
// (completeUploadOpts), and the completion is the only step where S3 and
// versitygw check If-None-Match for a multipart upload.
//
// Every part is retried on its own (RetryPolicy, plus minio-go's per-request
// retries), from its section of an io.ReaderAt or from its buffer. On any
// failure the upload is aborted, so no object and no parts are left; the
// object only appears when CompleteMultipartUpload succeeds.
func (s *S3) putMultipart(ctx context.Context, key string, r io.Reader, size, partSize int64, ifNoneMatch bool) (err error) {
	obj := s.obj(key)
	var id string
	err = s.opt.Retry.do(ctx, func(int) (err error) {
		id, err = s.core.NewMultipartUpload(ctx, s.bucket, obj, minio.PutObjectOptions{ContentType: "application/octet-stream"})
		return err
	})
	if err != nil {
		return fmt.Errorf("start multipart upload: %w", err)
	}
	completed := false
	defer func() {
		if !completed {
			actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
			defer cancel()
			_ = s.core.AbortMultipartUpload(actx, s.bucket, obj, id) // best effort: the upload already failed, and a bucket lifecycle rule can expire leftover parts
		}
	}()

	parts, total, err := s.uploadParts(ctx, obj, id, r, size, partSize)
	if err != nil {
		return err
	}
	if size >= 0 && total != size {
		return fmt.Errorf("input has %d bytes, want %d", total, size)
	}
	opts := minio.PutObjectOptions{}
	if ifNoneMatch {
		opts.SetMatchETagExcept("*")
	}
	err = s.opt.Retry.do(ctx, func(attempt int) error {
		_, err := s.core.CompleteMultipartUpload(ctx, s.bucket, obj, id, parts, opts)
		switch {
		case err == nil:
			completed = true
			return nil
		case isPrecondition(err):
			return ErrExists
		case attempt > 0 && minio.ToErrorResponse(err).Code == "NoSuchUpload":
			// An earlier try completed the upload and only its answer
			// was lost: the object is ours.
			completed = true
			return ErrExists
		}
		return err
	})
	if err != nil && !errors.Is(err, ErrExists) {
		return fmt.Errorf("complete multipart upload: %w", err)
	}
	return err
}

type partJob struct {
	n    int
	body io.ReadSeeker
	size int64
	buf  []byte // returned to the pool when the part is done (streams only)
}

// uploadParts sends the parts and returns them in order with the total size.
func (s *S3) uploadParts(ctx context.Context, obj, id string, r io.Reader, size, partSize int64) ([]minio.CompletePart, int64, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu       sync.Mutex
		parts    []minio.CompletePart
		firstErr error
	)
	fail := func(err error) {
		mu.Lock()
		if firstErr == nil {
			firstErr = err
		}
		mu.Unlock()
		cancel()
	}
	threads := int(s.opt.Threads)
	src := newPartSource(r, size, partSize, threads)
	jobs := make(chan partJob)
	var wg sync.WaitGroup
	for range threads {
		wg.Go(func() {
			for j := range jobs {
				p, err := s.uploadPart(ctx, obj, id, j)
				src.release(j)
				if err != nil {
					fail(fmt.Errorf("part %d: %w", j.n, err))
					continue
				}
				mu.Lock()
				parts = append(parts, p)
				mu.Unlock()
			}
		})
	}
	var total int64
	readErr := func() error {
		for {
			j, ok, err := src.next(ctx)
			if err != nil || !ok {
				return err
			}
			select {
			case jobs <- j:
			case <-ctx.Done():
				return nil // a part failed (firstErr) or ctx ended: reported below
			}
			total += j.size
		}
	}()
	close(jobs)
	wg.Wait()
	if readErr != nil {
		return nil, 0, readErr
	}
	if firstErr != nil {
		return nil, 0, firstErr
	}
	if err := ctx.Err(); err != nil {
		return nil, 0, err
	}
	sort.Slice(parts, func(a, b int) bool { return parts[a].PartNumber < parts[b].PartNumber })
	return parts, total, nil
}

// partSource cuts an upload's input into parts: sections read in place
// when the input is an io.ReaderAt of known size, otherwise buffers filled
// from the stream, at most threads+1 of them, reused as parts finish.
type partSource struct {
	r         io.Reader
	ra        io.ReaderAt // non-nil: parts are sections of it
	size      int64
	partSize  int64
	bufs      chan []byte // buffers of finished parts
	maxBufs   int
	allocated int
	n         int   // parts produced so far
	off       int64 // bytes produced so far
	eof       bool
}

func newPartSource(r io.Reader, size, partSize int64, threads int) *partSource {
	ps := &partSource{r: r, size: size, partSize: partSize, bufs: make(chan []byte, threads+1), maxBufs: threads + 1}
	if ra, ok := r.(io.ReaderAt); ok && size >= 0 {
		ps.ra = ra
	}
	return ps
}

// next returns the next part, or ok=false at the end of the input or when
// ctx ends while waiting for a free buffer.
func (ps *partSource) next(ctx context.Context) (j partJob, ok bool, err error) {
	n := ps.n + 1
	switch {
	case ps.eof:
		return partJob{}, false, nil
	case n > 10000:
		return partJob{}, false, fmt.Errorf("more than 10000 parts of %d bytes", ps.partSize)
	case ps.ra != nil:
		if ps.off >= ps.size {
			return partJob{}, false, nil
		}
		l := min(ps.partSize, ps.size-ps.off)
		j = partJob{n: n, body: io.NewSectionReader(ps.ra, ps.off, l), size: l}
	default:
		buf := ps.buffer(ctx)
		if buf == nil {
			return partJob{}, false, nil
		}
		k, err := io.ReadFull(ctxReader{ctx, ps.r}, buf)
		if err == io.EOF && n > 1 {
			return partJob{}, false, nil // the previous part ended exactly at EOF
		}
		if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
			return partJob{}, false, fmt.Errorf("reading input: %w", err)
		}
		ps.eof = err != nil
		j = partJob{n: n, body: bytes.NewReader(buf[:k]), size: int64(k), buf: buf}
	}
	ps.n, ps.off = n, ps.off+j.size
	return j, true, nil
}

// buffer returns a free part buffer, allocating up to maxBufs and then
// waiting for one to be released; nil when ctx ends first.
func (ps *partSource) buffer(ctx context.Context) []byte {
	select {
	case buf := <-ps.bufs:
		return buf
	default:
	}
	if ps.allocated < ps.maxBufs {
		ps.allocated++
		return make([]byte, ps.partSize)
	}
	select {
	case buf := <-ps.bufs:
		return buf
	case <-ctx.Done():
		return nil
	}
}

// release returns a finished part's buffer to the pool.
func (ps *partSource) release(j partJob) {
	if j.buf != nil {
		ps.bufs <- j.buf
	}
}

func (s *S3) uploadPart(ctx context.Context, obj, id string, j partJob) (minio.CompletePart, error) {
	var p minio.ObjectPart
	err := s.opt.Retry.do(ctx, func(attempt int) error {
		if attempt > 0 {
			if _, err := j.body.Seek(0, io.SeekStart); err != nil {
				return err
			}
		}
		var err error
		p, err = s.core.PutObjectPart(ctx, s.bucket, obj, id, j.n, j.body, j.size, minio.PutObjectPartOptions{})
		return err
	})
	return minio.CompletePart{PartNumber: j.n, ETag: p.ETag}, err
}
