package chat

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/deltactl/deltactl/internal/testutil"
)

// realTemplate returns the chat_template, bos_token and eos_token of one of
// the real tokenizer_config.json files the oracle script installs.
func realTemplate(t *testing.T, name string) (tmpl, bos, eos string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testutil.RealTokenizer(t, name), "tokenizer_config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		ChatTemplate string  `json:"chat_template"`
		BOS          *string `json:"bos_token"`
		EOS          *string `json:"eos_token"`
	}
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	if c.BOS != nil {
		bos = *c.BOS
	}
	if c.EOS != nil {
		eos = *c.EOS
	}
	return c.ChatTemplate, bos, eos
}

var threeTurns = []Message{
	{Role: RoleSystem, Content: "You are terse."},
	{Role: RoleUser, Content: "Capital of France?"},
	{Role: RoleAssistant, Content: " Paris. \n"},
}

// The expected strings below are written out by hand from reading each
// template, and were checked once against Python Jinja2 3.1.6 set up as
// transformers' apply_chat_template sets it up (trim_blocks, lstrip_blocks).
func TestRenderLlama3(t *testing.T) {
	tmpl, bos, eos := realTemplate(t, "llama3")
	got, err := Render(tmpl, threeTurns, false, bos, eos)
	if err != nil {
		t.Fatal(err)
	}
	// This Llama 3 template trims each content and appends the assistant
	// header whether or not add_generation_prompt is set.
	want := "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are terse.<|eot_id|>" +
		"<|start_header_id|>user<|end_header_id|>\n\nCapital of France?<|eot_id|>" +
		"<|start_header_id|>assistant<|end_header_id|>\n\nParis.<|eot_id|>" +
		"<|start_header_id|>assistant<|end_header_id|>\n\n"
	if got != want {
		t.Errorf("llama3:\n got %q\nwant %q", got, want)
	}
	gen, err := Render(tmpl, threeTurns[:2], true, bos, eos)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(want, gen) || !strings.HasSuffix(gen, "<|start_header_id|>assistant<|end_header_id|>\n\n") {
		t.Errorf("llama3 generation prompt %q is not the start of the full conversation", gen)
	}
}

func TestRenderQwen3(t *testing.T) {
	tmpl, bos, eos := realTemplate(t, "qwen3")
	if bos != "" {
		t.Fatalf("qwen3 bos_token %q, the test expects none", bos)
	}
	msgs := append([]Message(nil), threeTurns...)
	msgs[2].Content = "Paris."
	got, err := Render(tmpl, msgs, false, bos, eos)
	if err != nil {
		t.Fatal(err)
	}
	// The last assistant turn after the last user query gets an (empty)
	// think block.
	want := "<|im_start|>system\nYou are terse.<|im_end|>\n" +
		"<|im_start|>user\nCapital of France?<|im_end|>\n" +
		"<|im_start|>assistant\n<think>\n\n</think>\n\nParis.<|im_end|>\n"
	if got != want {
		t.Errorf("qwen3:\n got %q\nwant %q", got, want)
	}
	gen, err := Render(tmpl, msgs[:2], true, bos, eos)
	if err != nil {
		t.Fatal(err)
	}
	wantGen := "<|im_start|>system\nYou are terse.<|im_end|>\n<|im_start|>user\nCapital of France?<|im_end|>\n<|im_start|>assistant\n"
	if gen != wantGen {
		t.Errorf("qwen3 generation prompt:\n got %q\nwant %q", gen, wantGen)
	}
	noGen, err := Render(tmpl, msgs[:2], false, bos, eos)
	if err != nil {
		t.Fatal(err)
	}
	if noGen+"<|im_start|>assistant\n" != gen {
		t.Errorf("qwen3 without generation prompt: %q", noGen)
	}

	// Reasoning written inline is split out by the template; an earlier
	// turn (before the last user query) loses its think block.
	conv := []Message{
		{Role: RoleUser, Content: "2+2?"},
		{Role: RoleAssistant, Content: "<think>\nadd them\n</think>\n\n4"},
		{Role: RoleUser, Content: "3+3?"},
		{Role: RoleAssistant, Content: "<think>add again</think>6"},
	}
	got, err = Render(tmpl, conv, false, bos, eos)
	if err != nil {
		t.Fatal(err)
	}
	want = "<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n4<|im_end|>\n" +
		"<|im_start|>user\n3+3?<|im_end|>\n<|im_start|>assistant\n<think>\nadd again\n</think>\n\n6<|im_end|>\n"
	if got != want {
		t.Errorf("qwen3 reasoning:\n got %q\nwant %q", got, want)
	}

	// Keyword arguments reach the template, as apply_chat_template's do.
	c, err := Compile(tmpl)
	if err != nil {
		t.Fatal(err)
	}
	off, err := c.Render(msgs[:2], Options{AddGenerationPrompt: true, EOSToken: eos, Vars: map[string]any{"enable_thinking": false}})
	if err != nil {
		t.Fatal(err)
	}
	if off != wantGen+"<think>\n\n</think>\n\n" {
		t.Errorf("qwen3 enable_thinking=false: %q", off)
	}
}

