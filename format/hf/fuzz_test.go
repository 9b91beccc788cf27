package hf

import (
	"errors"
	"path/filepath"
	"testing"
)

// FuzzParseIndex: any bytes either fail with ErrIndex or give a weight map
// whose shard names all stay inside the folder. Seeds: testdata/fuzz/.
func FuzzParseIndex(f *testing.F) {
	f.Add([]byte(`{"metadata":{"total_size":8},"weight_map":{"a":"model-00001-of-00001.safetensors"}}`))
	f.Add([]byte(`{"weight_map":{"a":"../x.safetensors"}}`))
	f.Add([]byte(`{"metadata":{"total_size":1.5},"weight_map":{}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		idx, err := ParseIndex(b, "fuzz")
		if err != nil {
			if !errors.Is(err, ErrIndex) {
				t.Fatalf("error does not wrap ErrIndex: %v", err)
			}
			return
		}
		for _, s := range idx.Shards() {
			if !filepath.IsLocal(s) || filepath.Ext(s) != ".safetensors" {
				t.Fatalf("shard %q accepted", s)
			}
		}
	})
}
