package torchpickle

import (
	"bytes"
	"os"
	"testing"

	"github.com/deltactl/deltactl/format"
	"github.com/deltactl/deltactl/internal/testutil"
)

// BenchmarkReadOPTAdapter parses the 1.2 MB PEFT 0.5.0 adapter_model.bin
// from memory (zip index, pickle, 48 storages).
func BenchmarkReadOPTAdapter(b *testing.B) {
	raw, err := os.ReadFile(testutil.SharedData(b, "adapters/peft_lora_opt-125m_regression_0.5.0_bin/adapter_model.bin"))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		if _, err := Read(bytes.NewReader(raw), int64(len(raw)), "bench"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReadLarge reads a synthetic 64 MiB checkpoint (16 x 4 MiB F32
// storages): the cost is the storage copy out of the zip.
func BenchmarkReadLarge(b *testing.B) {
	var ts []*format.Tensor
	for i := range 16 {
		ts = append(ts, &format.Tensor{Name: "layer." + string(rune('a'+i)), DType: format.F32, Shape: []int64{1024, 1024}, Data: make([]byte, 4<<20)})
	}
	var buf bytes.Buffer
	if err := Write(b.Context(), &buf, "archive", ts); err != nil {
		b.Fatal(err)
	}
	raw := buf.Bytes()
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		if _, err := Read(bytes.NewReader(raw), int64(len(raw)), "bench"); err != nil {
			b.Fatal(err)
		}
	}
}
