package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/deltactl/deltactl/format"
	"github.com/deltactl/deltactl/format/chat"
	"github.com/deltactl/deltactl/format/tokenizer"
	"github.com/deltactl/deltactl/train"
)

// textCodec turns text into a model's token ids and back: what generate
// needs from a *tokenizer.Tokenizer, which byteCodec also provides for
// deltactl's byte-vocabulary models (no tokenizer.json).
type textCodec interface {
	Encode(text string, addSpecial bool) []int
	Decode(ids []int, skipSpecial bool) (string, error)
	// EOS is the end-of-sequence id, ok false when there is none.
	EOS() (id int, ok bool)
}

// byteCodec is the byte vocabulary: ids 0..255 are the bytes, ids above
// are special tokens without text (skipped when decoding).
type byteCodec struct{}

var (
	_ textCodec = byteCodec{}
	_ textCodec = (*tokenizer.Tokenizer)(nil)
)

func (byteCodec) Encode(text string, _ bool) []int {
	ids := make([]int, len(text))
	for i := 0; i < len(text); i++ {
		ids[i] = int(text[i])
	}
	return ids
}

func (byteCodec) Decode(ids []int, _ bool) (string, error) {
	b := make([]byte, 0, len(ids))
	for _, id := range ids {
		if id >= 0 && id < 256 {
			b = append(b, byte(id))
		}
	}
	return string(b), nil
}

func (byteCodec) EOS() (int, bool) { return 0, false }

// loadCodec picks the text layer for a model: its tokenizer.json (and
// tokenizer_config.json) when the folder has one, else the byte vocabulary
// of deltactl's byte models.
func loadCodec(dir string, c train.Config) (textCodec, error) {
	if st, err := os.Stat(dir); err == nil && st.IsDir() {
		if _, err := os.Stat(filepath.Join(dir, tokenizer.TokenizerFile)); err == nil {
			tok, err := tokenizer.Load(dir)
			if err != nil {
				return nil, err
			}
			if n := tok.VocabSize(); n > c.VocabSize {
				return nil, fmt.Errorf("generate: %s: the tokenizer has %d ids, more than the model's vocab_size %d", filepath.Join(dir, tokenizer.TokenizerFile), n, c.VocabSize)
			}
			return tok, nil
		}
	}
	if c.IsByteVocab() {
		return byteCodec{}, nil
	}
	return nil, fmt.Errorf("generate: %s: vocab_size %d is not a byte vocabulary and there is no %s", dir, c.VocabSize, tokenizer.TokenizerFile)
}

// stopIDs are the ids that end generation: the tokenizer's eos_token and
// the eos_token_id (a number or a list) of the folder's
// generation_config.json and config.json, as transformers' generate stops
// on (Llama 3 instruct models end a turn with <|eot_id|>, listed only
// there).
func stopIDs(dir string, codec textCodec) ([]int, error) {
	var ids []int
	if eos, ok := codec.EOS(); ok {
		ids = append(ids, eos)
	}
	for _, name := range []string{"generation_config.json", "config.json"} {
		p := filepath.Join(dir, name)
		b, err := os.ReadFile(p)
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("generate: %w", err)
		}
		var c struct {
			EOS json.RawMessage `json:"eos_token_id"`
		}
		if err := json.Unmarshal(b, &c); err != nil {
			return nil, fmt.Errorf("generate: %s: %w", p, err)
		}
		if len(c.EOS) == 0 || string(c.EOS) == "null" {
			continue
		}
		var one int
		var many []int
		switch {
		case json.Unmarshal(c.EOS, &one) == nil:
			many = []int{one}
		case json.Unmarshal(c.EOS, &many) == nil:
		default:
			return nil, fmt.Errorf("generate: %s: eos_token_id %s: want a token id or a list of them", p, c.EOS)
		}
		for _, id := range many {
			if !slices.Contains(ids, id) {
				ids = append(ids, id)
			}
		}
	}
	return ids, nil
}

// generateJSON is generate's --json output.
type generateJSON struct {
	Text            string  `json:"text"`
	GeneratedIDs    []int   `json:"generated_ids"`
	TokensPerSecond float64 `json:"tokens_per_second"`
}

