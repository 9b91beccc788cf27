package train

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/deltactl/deltactl/format/chat"
	"github.com/deltactl/deltactl/format/tokenizer"
)

// DataOptions says how LoadDataWith turns text into tokens.
type DataOptions struct {
	// Tokenizer encodes text, prompt/completion and chat data. Without one,
	// text is accepted only for byte-vocabulary models (bytes as tokens).
	Tokenizer *tokenizer.Tokenizer
	// Now is the time a chat template's strftime_now sees (default: the
	// time of loading, the same for every record).
	Now func() time.Time
}

// LoadTokenizer reads the tokenizer of the model folder dir (tokenizer.json
// and tokenizer_config.json beside config.json). A folder without
// tokenizer.json, or a config.json file rather than a folder, has none: it
// returns nil and no error; the folder's config.json's siblings are read
// for a config file.
func LoadTokenizer(dir string) (*tokenizer.Tokenizer, error) {
	st, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("train: tokenizer: %w", err)
	}
	if !st.IsDir() {
		dir = filepath.Dir(dir)
	}
	if _, err := os.Stat(filepath.Join(dir, tokenizer.TokenizerFile)); errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	t, err := tokenizer.Load(dir)
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	return t, nil
}

// encoder turns the text of a data file into records: bytes as tokens for a
// byte-vocabulary model without a tokenizer, the tokenizer's ids otherwise.
type encoder interface {
	// document encodes a whole text (a .txt file or a JSONL "text"): every
	// token after the first is a target.
	document(s string) ([]int32, error)
	// promptCompletion encodes a prompt and its completion: the loss is on
	// the completion only (tokens from LossFrom on).
	promptCompletion(p, c string) (Record, error)
	// conversation renders and encodes a chat: the loss is on the
	// assistant turns only (Record.Loss).
	conversation(msgs []chat.Message) (Record, error)
	// targetBytes is the UTF-8 length of the text the tokens encode
	// (special tokens count nothing), for bits per byte.
	targetBytes(ids []int32) int64
}

// byteEncoder is the byte-vocabulary model's: token i is byte i.
type byteEncoder struct{ c Config }

func (e byteEncoder) need() error {
	if !e.c.IsByteVocab() {
		return fmt.Errorf("text needs a tokenizer (tokenizer.json beside the model's config.json) or a byte-vocabulary model (vocab_size 256..512); this one has vocab_size %d and no tokenizer: give JSONL with input_ids", e.c.VocabSize)
	}
	return nil
}

func (e byteEncoder) document(s string) ([]int32, error) {
	if err := e.need(); err != nil {
		return nil, err
	}
	out := make([]int32, len(s))
	for i := 0; i < len(s); i++ {
		out[i] = int32(s[i])
	}
	return out, nil
}

func (e byteEncoder) promptCompletion(p, c string) (Record, error) {
	toks, err := e.document(p + c)
	if err != nil {
		return Record{}, err
	}
	return Record{Tokens: toks, LossFrom: len(p)}, nil
}

func (e byteEncoder) conversation([]chat.Message) (Record, error) {
	return Record{}, errors.New(`"messages" needs the model's tokenizer with a chat_template (tokenizer.json and tokenizer_config.json beside config.json)`)
}

func (e byteEncoder) targetBytes(ids []int32) int64 {
	var n int64
	for _, id := range ids {
		if id < 256 {
			n++
		}
	}
	return n
}

// tokEncoder encodes with a Hugging Face tokenizer.
type tokEncoder struct {
	tok      *tokenizer.Tokenizer
	vocab    int // the model's vocab_size: every id must be below it
	tmpl     *chat.Template
	tmplErr  error
	copts    chat.Options
	bos, eos int // -1 when the tokenizer has none
}

func newTokEncoder(tok *tokenizer.Tokenizer, c Config, now func() time.Time) *tokEncoder {
	if now == nil {
		t := time.Now() // one instant for the whole file: every prefix renders alike
		now = func() time.Time { return t }
	}
	e := &tokEncoder{tok: tok, vocab: c.VocabSize, bos: -1, eos: -1, copts: chat.OptionsFor(tok)}
	e.copts.Now = now
	if id, ok := tok.BOS(); ok {
		e.bos = id
	}
	if id, ok := tok.EOS(); ok {
		e.eos = id
	}
	// A template the engine cannot compile is an error only for data that
	// needs it.
	e.tmpl, e.tmplErr = chat.Compile(tok.ChatTemplate())
	return e
}

// ids converts the tokenizer's ids, refusing one the model has no row for
// (a tokenizer bigger than the model's vocab_size).
func (e *tokEncoder) ids(in []int) ([]int32, error) {
	out := make([]int32, len(in))
	for i, id := range in {
		if id < 0 || id >= e.vocab {
			s, _ := e.tok.TokenString(id)
			return nil, fmt.Errorf("the tokenizer gives token id %d (%q), outside the model's vocabulary (vocab_size %d): tokenizer and model do not match", id, s, e.vocab)
		}
		out[i] = int32(id)
	}
	return out, nil
}

