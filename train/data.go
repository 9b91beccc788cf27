package train

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/deltactl/deltactl/format/chat"
)

// ErrData is returned (wrapped, naming the file and line) for training or
// evaluation data the model cannot use.
var ErrData = errors.New("bad training data")

// Record is one training sequence: its tokens, the index of the first token
// that is a target of the loss (after a prompt; 1 when the whole record
// counts) and where it came from. Loss, when set (chat data), says token by
// token which are targets instead (the assistant turns).
type Record struct {
	Tokens   []int32
	LossFrom int
	Line     int
	Loss     []bool
}

// isTarget reports whether token t (t >= 1) is a target of the loss.
func (r Record) isTarget(t int) bool {
	if r.Loss != nil {
		return r.Loss[t]
	}
	return t >= r.LossFrom
}

// Dataset is tokenised training or evaluation data. A .txt file becomes one
// token stream sampled in windows; JSONL becomes one Record per line.
//
// Records are not packed: each takes one row of a batch, padded to the
// window, the padding masked out of the loss. Packing several records into
// one window would need an attention mask that stops at record boundaries;
// without one, a record would attend to the one before it.
type Dataset struct {
	Path string
	// Kind is "text" (a .txt stream), "jsonl-text", "prompt-completion",
	// "chat" or "input-ids".
	Kind    string
	Stream  []int32
	Records []Record
	// TextBytes is the UTF-8 length of the text the loss targets encode
	// (special tokens count nothing), for bits per byte; 0 for input_ids.
	TextBytes int64

	// file, when not nil, holds the records instead of Records: a large
	// JSONL read from disk as batches need it (stream.go).
	file *recordFile
}

// Tokens is the number of tokens in the data set.
func (d *Dataset) Tokens() int64 {
	n := int64(len(d.Stream))
	if d.file != nil {
		n += d.file.tokens
	}
	for _, r := range d.Records {
		n += int64(len(r.Tokens))
	}
	return n
}

// IsByteVocab reports whether c's vocabulary is byte-level: ids 0..255 are
// the bytes, and up to 256 further ids may be special tokens. Without a
// tokenizer, text data is only accepted for such models.
func (c Config) IsByteVocab() bool { return c.VocabSize >= 256 && c.VocabSize <= 512 }

// LoadData reads a data file for a byte-vocabulary model (or input_ids
// data): LoadDataWith without a tokenizer.
func LoadData(path string, c Config) (*Dataset, error) {
	return LoadDataWith(path, c, DataOptions{})
}

// LoadDataWith reads a data file for a model with config c: a .txt file, or
// JSONL where every line has "text", "prompt" and "completion" (loss on the
// completion only), "messages" (a chat rendered with the tokenizer's
// chat_template, loss on the assistant turns only) or "input_ids". Text is
// encoded with o.Tokenizer, or as bytes for a byte-vocabulary model without
// one. Errors name the file and line: an empty file, a token id outside the
// vocabulary, a sequence longer than max_position_embeddings, text for a
// model with neither tokenizer nor byte vocabulary. A JSONL file above 256
// MiB is checked once and then read from disk as training needs its
// records, in bounded memory (Close the Dataset when done).
func LoadDataWith(path string, c Config, o DataOptions) (*Dataset, error) {
	return loadDataWith(path, c, o, streamAbove)
}

// loadData is LoadData streaming JSONL files larger than streamFrom bytes.
func loadData(path string, c Config, streamFrom int64) (*Dataset, error) {
	return loadDataWith(path, c, DataOptions{}, streamFrom)
}

func loadDataWith(path string, c Config, o DataOptions, streamFrom int64) (*Dataset, error) {
	var enc encoder = byteEncoder{c}
	if o.Tokenizer != nil {
		enc = newTokEncoder(o.Tokenizer, c, o.Now)
	}
	if ext := strings.ToLower(filepath.Ext(path)); ext == ".jsonl" || ext == ".json" {
		if st, err := os.Stat(path); err == nil && st.Size() > streamFrom {
			return openRecords(path, c, enc)
		}
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("train: data: %w", err)
	}
	d := &Dataset{Path: path}
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil, fmt.Errorf("train: %s: %w: file is empty", path, ErrData)
	}
	ext := strings.ToLower(filepath.Ext(path))
	if ext != ".jsonl" && ext != ".json" {
		d.Kind = "text"
		if d.Stream, err = enc.document(string(raw)); err != nil {
			return nil, fmt.Errorf("train: %s: %w: %v", path, ErrData, err)
		}
		if len(d.Stream) < 2 {
			return nil, fmt.Errorf("train: %s: %w: need at least 2 tokens, have %d", path, ErrData, len(d.Stream))
		}
		d.TextBytes = int64(len(raw)) - enc.targetBytes(d.Stream[:1])
		return d, nil
	}
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(make([]byte, 1<<20), 1<<30)
	line := 0
	for sc.Scan() {
		line++
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		rec, kind, err := parseRecord(b, c, enc)
		if err != nil {
			return nil, fmt.Errorf("train: %s:%d: %w: %w", path, line, ErrData, err)
		}
		if d.Kind == "" {
			d.Kind = kind
		} else if d.Kind != kind {
			return nil, fmt.Errorf("train: %s:%d: %w: record is %s but earlier ones are %s", path, line, ErrData, kind, d.Kind)
		}
		if len(rec.Tokens) > c.MaxPositions {
			return nil, fmt.Errorf("train: %s:%d: %w: %d tokens, longer than the model allows (max_position_embeddings %d)", path, line, ErrData, len(rec.Tokens), c.MaxPositions)
		}
		rec.Line = line
		d.Records = append(d.Records, rec)
		d.TextBytes += recordBytes(rec, kind, enc)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("train: %s:%d: %w", path, line+1, err)
	}
	if len(d.Records) == 0 {
		return nil, fmt.Errorf("train: %s: %w: no records", path, ErrData)
	}
	return d, nil
}

