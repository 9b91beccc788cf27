package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/deltactl/deltactl/format/tokenizer"
)

func newTokenizeCmd(g *globals) *cobra.Command {
	var (
		jsonl     string
		noSpecial bool
		decode    bool
	)
	cmd := &cobra.Command{
		Use:   "tokenize MODEL [TEXT]",
		Short: "Encode text to token ids (or decode ids) with a model's tokenizer.json",
		Long: `tokenize encodes TEXT (or standard input) with the tokenizer of MODEL and
prints the token ids, the same ids as Hugging Face tokenizers. MODEL is a
folder holding tokenizer.json (and tokenizer_config.json), a tokenizer.json
file, or a registry ref.

Special tokens the tokenizer adds (BOS/EOS) are included unless --no-special.
With --jsonl FILE ("-" for standard input) every line of FILE is a JSON
string and every output line a JSON array of its ids: batch mode for
pipelines. --decode reads ids instead (a JSON array, or numbers separated by
spaces or commas; with --jsonl one JSON array per line) and prints the text;
there --no-special leaves special tokens out. --json prints
{"ids": [...], "tokens": [...]} (or {"text": ...} with --decode).`,
		Example: `  deltactl tokenize ./Llama-3.2-1B "Hello world"
  echo "Hello world" | deltactl tokenize --json ./tokenizer.json
  deltactl tokenize --jsonl prompts.jsonl ./qwen3 > ids.jsonl
  deltactl tokenize --decode ./Llama-3.2-1B "9906 1917"`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if jsonl != "" && len(args) == 2 {
				return usagef("give TEXT or --jsonl, not both")
			}
			p, cleanup, err := resolveSource(cmd.Context(), g, args[0])
			if err != nil {
				return err
			}
			defer cleanup()
			tok, err := tokenizer.Load(p)
			if err != nil {
				if p != args[0] {
					// Pulled from the registry into a temporary folder:
					// name the ref, not the folder.
					return fmt.Errorf("%s: %w", args[0], err)
				}
				return err
			}
			if jsonl != "" {
				return tokenizeLines(g, cmd.InOrStdin(), jsonl, tok, decode, !noSpecial)
			}
			in, where := "", "stdin"
			if len(args) == 2 {
				in, where = args[1], "TEXT"
			} else {
				b, err := io.ReadAll(cmd.InOrStdin())
				if err != nil {
					return fmt.Errorf("stdin: %w", err)
				}
				in = string(b)
			}
			if decode {
				ids, err := parseIDs(in)
				if err != nil {
					return fmt.Errorf("%s: %w", where, err)
				}
				text, err := tok.Decode(ids, noSpecial)
				if err != nil {
					return fmt.Errorf("%s: %w", where, err)
				}
				if g.json {
					return g.printJSON(struct {
						Text string `json:"text"`
					}{text})
				}
				g.printf("%s\n", text)
				return nil
			}
			ids := tok.Encode(in, !noSpecial)
			if g.json {
				return g.printJSON(encoded(tok, ids))
			}
			g.printf("%s\n", joinIDs(ids))
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&jsonl, "jsonl", "", `encode one JSON string per line of FILE ("-": stdin), print one JSON array of ids per line`)
	f.BoolVar(&noSpecial, "no-special", false, "do not add special tokens (with --decode: leave them out of the text)")
	f.BoolVar(&decode, "decode", false, "read token ids and print their text")
	return cmd
}

// encodedJSON is --json's output for one text.
type encodedJSON struct {
	IDs    []int    `json:"ids"`
	Tokens []string `json:"tokens"`
}

func encoded(tok *tokenizer.Tokenizer, ids []int) encodedJSON {
	out := encodedJSON{IDs: ids, Tokens: make([]string, len(ids))}
	for i, id := range ids {
		out.Tokens[i], _ = tok.TokenString(id)
	}
	return out
}

func joinIDs(ids []int) string {
	var b strings.Builder
	for i, id := range ids {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(strconv.Itoa(id))
	}
	return b.String()
}

// parseIDs reads token ids written as a JSON array or as numbers separated
// by spaces or commas.
func parseIDs(s string) ([]int, error) {
	fields := strings.FieldsFunc(s, func(r rune) bool {
		return r == '[' || r == ']' || r == ',' || r == ' ' || r == '\t' || r == '\n' || r == '\r'
	})
	ids := make([]int, 0, len(fields))
	for _, f := range fields {
		id, err := strconv.Atoi(f)
		if err != nil {
			return nil, fmt.Errorf("%q is not a token id", f)
		}
		ids = append(ids, id)
	}
	return ids, nil
}

// tokenizeLines is --jsonl: one JSON value in, one JSON value out, per line
// (blank lines are skipped). A bad line stops the run with an error naming
// it; the lines before it have been printed.
func tokenizeLines(g *globals, stdin io.Reader, path string, tok *tokenizer.Tokenizer, decode, special bool) error {
	in := stdin
	name := "stdin"
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		in, name = f, path
	}
	out := bufio.NewWriter(g.stdout)
	defer out.Flush() // on an error, the lines before it still go out
	enc := json.NewEncoder(out)
	enc.SetEscapeHTML(false)
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64<<10), 1<<30)
	for n := 1; sc.Scan(); n++ {
		line := sc.Bytes()
		if len(strings.TrimSpace(string(line))) == 0 {
			continue
		}
		var v any
		if decode {
			var ids []int
			if err := json.Unmarshal(line, &ids); err != nil {
				return fmt.Errorf("%s:%d: want a JSON array of token ids: %v", name, n, err)
			}
			text, err := tok.Decode(ids, !special)
			if err != nil {
				return fmt.Errorf("%s:%d: %w", name, n, err)
			}
			v = text
		} else {
			var text string
			if err := json.Unmarshal(line, &text); err != nil {
				return fmt.Errorf("%s:%d: want a JSON string: %v", name, n, err)
			}
			ids := tok.Encode(text, special)
			if g.json {
				v = encoded(tok, ids)
			} else {
				v = ids
			}
		}
		if g.quiet {
			continue
		}
		if err := enc.Encode(v); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return out.Flush()
}