// special encodes s as a whole sequence: tokenizer.json's post-processor
// adds what it adds (Llama 2's BOS), and tokenizer_config.json's
// add_bos_token / add_eos_token add BOS / EOS where it did not, as
// transformers' Llama tokenizers rebuild their post-processor from those
// flags.
func (e *tokEncoder) special(s string) []int {
	ids := e.tok.Encode(s, true)
	if e.tok.AddBOS() && e.bos >= 0 && (len(ids) == 0 || ids[0] != e.bos) {
		ids = append([]int{e.bos}, ids...)
	}
	if e.tok.AddEOS() && e.eos >= 0 && (len(ids) == 0 || ids[len(ids)-1] != e.eos) {
		ids = append(ids, e.eos)
	}
	return ids
}

func (e *tokEncoder) document(s string) ([]int32, error) {
	return e.ids(e.special(s))
}

// promptCompletion encodes prompt+completion as one text, as the model sees
// it in training, and the prompt alone, as it sees it when asked to
// complete; the loss starts where the two part. A token straddling the
// boundary (a merge across it) counts as completion. This is how TRL splits
// prompt and completion.
func (e *tokEncoder) promptCompletion(p, c string) (Record, error) {
	full := e.special(p + c)
	pre := e.tok.Encode(p, true)
	if e.tok.AddBOS() && e.bos >= 0 && (len(pre) == 0 || pre[0] != e.bos) {
		pre = append([]int{e.bos}, pre...)
	}
	from := commonPrefix(full, pre)
	if from >= len(full) {
		return Record{}, errors.New(`"completion" encodes to no tokens`)
	}
	toks, err := e.ids(full)
	if err != nil {
		return Record{}, err
	}
	return Record{Tokens: toks, LossFrom: max(from, 1)}, nil
}

// conversation renders msgs with the model's chat template and marks the
// assistant turns as the loss targets.
//
// Where a turn starts: the template renders messages[:i] with
// add_generation_prompt (the text the model is given when it is to write
// turn i); that must be the start of the whole conversation's rendering,
// and the turn starts where its tokens end. Rendering prefixes, rather than
// looking for the content in the output, survives templates that rewrite
// the content (Llama 3 trims it, Qwen3 moves <think> blocks).
//
// Where it ends: at the first special token from its start on, included
// (<|eot_id|>, <|im_end|>, </s>: the model must learn to stop), and never
// past the start of the next message. The end cannot be had from prefixes
// alone: some templates append the generation prompt whether asked or not
// (the Llama 3 template installed for the tests does), so messages[:i+1]
// rendered alone ends with a header that the full conversation does not
// have there.
func (e *tokEncoder) conversation(msgs []chat.Message) (Record, error) {
	if e.tmplErr != nil {
		return Record{}, e.tmplErr
	}
	turns := 0
	for i, m := range msgs {
		switch m.Role {
		case chat.RoleSystem, chat.RoleUser:
		case chat.RoleAssistant:
			turns++
		default:
			return Record{}, fmt.Errorf("messages[%d]: role %q: want system, user or assistant", i, m.Role)
		}
	}
	if turns == 0 {
		return Record{}, errors.New(`"messages" has no assistant turn to learn`)
	}
	render := func(ms []chat.Message, gen bool) (string, error) {
		o := e.copts
		o.AddGenerationPrompt = gen
		return e.tmpl.Render(ms, o)
	}
	full, err := render(msgs, false)
	if err != nil {
		return Record{}, err
	}
	ids := e.tok.Encode(full, false) // apply_chat_template: the template places BOS
	loss := make([]bool, len(ids))
	for i, m := range msgs {
		if m.Role != chat.RoleAssistant {
			continue
		}
		pre, err := render(msgs[:i], true)
		if err != nil {
			return Record{}, err
		}
		if len(pre) > len(full) || full[:len(pre)] != pre {
			hint := ""
			if i == 0 {
				hint = " (the conversation opens with it: start with a system or user message)"
			}
			return Record{}, fmt.Errorf("messages[%d]: the chat template renders the conversation before this assistant turn, with the generation prompt, as text that does not start the whole conversation's: cannot tell where the turn starts%s", i, hint)
		}
		start := commonPrefix(ids, e.tok.Encode(pre, false))
		end := len(ids)
		if i+1 < len(msgs) {
			after, err := render(msgs[:i+1], false)
			if err != nil {
				return Record{}, err
			}
			if len(after) <= len(full) && full[:len(after)] == after {
				end = commonPrefix(ids, e.tok.Encode(after, false))
			}
		}
		n := 0
		for j := start; j < end; j++ {
			loss[j] = true
			n++
			if e.tok.IsSpecial(ids[j]) {
				break
			}
		}
		if n == 0 {
			return Record{}, fmt.Errorf("messages[%d]: the assistant turn encodes to no tokens", i)
		}
	}
	toks, err := e.ids(ids)
	if err != nil {
		return Record{}, err
	}
	return Record{Tokens: toks, LossFrom: 1, Loss: loss}, nil
}

func (e *tokEncoder) targetBytes(ids []int32) int64 {
	in := make([]int, len(ids))
	for i, id := range ids {
		in[i] = int(id)
	}
	s, err := e.tok.Decode(in, true)
	if err != nil {
		return 0 // ids were checked against the vocabulary when encoded
	}
	return int64(len(s))
}

// commonPrefix is the length of the longest common prefix of a and b.
func commonPrefix(a, b []int) int {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return n
}