// recordBytes is the length of the text r's targets encode (0 for
// input_ids, which carry no text).
func recordBytes(r Record, kind string, enc encoder) int64 {
	if kind == "input-ids" {
		return 0
	}
	// Runs of targets are decoded whole: a character split over tokens
	// decodes only with all its tokens.
	var n int64
	for t := 1; t < len(r.Tokens); {
		if !r.isTarget(t) {
			t++
			continue
		}
		u := t
		for u < len(r.Tokens) && r.isTarget(u) {
			u++
		}
		n += enc.targetBytes(r.Tokens[t:u])
		t = u
	}
	return n
}

func parseRecord(b []byte, c Config, enc encoder) (Record, string, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return Record{}, "", fmt.Errorf("not a JSON object: %v", err)
	}
	str := func(k string) (string, bool, error) {
		v, ok := m[k]
		if !ok {
			return "", false, nil
		}
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			return "", true, fmt.Errorf("%q is not a string", k)
		}
		return s, true, nil
	}
	if v, ok := m["input_ids"]; ok {
		var ids []int64
		if err := json.Unmarshal(v, &ids); err != nil {
			return Record{}, "", fmt.Errorf(`"input_ids" is not a list of integers`)
		}
		r := Record{Tokens: make([]int32, len(ids)), LossFrom: 1}
		for i, id := range ids {
			if id < 0 || id >= int64(c.VocabSize) {
				return Record{}, "", fmt.Errorf("token id %d at position %d is outside the vocabulary (0..%d)", id, i, c.VocabSize-1)
			}
			r.Tokens[i] = int32(id)
		}
		if len(r.Tokens) < 2 {
			return Record{}, "", fmt.Errorf("need at least 2 tokens, have %d", len(r.Tokens))
		}
		return r, "input-ids", nil
	}
	if v, ok := m["messages"]; ok {
		var msgs []struct {
			Role    *string `json:"role"`
			Content *string `json:"content"`
		}
		if err := json.Unmarshal(v, &msgs); err != nil {
			return Record{}, "", fmt.Errorf(`"messages" is not a list of {"role": string, "content": string}`)
		}
		conv := make([]chat.Message, len(msgs))
		for i, m := range msgs {
			if m.Role == nil || m.Content == nil {
				return Record{}, "", fmt.Errorf(`messages[%d] needs "role" and "content"`, i)
			}
			conv[i] = chat.Message{Role: *m.Role, Content: *m.Content}
		}
		r, err := enc.conversation(conv)
		if err != nil {
			return Record{}, "", err
		}
		if len(r.Tokens) < 2 {
			return Record{}, "", fmt.Errorf("need at least 2 tokens, have %d", len(r.Tokens))
		}
		return r, "chat", nil
	}
	p, hasP, err := str("prompt")
	if err != nil {
		return Record{}, "", err
	}
	comp, hasC, err := str("completion")
	if err != nil {
		return Record{}, "", err
	}
	if hasP || hasC {
		if !hasP || !hasC {
			return Record{}, "", fmt.Errorf(`need both "prompt" and "completion"`)
		}
		if len(p) == 0 || len(comp) == 0 {
			return Record{}, "", fmt.Errorf(`empty "prompt" or "completion"`)
		}
		r, err := enc.promptCompletion(p, comp)
		return r, "prompt-completion", err
	}
	txt, hasT, err := str("text")
	if err != nil {
		return Record{}, "", err
	}
	if !hasT {
		return Record{}, "", fmt.Errorf(`record has none of "text", "prompt"+"completion", "messages", "input_ids"`)
	}
	toks, err := enc.document(txt)
	if err != nil {
		return Record{}, "", err
	}
	if len(toks) < 2 {
		return Record{}, "", fmt.Errorf(`"text" needs at least 2 tokens, has %d`, len(toks))
	}
	return Record{Tokens: toks, LossFrom: 1}, "jsonl-text", nil
}

