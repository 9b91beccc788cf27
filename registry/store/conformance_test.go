package store_test

import (
	"testing"

	"github.com/deltactl/deltactl/registry/store/storetest"
)

// TestBackendConformance runs the shared suite on every backend available:
// fs always, s3 when DELTACTL_TEST_S3_ENDPOINT is set.
func TestBackendConformance(t *testing.T) {
	t.Run("fs", func(t *testing.T) { storetest.Run(t, storetest.NewFS(t)) })
	t.Run("s3", func(t *testing.T) { storetest.Run(t, storetest.NewS3(t, nil)) })
}