func TestRaiseException(t *testing.T) {
	// The shape of Llama 2 / Mistral templates' role check.
	tmpl := "{% for m in messages %}{% if (m['role'] == 'user') != (loop.index0 % 2 == 0) %}" +
		"{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}" +
		"{% endif %}[{{ m['role'] }}]{{ m['content'] }}{% endfor %}"
	_, err := Render(tmpl, []Message{{Role: RoleUser, Content: "a"}, {Role: RoleUser, Content: "b"}}, false, "<s>", "</s>")
	var re *RaisedError
	if !errors.As(err, &re) || !errors.Is(err, ErrTemplate) || re.Message != "Conversation roles must alternate user/assistant/user/assistant/..." {
		t.Fatalf("err = %v, want a RaisedError with the template's message", err)
	}
	got, err := Render(tmpl, []Message{{Role: RoleUser, Content: "a"}, {Role: RoleAssistant, Content: "b"}}, false, "<s>", "</s>")
	if err != nil || got != "[user]a[assistant]b" {
		t.Fatalf("got %q, %v", got, err)
	}
}

func TestStrftimeNow(t *testing.T) {
	// Llama 3.1's template: the date line uses strftime_now when defined.
	tmpl := `{%- if strftime_now is defined %}{%- set d = strftime_now("%d %b %Y") %}{%- else %}{%- set d = "26 Jul 2024" %}{%- endif %}Today Date: {{ d }} {{ strftime_now("%-d %B %y %H:%M:%S %a %j %%") }}`
	c, err := Compile(tmpl)
	if err != nil {
		t.Fatal(err)
	}
	now := func() time.Time { return time.Date(2025, 3, 4, 17, 5, 9, 0, time.UTC) }
	got, err := c.Render(nil, Options{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	if want := "Today Date: 04 Mar 2025 4 March 25 17:05:09 Tue 063 %"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	c, err = Compile(`{{ strftime_now("%Q") }}`)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Render(nil, Options{Now: now}); !errors.Is(err, ErrTemplate) || !strings.Contains(err.Error(), "%Q") {
		t.Errorf("unknown directive: %v", err)
	}
}

func TestUnsupportedFeature(t *testing.T) {
	for _, tmpl := range []string{
		"{% include 'other.jinja' %}",
		"{{ messages | pprint }}",
		"{% if messages is nosuchtest %}x{% endif %}",
		"{% for m in messages %}",
		"",
	} {
		_, err := Render(tmpl, threeTurns, false, "", "")
		if !errors.Is(err, ErrTemplate) {
			t.Errorf("%q: err = %v, want ErrTemplate", tmpl, err)
		}
	}
}
