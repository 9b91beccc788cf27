package train

import (
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/deltactl/deltactl/format/chat"
	"github.com/deltactl/deltactl/format/tokenizer"
	"github.com/deltactl/deltactl/internal/testutil"
)

// realTok loads one of the real tokenizers the oracle script installs
// (skipped when absent, failing under CI=true) and a config whose
// vocabulary covers it.
func realTok(t *testing.T, name string) (*tokenizer.Tokenizer, Config) {
	t.Helper()
	tok, err := tokenizer.Load(testutil.RealTokenizer(t, name))
	if err != nil {
		t.Fatal(err)
	}
	return tok, Config{VocabSize: tok.VocabSize(), MaxPositions: 4096}
}

// writeJSONL writes one JSON line per value and returns the file.
func writeJSONL(t *testing.T, vals ...any) string {
	t.Helper()
	var b strings.Builder
	for _, v := range vals {
		j, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		b.Write(j)
		b.WriteByte('\n')
	}
	p := filepath.Join(t.TempDir(), "d.jsonl")
	if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// targetText decodes each run of loss targets of r (special tokens kept).
func targetText(t *testing.T, tok *tokenizer.Tokenizer, r Record) []string {
	t.Helper()
	var runs []string
	for i := 1; i < len(r.Tokens); {
		if !r.isTarget(i) {
			i++
			continue
		}
		j := i
		var ids []int
		for ; j < len(r.Tokens) && r.isTarget(j); j++ {
			ids = append(ids, int(r.Tokens[j]))
		}
		s, err := tok.Decode(ids, false)
		if err != nil {
			t.Fatal(err)
		}
		runs = append(runs, s)
		i = j
	}
	return runs
}

func msgs(pairs ...string) map[string]any {
	var m []chat.Message
	for i := 0; i+1 < len(pairs); i += 2 {
		m = append(m, chat.Message{Role: pairs[i], Content: pairs[i+1]})
	}
	return map[string]any{"messages": m}
}

// The loss of a chat record is on the assistant turns, each through its
// end-of-turn token, and nothing else: checked on the real templates.
func TestChatAssistantSpans(t *testing.T) {
	three := msgs("system", "You are terse.", "user", "Capital of France?", "assistant", "Paris.")
	multi := msgs("user", "2+2?", "assistant", "<think>\nadd them\n</think>\n\n4", "user", "3+3?", "assistant", "<think>add again</think>6")
	for _, tc := range []struct {
		name       string
		conv       map[string]any
		want       []string
		wholeStart string // the rendered text, decoded
	}{
		{"qwen3", three, []string{"<think>\n\n</think>\n\nParis.<|im_end|>"}, "<|im_start|>system\nYou are terse.<|im_end|>\n"},
		{"qwen3", multi, []string{"4<|im_end|>", "<think>\nadd again\n</think>\n\n6<|im_end|>"}, "<|im_start|>user\n2+2?"},
		// This Llama 3 template appends an assistant header after the
		// last turn even without add_generation_prompt: not a target.
		{"llama3", three, []string{"Paris.<|eot_id|>"}, "<|begin_of_text|><|start_header_id|>system"},
		{"llama3", multi, []string{"<think>\nadd them\n</think>\n\n4<|eot_id|>", "<think>add again</think>6<|eot_id|>"}, "<|begin_of_text|><|start_header_id|>user"},
	} {
		tok, c := realTok(t, tc.name)
		d, err := LoadDataWith(writeJSONL(t, tc.conv), c, DataOptions{Tokenizer: tok})
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if d.Kind != "chat" || len(d.Records) != 1 {
			t.Fatalf("%s: kind %q, %d records", tc.name, d.Kind, len(d.Records))
		}
		r := d.Records[0]
		got := targetText(t, tok, r)
		if strings.Join(got, "|") != strings.Join(tc.want, "|") {
			t.Errorf("%s: targets %q, want %q", tc.name, got, tc.want)
		}
		all := make([]int, len(r.Tokens))
		for i, id := range r.Tokens {
			all[i] = int(id)
		}
		s, _ := tok.Decode(all, false)
		if !strings.HasPrefix(s, tc.wholeStart) {
			t.Errorf("%s: record decodes to %q", tc.name, s)
		}
		// Bits per byte counts the targets' text without special tokens.
		var want int64
		for _, w := range tc.want {
			w = strings.NewReplacer("<|im_end|>", "", "<|eot_id|>", "").Replace(w)
			want += int64(len(w))
		}
		if d.TextBytes != want {
			t.Errorf("%s: TextBytes %d, want %d", tc.name, d.TextBytes, want)
		}
	}
}

// Text and prompt/completion records get BOS/EOS as the tokenizer says:
// Llama 2 adds BOS, Qwen3 and this Llama 3 file add nothing.
func TestTokenizedText(t *testing.T) {
	for _, tc := range []struct {
		name     string
		firstBOS bool
	}{{"llama2", true}, {"qwen3", false}, {"llama3", false}} {
		tok, c := realTok(t, tc.name)
		d, err := LoadDataWith(writeJSONL(t,
			map[string]string{"prompt": "Q: What is 2+2?\nA:", "completion": " 4, of course."},
			map[string]string{"prompt": "Héllo wörld ", "completion": "😀 ok"},
		), c, DataOptions{Tokenizer: tok})
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		bos, _ := tok.BOS()
		for i, r := range d.Records {
			if got := r.Tokens[0] == int32(bos); got != tc.firstBOS {
				t.Errorf("%s: record %d starts with BOS: %v", tc.name, i, got)
			}
			full := make([]int, len(r.Tokens))
			for j, id := range r.Tokens {
				full[j] = int(id)
			}
			// The prompt's own encoding is the record's start: the model
			// is trained on what it will see when asked.
			pre := tok.Encode([]string{"Q: What is 2+2?\nA:", "Héllo wörld "}[i], true)
			if commonPrefix(full, pre) != r.LossFrom || r.LossFrom < 1 {
				t.Errorf("%s: record %d LossFrom %d, prompt is %d tokens", tc.name, i, r.LossFrom, len(pre))
			}
			comp, _ := tok.Decode(full[r.LossFrom:], true)
			if want := []string{" 4, of course.", "😀 ok"}[i]; strings.TrimSpace(comp) != strings.TrimSpace(want) {
				t.Errorf("%s: record %d completion decodes to %q", tc.name, i, comp)
			}
		}
		txt := filepath.Join(t.TempDir(), "a.txt")
		body := "The quick brown fox.\nJumps over the lazy dog; ünïcödé and 数字 123456.\n"
		if err := os.WriteFile(txt, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		s, err := LoadDataWith(txt, c, DataOptions{Tokenizer: tok})
		if err != nil {
			t.Fatal(err)
		}
		ids := tok.Encode(body, true)
		if len(s.Stream) != len(ids) || (s.Stream[0] == int32(bos)) != tc.firstBOS {
			t.Errorf("%s: stream of %d tokens starting %d, want %d tokens", tc.name, len(s.Stream), s.Stream[0], len(ids))
		}
		first, _ := tok.Decode(ids[:1], true)
		if s.TextBytes != int64(len(body)-len(first)) {
			t.Errorf("%s: TextBytes %d, want %d - %d", tc.name, s.TextBytes, len(body), len(first))
		}
	}
}

func TestChatDataErrors(t *testing.T) {
	tok, c := realTok(t, "qwen3")
	for _, tc := range []struct {
		rec  any
		want string
	}{
		{msgs("user", "hi", "tool", "x", "assistant", "y"), `role "tool"`},
		{msgs("user", "hi"), "no assistant turn"},
		{map[string]any{"messages": []map[string]any{{"role": "user"}}}, `needs "role" and "content"`},
		{map[string]any{"messages": "hi"}, `"messages" is not a list`},
	} {
		_, err := LoadDataWith(writeJSONL(t, tc.rec), c, DataOptions{Tokenizer: tok})
		if !errors.Is(err, ErrData) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "d.jsonl:1") {
			t.Errorf("%v: err = %v, want ErrData naming d.jsonl:1 and %q", tc.rec, err, tc.want)
		}
	}
	// The Llama 3 template puts BOS in the first message: rendered with no
	// messages, the generation prompt does not start the conversation.
	l3, l3c := realTok(t, "llama3")
	if _, err := LoadDataWith(writeJSONL(t, msgs("assistant", "Hi!", "user", "a", "assistant", "b")), l3c, DataOptions{Tokenizer: l3}); !errors.Is(err, ErrData) || !strings.Contains(err.Error(), "messages[0]") || !strings.Contains(err.Error(), "start with a system or user message") {
		t.Errorf("assistant first: %v", err)
	}
	// Llama 2's file has no chat_template: chat data is refused, naming it.
	l2, lc := realTok(t, "llama2")
	if _, err := LoadDataWith(writeJSONL(t, msgs("user", "a", "assistant", "b")), lc, DataOptions{Tokenizer: l2}); !errors.Is(err, chat.ErrTemplate) || !strings.Contains(err.Error(), "no chat_template") {
		t.Errorf("no template: %v", err)
	}
	// Without a tokenizer, a byte-vocabulary model cannot render chat.
	byteCfg := Config{VocabSize: 256, MaxPositions: 64}
	if _, err := LoadData(writeJSONL(t, msgs("user", "a", "assistant", "b")), byteCfg); !errors.Is(err, ErrData) || !strings.Contains(err.Error(), "chat_template") {
		t.Errorf("chat without tokenizer: %v", err)
	}
	// A model smaller than its tokenizer is refused, naming the id.
	small := c
	small.VocabSize = 1000
	if _, err := LoadDataWith(writeJSONL(t, map[string]string{"text": "hello world, a longer text"}), small, DataOptions{Tokenizer: tok}); !errors.Is(err, ErrData) || !strings.Contains(err.Error(), "vocab_size 1000") {
		t.Errorf("vocab mismatch: %v", err)
	}
	// Without a tokenizer, text for a big-vocabulary model names both ways out.
	if _, err := LoadData(writeJSONL(t, map[string]string{"text": "hello"}), c); !errors.Is(err, ErrData) || !strings.Contains(err.Error(), "tokenizer.json") {
		t.Errorf("text without tokenizer: %v", err)
	}
}

// strftime_now sees one instant per load, so a template printing the date
// renders every prefix of a conversation alike.
func TestChatPinnedClock(t *testing.T) {
	tok, c := realTok(t, "qwen3")
	now := func() time.Time { return time.Date(2024, 7, 26, 0, 0, 0, 0, time.UTC) }
	enc := newTokEncoder(tok, c, now)
	var err error
	enc.tmpl, err = chat.Compile(`{{ strftime_now("%d %b %Y") }}{% for m in messages %}<|im_start|>{{ m.role }}
{{ m.content }}<|im_end|>
{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant
{% endif %}`)
	if err != nil {
		t.Fatal(err)
	}
	r, err := enc.conversation([]chat.Message{{Role: "user", Content: "a"}, {Role: "assistant", Content: "b"}})
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]int, len(r.Tokens))
	for i, id := range r.Tokens {
		ids[i] = int(id)
	}
	s, _ := tok.Decode(ids, false)
	if !strings.HasPrefix(s, "26 Jul 2024<|im_start|>user") || strings.Join(targetText(t, tok, r), "|") != "b<|im_end|>" {
		t.Errorf("rendered %q, targets %q", s, targetText(t, tok, r))
	}
}

