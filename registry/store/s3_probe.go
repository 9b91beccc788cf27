package store

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"

	"github.com/minio/minio-go/v7"
)

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
	_, _ = rand.Read(rnd[:]) // crypto/rand.Read never returns an error (it panics instead)
	key := s.prefix + ".probe/" + hex.EncodeToString(rnd[:])
	defer func() {
		// Best effort: a leftover probe object sits under the hidden .probe/ prefix, which List never shows.
		_ = s.client.RemoveObject(context.WithoutCancel(ctx), s.bucket, key, minio.RemoveObjectOptions{})
	}()
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
			_ = s.core.AbortMultipartUpload(context.WithoutCancel(ctx), s.bucket, key, id) // best effort: the probe result is what matters
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