func newGenerateCmd(g *globals) *cobra.Command {
	var base, prompt string
	var deltas []string
	var chat bool
	var maxNew, thr int
	var temperature, topP float64
	var seed uint64
	cmd := &cobra.Command{
		Use:   "generate --base SRC [--delta SRC ...] --prompt TEXT",
		Short: "Continue a prompt with a model (and deltas), streaming the text",
		Long: `generate continues --prompt with a Llama-family model and, optionally, one or
more deltas (PEFT LoRA folders or bottleneck-adapter folders, or registry
refs; several LoRAs add up), applied unmerged as eval applies them. Text is
written to stdout as it is produced; run it with and without --delta to see
what an adapter changed. The prompt is encoded with the model folder's
tokenizer.json, or as bytes for deltactl's byte-vocabulary models.

--temperature 0 (the default) is greedy decoding: the argmax of the model's
full forward pass at every step. Above 0 the next token is drawn from the
softmax of logits/temperature, cut to the --top-p nucleus, with --seed
fixing the draw. Generation stops after --max-new-tokens or at an end-of-
sequence token (the tokenizer's eos_token, generation_config.json's
eos_token_id). With --json only the final object is printed:
{"text", "generated_ids" (the new tokens only), "tokens_per_second"}.
Decoding speed is reported on stderr.

A BF16 or F16 model is used as its file stores it (memory-mapped, never
widened to float32): generation needs about the weights' size in memory,
plus the key/value cache (float32: 64 KiB per token for Llama-3.2-1B).`,
		Example: `  deltactl generate --base testdata/tinyllama --prompt "The cat " --max-new-tokens 40
  deltactl generate --base testdata/tinyllama --delta lora1 --prompt $'verse: the sun is warm\nsentiment:' --json
  deltactl generate --base my-model:v1 --delta poems:v2 --temperature 0.8 --top-p 0.9 --seed 7 --prompt "Once"`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if base == "" || !cmd.Flags().Changed("prompt") {
				return usagef("generate: --base and --prompt are required")
			}
			if maxNew < 1 {
				return usagef("generate: --max-new-tokens %d: want at least 1", maxNew)
			}
			if temperature < 0 {
				return usagef("generate: --temperature %g: want 0 (greedy) or positive", temperature)
			}
			if topP <= 0 || topP > 1 {
				return usagef("generate: --top-p %g: want a value in (0, 1]", topP)
			}
			return runGenerate(ctx, g, base, deltas, prompt, chat, threads(thr), train.GenerateOptions{
				MaxNewTokens: maxNew, Temperature: temperature, TopP: topP, Seed: seed,
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&base, "base", "", "base model: a HF folder or a registry ref")
	f.StringArrayVar(&deltas, "delta", nil, "a PEFT LoRA folder or a bottleneck-adapter folder (or a registry ref); repeat to apply several")
	f.StringVar(&prompt, "prompt", "", "the text to continue")
	f.BoolVar(&chat, "chat", false, "send --prompt as one user turn through the model's chat_template (tokenizer_config.json), ending with the assistant's header")
	f.IntVar(&maxNew, "max-new-tokens", 64, "most tokens to generate")
	f.Float64Var(&temperature, "temperature", 0, "sampling temperature; 0 is greedy")
	f.Float64Var(&topP, "top-p", 1, "nucleus sampling: keep the most likely tokens up to this probability mass")
	f.Uint64Var(&seed, "seed", 0, "seed of the sampling")
	threadsFlag(f, &thr, "worker threads")
	return cmd
}

func runGenerate(ctx context.Context, g *globals, base string, deltaSrcs []string, prompt string, asChat bool, threads int, o train.GenerateOptions) error {
	src, cleanup, err := resolveSource(ctx, g, base)
	if err != nil {
		return err
	}
	defer cleanup()
	m, err := train.LoadModel(ctx, src, 0)
	if err != nil {
		return err
	}
	codec, err := loadCodec(src, m.Config)
	if err != nil {
		return err
	}
	var ds []*format.Delta
	for _, dsrc := range deltaSrcs {
		p, dcleanup, err := resolveSource(ctx, g, dsrc)
		if err != nil {
			return err
		}
		defer dcleanup()
		d, err := train.ReadDelta(ctx, p)
		if err != nil {
			return fmt.Errorf("delta %s: %w", dsrc, err)
		}
		ds = append(ds, d)
	}
	gen, err := train.NewGenerator(m, ds, threads)
	if err != nil {
		return err
	}
	ids, err := promptIDs(codec, prompt, asChat, base)
	if err != nil {
		return err
	}
	if o.Stop, err = stopIDs(src, codec); err != nil {
		return err
	}
	if tok, ok := codec.(*tokenizer.Tokenizer); ok {
		// Ids past the tokenizer's (embedding padding) have no text.
		o.VocabLimit = tok.VocabSize()
	}
	var out *textStream
	if !g.json && !g.quiet {
		out = &textStream{w: g.stdout, codec: codec}
		o.OnToken = out.add
	}
	res, err := gen.Generate(ctx, ids, o)
	if err != nil {
		return err
	}
	text, err := codec.Decode(res.IDs, true)
	if err != nil {
		return fmt.Errorf("generate: decoding the generated ids %v: %w", res.IDs, err)
	}
	if g.json {
		return g.printJSON(generateJSON{Text: text, GeneratedIDs: res.IDs, TokensPerSecond: res.TokensPerSecond})
	}
	if out != nil {
		if err := out.finish(); err != nil {
			return err
		}
		fmt.Fprintf(g.stderr, "%d tokens, %.1f tokens/s (prompt: %d tokens in %s)\n", len(res.IDs), res.TokensPerSecond, res.PromptTokens, res.Prefill.Round(1e5))
	}
	return nil
}

// textStream writes generated text as it grows. A token may end inside a
// UTF-8 character (byte vocabularies, byte-fallback BPE), so the tail that
// is not yet a whole character is held back until the next token completes
// it or generation ends.
type textStream struct {
	w       io.Writer
	codec   textCodec
	ids     []int
	printed int // bytes of the decoded text already written
	err     error
}

func (s *textStream) add(id int) error {
	s.ids = append(s.ids, id)
	text, err := s.codec.Decode(s.ids, true)
	if err != nil {
		return err
	}
	return s.emit(text, stableLen(text))
}

func (s *textStream) emit(text string, upTo int) error {
	if s.err != nil || upTo <= s.printed || upTo > len(text) {
		return s.err
	}
	_, s.err = io.WriteString(s.w, text[s.printed:upTo])
	s.printed = upTo
	return s.err
}

// finish writes what was held back and ends the line.
func (s *textStream) finish() error {
	text, err := s.codec.Decode(s.ids, true)
	if err != nil {
		return err
	}
	if err := s.emit(text, len(text)); err != nil {
		return err
	}
	if !strings.HasSuffix(text, "\n") {
		_, s.err = io.WriteString(s.w, "\n")
	}
	return s.err
}

// stableLen is the length of text without a trailing incomplete UTF-8
// sequence or replacement character (both may change with the next token).
func stableLen(text string) int {
	n := len(text)
	for i := 0; i < utf8.UTFMax && n-i > 0; i++ {
		if utf8.RuneStart(text[n-i-1]) {
			if !utf8.FullRuneInString(text[n-i-1:]) {
				return n - i - 1
			}
			break
		}
	}
	return len(strings.TrimSuffix(text[:n], "\uFFFD"))
}

// promptIDs encodes the prompt; with asChat it is first rendered as one user
// turn through the model's chat template with the generation prompt, as
// transformers' apply_chat_template(add_generation_prompt=True) does. The
// template writes its own special tokens, so none are added on encoding.
func promptIDs(codec textCodec, prompt string, asChat bool, base string) ([]int, error) {
	if !asChat {
		return codec.Encode(prompt, true), nil
	}
	tok, ok := codec.(*tokenizer.Tokenizer)
	if !ok {
		return nil, fmt.Errorf("generate: %s: --chat needs a chat template: a model with tokenizer.json and a chat_template in tokenizer_config.json (a byte-vocabulary model has none)", base)
	}
	tmpl, err := chat.Compile(tok.ChatTemplate())
	if err != nil {
		return nil, fmt.Errorf("generate: %s: %w", base, err)
	}
	o := chat.OptionsFor(tok)
	o.AddGenerationPrompt = true
	text, err := tmpl.Render([]chat.Message{{Role: "user", Content: prompt}}, o)
	if err != nil {
		return nil, fmt.Errorf("generate: %s: %w", base, err)
	}
	return tok.Encode(text, false), nil
}
