package registry

import (
	"testing"

	"github.com/deltactl/deltactl/registry/store"
	"github.com/deltactl/deltactl/registry/store/storetest"
)

// backendsForTest: fs always, s3 when DELTACTL_TEST_S3_ENDPOINT is set.
func backendsForTest(t *testing.T) map[string]store.Backend {
	return storetest.Backends(t)
}
