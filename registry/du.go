package registry

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/deltactl/deltactl/registry/store"
)

// Usage is what DiskUsage reports.
type Usage struct {
	// LogicalBytes is the sum of the file sizes of every manifest stored:
	// what the registry would hold with no dedup and no compression.
	LogicalBytes int64 `json:"logical_bytes"`
	// StoredBytes is what the objects occupy: blob frames, manifests, refs.
	StoredBytes int64 `json:"stored_bytes"`
	Blobs       int   `json:"blobs"`
	Manifests   int   `json:"manifests"`
	Refs        int   `json:"refs"`
	// TempFiles and TempBytes count files interrupted writes left behind
	// (fs only; gc removes those older than its grace period). They are
	// not in StoredBytes.
	TempFiles int   `json:"temp_files"`
	TempBytes int64 `json:"temp_bytes"`
}

// tempFiler is implemented by backends whose interrupted writes leave temp
// files behind (fs; an S3 PUT is atomic on the server).
type tempFiler interface {
	TempFiles(ctx context.Context, olderThan time.Duration) (int, int64, error)
	CleanTemp(ctx context.Context, olderThan time.Duration) (int, error)
}

// DiskUsage sizes the whole registry.
func (r *Registry) DiskUsage(ctx context.Context) (*Usage, error) {
	u := &Usage{}
	var manifests []store.Info
	err := r.b.List(ctx, "", func(i store.Info) error {
		switch {
		case strings.HasPrefix(i.Key, blobPrefix):
			u.Blobs++
		case strings.HasPrefix(i.Key, manifestPrefix):
			u.Manifests++
			manifests = append(manifests, i)
		case strings.HasPrefix(i.Key, refPrefix):
			u.Refs++
		default:
			return nil // not ours
		}
		u.StoredBytes += i.Size
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("du: %w", err)
	}
	if tc, ok := r.b.(tempFiler); ok {
		if u.TempFiles, u.TempBytes, err = tc.TempFiles(ctx, 0); err != nil {
			return nil, fmt.Errorf("du: %w", err)
		}
	}
	for _, i := range manifests {
		d, ok := digestFromKey(i.Key)
		if !ok {
			continue
		}
		m, err := r.Manifest(ctx, d)
		if err != nil {
			continue // verify reports damaged manifests
		}
		u.LogicalBytes += m.LogicalSize()
	}
	return u, nil
}