// Bits per byte of a byte-vocabulary model's text is its loss in bits.
func TestBitsPerByteBytes(t *testing.T) {
	m := smallModel(t)
	d := &Dataset{Path: "t", Kind: "text", Stream: bytesToTokens([]byte(strings.Repeat("abcdefgh", 40)))}
	d.TextBytes = int64(len(d.Stream) - 1)
	r, err := Evaluate(t.Context(), m, nil, d, EvalOptions{Threads: 1, Batch: 2, Seq: 16})
	if err != nil {
		t.Fatal(err)
	}
	if r.BitsPerByte == nil || math.Abs(*r.BitsPerByte-r.Loss/math.Ln2) > 1e-9*r.Loss {
		t.Fatalf("bits per byte %v, loss %g nats over %d tokens", r.BitsPerByte, r.Loss, r.Tokens)
	}
}

// A Mistral-style template on the SentencePiece Llama 2 tokenizer: the
// turn ends at </s>, and the template's raise_exception is an error naming
// the line of data.
func TestChatMistralStyle(t *testing.T) {
	tok, c := realTok(t, "llama2")
	enc := newTokEncoder(tok, c, nil)
	enc.tmpl, enc.tmplErr = chat.Compile("{{ bos_token }}{% for message in messages %}" +
		"{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}" +
		"{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}" +
		"{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}" +
		"{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token }}{% endif %}{% endfor %}")
	if enc.tmplErr != nil {
		t.Fatal(enc.tmplErr)
	}
	r, err := enc.conversation([]chat.Message{{Role: "user", Content: "Hi there"}, {Role: "assistant", Content: " Hello! How can I help?"}, {Role: "user", Content: "Bye"}, {Role: "assistant", Content: " Goodbye."}})
	if err != nil {
		t.Fatal(err)
	}
	if got := targetText(t, tok, r); strings.Join(got, "|") != "Hello! How can I help?</s>|Goodbye.</s>" {
		t.Errorf("targets %q", got)
	}
	if r.Tokens[0] != 1 || r.isTarget(1) {
		t.Errorf("record starts %v: want <s> (1) and no target before the first turn", r.Tokens[:3])
	}
	_, err = enc.conversation([]chat.Message{{Role: "assistant", Content: "x"}})
	var re *chat.RaisedError
	if !errors.As(err, &re) || !strings.Contains(re.Message, "alternate") {
		t.Errorf("err = %v, want the template's raise_exception", err)
	}
}
