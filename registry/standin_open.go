package registry

// Private stand-in for store.Open, which another engineer is writing: it
// opens folder registries only. TODO(lead): swap for store.Open.

import (
	"context"
	"fmt"
	"strings"

	"github.com/deltactl/deltactl/registry/store"
)

func openBackend(ctx context.Context, url string) (store.Backend, error) {
	if strings.HasPrefix(url, "s3://") {
		return nil, fmt.Errorf("registry %s: s3 not available in this build yet", url)
	}
	return store.NewFS(strings.TrimPrefix(url, "file://"))
}
