package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/deltactl/deltactl/format/gguf"
	"github.com/deltactl/deltactl/format/peft"
	"github.com/deltactl/deltactl/internal/atomicfile"
)

// exportFlags holds export's flag values.
type exportFlags struct {
	dtype, base, name, pre, modelfile, baseGGUF string
	thr                                         int
}

func newExportCmd(g *globals) *cobra.Command {
	var fl exportFlags
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
			return runGGUFExport(cmd.Context(), g, fl, args[0], args[1])
		},
	}
	addExportFlags(cmd, &fl)
	return cmd
}

// addExportFlags defines export's flags on cmd, bound to fl.
func addExportFlags(cmd *cobra.Command, fl *exportFlags) {
	f := cmd.Flags()
	f.StringVar(&fl.dtype, "dtype", "", "type of the 2-D weights: F32, F16, BF16 or Q8_0 (default: the source's dtype; F32 for adapters)")
	f.StringVar(&fl.base, "base", "", "for an adapter: the base model it was trained on (a HF folder or a registry ref)")
	f.StringVar(&fl.name, "name", "", "general.name (default: config.json _name_or_path or the folder name)")
	f.StringVar(&fl.pre, "vocab-pre", "", "llama.cpp pre-tokenizer name (tokenizer.ggml.pre) when deltactl cannot recognise tokenizer.json's")
	f.StringVar(&fl.modelfile, "modelfile", "", "also write an Ollama Modelfile here (untested with Ollama)")
	f.StringVar(&fl.baseGGUF, "base-gguf", "", "with --modelfile for an adapter: the base model's GGUF for the FROM line")
	threadsFlag(f, &fl.thr, "conversion threads")
}

// exportOptions checks OUT and --dtype and turns the flags into gguf.Options.
func exportOptions(fl exportFlags, out string) (gguf.Options, error) {
	if !strings.EqualFold(filepath.Ext(out), ".gguf") {
		return gguf.Options{}, usagef("export: %s: the output must end in .gguf", out)
	}
	if _, err := os.Stat(out); err == nil {
		return gguf.Options{}, fmt.Errorf("export: %s already exists; refusing to overwrite it", out)
	}
	opt := gguf.Options{Name: fl.name, Pre: fl.pre, Threads: threads(fl.thr), Auto: fl.dtype == ""}
	if fl.dtype != "" {
		t, err := gguf.ParseType(strings.ToUpper(fl.dtype))
		if err != nil || !t.Supported() {
			return gguf.Options{}, usagef("--dtype %q: want F32, F16, BF16 or Q8_0", fl.dtype)
		}
		opt.Type = t
	}
	return opt, nil
}

// runGGUFExport writes SRC (arg) as the GGUF file out, then the Modelfile if asked, and prints the result.
func runGGUFExport(ctx context.Context, g *globals, fl exportFlags, arg, out string) error {
	opt, err := exportOptions(fl, out)
	if err != nil {
		return err
	}
	src, cleanup, err := resolveSource(ctx, g, arg)
	if err != nil {
		return err
	}
	defer cleanup()
	if src != arg {
		opt.DefaultName = arg // pulled from the registry: name it by its ref
	}
	res, err := exportGGUF(ctx, g, fl, arg, src, out, opt)
	if err != nil {
		return err
	}
	if fl.modelfile != "" {
		if err := writeModelfile(fl, res, out); err != nil {
			return err
		}
	}
	return printExportResult(g, res)
}

// exportGGUF writes the adapter (with --base) or the model at src to out.
func exportGGUF(ctx context.Context, g *globals, fl exportFlags, arg, src, out string, opt gguf.Options) (*gguf.Result, error) {
	if _, err := os.Stat(filepath.Join(src, peft.ConfigFile)); err != nil {
		if fl.base != "" {
			return nil, usagef("export: %s is a model, not an adapter: drop --base", arg)
		}
		return gguf.ExportModel(ctx, src, out, opt)
	}
	if fl.base == "" {
		return nil, usagef("export: %s is an adapter: --base BASE (the model it was trained on) is required", arg)
	}
	bsrc, bcleanup, err := resolveSource(ctx, g, fl.base)
	if err != nil {
		return nil, err
	}
	defer bcleanup()
	return gguf.ExportAdapter(ctx, src, bsrc, out, opt)
}

// writeModelfile writes the Ollama Modelfile for the export res at out.
func writeModelfile(fl exportFlags, res *gguf.Result, out string) error {
	model, adapter := out, ""
	if res.Kind == "adapter" {
		if fl.baseGGUF == "" {
			return usagef("export: --modelfile for an adapter needs --base-gguf (the base model's GGUF, from deltactl export BASE base.gguf)")
		}
		model, adapter = fl.baseGGUF, out
	}
	mf, err := gguf.Modelfile(filepath.Dir(fl.modelfile), model, adapter)
	if err != nil {
		return err
	}
	if err := atomicfile.WriteBytes(fl.modelfile, 0o644, []byte(mf)); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	return nil
}

// printExportResult prints what export wrote, as JSON with --json.
func printExportResult(g *globals, res *gguf.Result) error {
	if g.json {
		return g.printJSON(res)
	}
	vocab := ""
	if res.Vocab != "" {
		vocab = ", " + res.Vocab + " vocabulary"
	}
	g.printf("wrote %s (%s %s %s%s, %d tensors, %s)\n", res.Path, res.Arch, res.Kind, res.Type, vocab, res.Tensors, humanBytes(res.Bytes))
	return nil
}