// maxRecordLen is the longest record in tokens (0 for a stream).
func (d *Dataset) maxRecordLen() int {
	if d.file != nil {
		return d.file.maxLen
	}
	n := 0
	for _, r := range d.Records {
		n = max(n, len(r.Tokens))
	}
	return n
}

// checkSeq reports a record that cannot fit a training window of T
// positions (T+1 tokens), naming its line, as an *OptionError about Seq
// that is also ErrData.
func (d *Dataset) checkSeq(T int) error {
	if d.Stream != nil && len(d.Stream) < T+1 {
		return &OptionError{Where: d.Path, Option: "Seq", Value: T, Err: ErrData,
			Reason: fmt.Sprintf("%v: %d tokens, fewer than one window of %d + 1", ErrData, len(d.Stream), T)}
	}
	if f := d.file; f != nil && f.maxLen > T+1 {
		return &OptionError{Where: fmt.Sprintf("%s:%d", d.Path, f.maxAt), Option: "Seq", Value: T, Err: ErrData,
			Reason: fmt.Sprintf("%v: %d tokens, longer than a window of %d + 1 (raise it)", ErrData, f.maxLen, T)}
	}
	for _, r := range d.Records {
		if len(r.Tokens) > T+1 {
			return &OptionError{Where: fmt.Sprintf("%s:%d", d.Path, r.Line), Option: "Seq", Value: T, Err: ErrData,
				Reason: fmt.Sprintf("%v: %d tokens, longer than a window of %d + 1 (raise it)", ErrData, len(r.Tokens), T)}
		}
	}
	return nil
}

// fillRow writes record r as one row of T inputs and targets: targets
// before LossFrom and past the end are ignored, padding inputs are 0.
func fillRow(r Record, T int, tokens, targets []int32) {
	for t := 0; t < T; t++ {
		tokens[t], targets[t] = 0, ignoreIndex
		if t < len(r.Tokens) {
			tokens[t] = r.Tokens[t]
		}
		if t+1 < len(r.Tokens) && r.isTarget(t+1) {
			targets[t] = r.Tokens[t+1]
		}
	}
}

// sampler draws training batches deterministically from the seed: window
// offsets for a stream, a fresh permutation of records per epoch.
type sampler struct {
	d     *Dataset
	seed  uint64
	perms [2]epochPerm // the last two epochs' (a batch may span two)
}

// epochPerm is the record order of one epoch.
type epochPerm struct {
	epoch int
	perm  []int
}

// recordAt is the index of the record global row row draws.
func (s *sampler) recordAt(row int) int {
	n := s.d.numRecords()
	ep := row / n
	for _, p := range s.perms {
		if p.perm != nil && p.epoch == ep {
			return p.perm[row%n]
		}
	}
	s.perms[1] = s.perms[0]
	s.perms[0] = epochPerm{epoch: ep, perm: permutation(n, splitmix64(s.seed^0x1234567+uint64(ep)))}
	return s.perms[0].perm[row%n]
}

// batch fills B rows of T positions for global row index start (rows are
// numbered across all steps, so a resumed run draws the same rows), and
// for data read from disk starts reading the next batch's records.
func (s *sampler) batch(start, B, T int, tokens, targets []int32) error {
	for b := 0; b < B; b++ {
		row := start + b
		tk, tg := tokens[b*T:(b+1)*T], targets[b*T:(b+1)*T]
		if s.d.Stream != nil {
			span := uint64(len(s.d.Stream) - T)
			o := int(splitmix64(s.seed^0x5bd1e995+uint64(row)) % span)
			copy(tk, s.d.Stream[o:o+T])
			copy(tg, s.d.Stream[o+1:o+T+1])
			continue
		}
		r, err := s.d.record(s.recordAt(row))
		if err != nil {
			return err
		}
		fillRow(r, T, tk, tg)
	}
	if s.d.file != nil {
		next := make([]int, B)
		for b := range next {
			next[b] = s.recordAt(start + B + b)
		}
		s.d.readAhead(next)
	}
	return nil
}

// permutation is a Fisher-Yates shuffle of 0..n-1 from a counter stream.
func permutation(n int, key uint64) []int {
	p := make([]int, n)
	for i := range p {
		p[i] = i
	}
	for i := n - 1; i > 0; i-- {
		j := int(splitmix64(key+uint64(i)) % uint64(i+1))
		p[i], p[j] = p[j], p[i]
	}
	return p
}

// rows is how many training rows of T positions one pass over d is: its
// records, or a text stream's windows of T tokens.
func (d *Dataset) rows(T int) int64 {
	if d.Stream != nil {
		return int64(max(1, (len(d.Stream)-1)/T))
	}
	return int64(d.numRecords())
}
