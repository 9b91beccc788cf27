package registry

import (
	"testing"

	"github.com/deltactl/deltactl/registry/store"
)

// backendsForTest: fs only until the s3 backend and storetest compile; then
// this becomes storetest.Backends(t).
func backendsForTest(t *testing.T) map[string]store.Backend {
	b, err := store.NewFS(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return map[string]store.Backend{"fs": b}
}
