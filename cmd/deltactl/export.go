package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/deltactl/deltactl/format/gguf"
	"github.com/deltactl/deltactl/format/peft"
	"github.com/deltactl/deltactl/internal/atomicfile"
)

func newExportCmd(g *globals) *cobra.Command {
	var dtype, base, name, pre, modelfile, baseGGUF string
	var thr int
	cmd := &cobra.Command{
		Use:   "export SRC OUT.gguf [--dtype F32|F16|BF16|Q8_0] [--base BASE]",
		Short: "Write a model or LoRA adapter as GGUF for llama.cpp and Ollama",
		Long: `export writes SRC as a GGUF v3 file that llama.cpp (and so Ollama, LM Studio,
node-llama-cpp ...) loads:

  - SRC a Hugging Face model folder (or a registry ref, a merged result
    included) of model_type llama, mistral, qwen2 or qwen3: a GGUF model with
    its vocabulary (byte-level BPE from tokenizer.json, SentencePiece-style
    BPE as llama.cpp's "llama" vocabulary, deltactl's byte vocabulary),
    special tokens and chat template;
  - SRC a PEFT LoRA folder (or ref) with --base: llama.cpp's LoRA adapter
    GGUF, every module scaled exactly as PEFT scales it (rsLoRA, rank_pattern,
    alpha_pattern). Load it with llama.cpp's --lora on the base's GGUF.

--dtype sets the type of the 2-D weights (norms and 1-D tensors stay F32,
as llama.cpp's converter keeps them); the default is the source's own dtype
for a model, F32 for an adapter. Q8_0 is ggml's 8-bit block quantization.
DoRA, IA3, modules_to_save and embedding LoRA cannot be expressed as a
llama.cpp adapter: merge them (deltactl merge) and export the merged model.

--modelfile FILE also writes an Ollama Modelfile (FROM, ADAPTER) for the
export; it follows Ollama's documented syntax but is not tested here.`,
		Example: `  deltactl export ./my-model model.gguf --dtype Q8_0
  deltactl export ./lora adapter.gguf --base ./my-model
  deltactl export ./my-model model.gguf --modelfile Modelfile
  llama-cli -m model.gguf --lora adapter.gguf`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			out := args[1]
			if !strings.EqualFold(filepath.Ext(out), ".gguf") {
				return usagef("export: %s: the output must end in .gguf", out)
			}
			if _, err := os.Stat(out); err == nil {
				return fmt.Errorf("export: %s already exists; refusing to overwrite it", out)
			}
			opt := gguf.Options{Name: name, Pre: pre, Threads: threads(thr), Auto: dtype == ""}
			if dtype != "" {
				t, err := gguf.ParseType(strings.ToUpper(dtype))
				if err != nil || !t.Supported() {
					return usagef("--dtype %q: want F32, F16, BF16 or Q8_0", dtype)
				}
				opt.Type = t
			}
			src, cleanup, err := resolveSource(ctx, g, args[0])
			if err != nil {
				return err
			}
			defer cleanup()
			if src != args[0] {
				opt.DefaultName = args[0] // pulled from the registry: name it by its ref
			}
			var res *gguf.Result
			if _, err := os.Stat(filepath.Join(src, peft.ConfigFile)); err == nil {
				if base == "" {
					return usagef("export: %s is an adapter: --base BASE (the model it was trained on) is required", args[0])
				}
				bsrc, bcleanup, err := resolveSource(ctx, g, base)
				if err != nil {
					return err
				}
				defer bcleanup()
				if res, err = gguf.ExportAdapter(ctx, src, bsrc, out, opt); err != nil {
					return err
				}
			} else {
				if base != "" {
					return usagef("export: %s is a model, not an adapter: drop --base", args[0])
				}
				if res, err = gguf.ExportModel(ctx, src, out, opt); err != nil {
					return err
				}
			}
			if modelfile != "" {
				model, adapter := out, ""
				if res.Kind == "adapter" {
					if baseGGUF == "" {
						return usagef("export: --modelfile for an adapter needs --base-gguf (the base model's GGUF, from deltactl export BASE base.gguf)")
					}
					model, adapter = baseGGUF, out
				}
				mf, err := gguf.Modelfile(filepath.Dir(modelfile), model, adapter)
				if err != nil {
					return err
				}
				if err := atomicfile.WriteBytes(modelfile, 0o644, []byte(mf)); err != nil {
					return fmt.Errorf("export: %w", err)
				}
			}
			if g.json {
				return g.printJSON(res)
			}
			vocab := ""
			if res.Vocab != "" {
				vocab = ", " + res.Vocab + " vocabulary"
			}
			g.printf("wrote %s (%s %s %s%s, %d tensors, %s)\n", res.Path, res.Arch, res.Kind, res.Type, vocab, res.Tensors, humanBytes(res.Bytes))
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&dtype, "dtype", "", "type of the 2-D weights: F32, F16, BF16 or Q8_0 (default: the source's dtype; F32 for adapters)")
	f.StringVar(&base, "base", "", "for an adapter: the base model it was trained on (a HF folder or a registry ref)")
	f.StringVar(&name, "name", "", "general.name (default: config.json _name_or_path or the folder name)")
	f.StringVar(&pre, "vocab-pre", "", "llama.cpp pre-tokenizer name (tokenizer.ggml.pre) when deltactl cannot recognise tokenizer.json's")
	f.StringVar(&modelfile, "modelfile", "", "also write an Ollama Modelfile here (untested with Ollama)")
	f.StringVar(&baseGGUF, "base-gguf", "", "with --modelfile for an adapter: the base model's GGUF for the FROM line")
	threadsFlag(f, &thr, "conversion threads")
	return cmd
}
