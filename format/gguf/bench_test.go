package gguf_test

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/deltactl/deltactl/format"
	"github.com/deltactl/deltactl/format/gguf"
	"github.com/deltactl/deltactl/format/safetensors"
	"github.com/deltactl/deltactl/internal/atomicfile"
)

// benchModel writes a llama-shaped model of about 32M parameters (2
// layers of hidden 1024 / ff 4096, byte vocabulary) in dtype dt.
func benchModel(b *testing.B, dt format.DType) string {
	dir := filepath.Join(b.TempDir(), "m-"+dt.String())
	const D, F, V, L = 1024, 4096, 512, 2
	var ts []*format.Tensor
	mk := func(name string, shape ...int64) {
		n, _ := format.NumElements(shape)
		data := make([]byte, n*int64(dt.Size()))
		for i := int64(0); i < n; i++ {
			v := float32(math.Sin(float64(i))) * 0.05
			switch dt {
			case format.F32:
				binary.LittleEndian.PutUint32(data[4*i:], math.Float32bits(v))
			case format.BF16:
				binary.LittleEndian.PutUint16(data[2*i:], uint16(math.Float32bits(v)>>16))
			}
		}
		ts = append(ts, &format.Tensor{Name: name, DType: dt, Shape: shape, Data: data})
	}
	mk("model.embed_tokens.weight", V, D)
	for l := 0; l < L; l++ {
		p := fmt.Sprintf("model.layers.%d.", l)
		mk(p+"input_layernorm.weight", D)
		mk(p+"self_attn.q_proj.weight", D, D)
		mk(p+"self_attn.k_proj.weight", D, D)
		mk(p+"self_attn.v_proj.weight", D, D)
		mk(p+"self_attn.o_proj.weight", D, D)
		mk(p+"post_attention_layernorm.weight", D)
		mk(p+"mlp.gate_proj.weight", F, D)
		mk(p+"mlp.up_proj.weight", F, D)
		mk(p+"mlp.down_proj.weight", D, F)
	}
	mk("model.norm.weight", D)
	mk("lm_head.weight", V, D)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	cfg, _ := json.Marshal(map[string]any{"model_type": "llama", "hidden_size": D, "intermediate_size": F,
		"num_hidden_layers": L, "num_attention_heads": 16, "num_key_value_heads": 16, "vocab_size": V})
	if err := os.WriteFile(filepath.Join(dir, "config.json"), cfg, 0o644); err != nil {
		b.Fatal(err)
	}
	if err := safetensors.WriteFile(context.Background(), filepath.Join(dir, "model.safetensors"), ts, nil); err != nil {
		b.Fatal(err)
	}
	return dir
}

func inputBytes(b *testing.B, dir string) int64 {
	st, err := os.Stat(filepath.Join(dir, "model.safetensors"))
	if err != nil {
		b.Fatal(err)
	}
	return st.Size()
}

// BenchmarkExport measures export speed in bytes of input per second, next
// to the baseline of copying the same input file with the same atomic
// write (temp file, fsync, rename). The targets: F16/BF16 at >= 70% of the
// copy, Q8_0 at >= 1 GB/s of input on 2 cores.
func BenchmarkExport(b *testing.B) {
	for _, c := range []struct {
		src format.DType
		typ gguf.Type
	}{{format.BF16, 0}, {format.BF16, gguf.BF16}, {format.BF16, gguf.F16}, {format.F32, 0}, {format.F32, gguf.F16}, {format.F32, gguf.BF16}, {format.F32, gguf.Q8_0}} {
		name := fmt.Sprintf("%s-to-%s", c.src, c.typ)
		if c.typ == 0 {
			name = fmt.Sprintf("%s-copy", c.src)
		}
		b.Run(name, func(b *testing.B) {
			dir := benchModel(b, c.src)
			out := filepath.Join(b.TempDir(), "out")
			b.SetBytes(inputBytes(b, dir))
			b.ResetTimer()
			for b.Loop() {
				if c.typ == 0 {
					src := filepath.Join(dir, "model.safetensors")
					err := atomicfile.WriteFile(out, 0o644, func(f *os.File) error {
						in, err := os.Open(src)
						if err != nil {
							return err
						}
						defer in.Close()
						_, err = io.Copy(f, in)
						return err
					})
					if err != nil {
						b.Fatal(err)
					}
				} else if _, err := gguf.ExportModel(context.Background(), dir, out+".gguf", gguf.Options{Type: c.typ, Threads: 2}); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				_ = os.Remove(out)           // the next iteration writes it anew
				_ = os.Remove(out + ".gguf") // likewise
				b.StartTimer()
			}
		})
	}
}
