package train

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/deltactl/deltactl/format"
	"github.com/deltactl/deltactl/internal/testutil"
)

// TestComputeBF16 trains the same LoRA and adapter runs on the BF16
// tinyllama with Compute "bf16" (frozen products on kernels.Bgemm) and
// "f32": the final losses agree within 1%, and differ (the bf16 path ran).
func TestComputeBF16(t *testing.T) {
	ctx := context.Background()
	base := testutil.Testdata(t, "tinyllama")
	text, err := os.ReadFile(testutil.Testdata(t, "tinyllama/heldout.txt"))
	if err != nil {
		t.Fatal(err)
	}
	data := &Dataset{Path: "heldout.txt", Kind: "text", Stream: bytesToTokens(text)}
	for _, method := range []string{"lora", "adapter"} {
		losses := map[string]float64{}
		for _, compute := range []string{ComputeF32, ComputeBF16} {
			m, err := LoadModel(ctx, base, 0)
			if err != nil {
				t.Fatal(err)
			}
			o := DefaultOptions()
			o.Method, o.Steps, o.Batch, o.Seq, o.Threads, o.LR, o.Compute = methodOf(method), 20, 4, 64, 2, 3e-3, compute
			o.LoRA.Targets = LoRATargets
			o.Out = filepath.Join(t.TempDir(), "out")
			res, err := Train(ctx, m, data, nil, o)
			if err != nil {
				t.Fatal(err)
			}
			// The mean of the last steps: one step's loss is one batch's.
			var s float64
			for _, l := range res.Losses[12:] {
				s += l
			}
			losses[compute] = s / 8
			_ = m.Close()
		}
		f, b := losses[ComputeF32], losses[ComputeBF16]
		t.Logf("%s: final loss f32 %.5f, bf16 %.5f (%.3f%%)", method, f, b, 100*(b-f)/f)
		if math.Abs(b-f) > 0.01*f || b == f {
			t.Errorf("%s: final loss f32 %v, bf16 %v: want within 1%% and not equal", method, f, b)
		}
	}
}

func methodOf(s string) format.Method { return format.Method(s) }
