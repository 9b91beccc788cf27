package chat

import (
	"errors"
	"fmt"
	"time"

	"github.com/ardanlabs/jinja"

	"github.com/deltactl/deltactl/format/tokenizer"
)

// Roles a conversation may hold.
const (
	RoleSystem    = "system"
	RoleUser      = "user"
	RoleAssistant = "assistant"
)

// Message is one turn of a conversation, as in the "messages" lists of
// chat data and of apply_chat_template.
type Message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// Options are the values, besides the messages, that apply_chat_template
// hands a template.
type Options struct {
	// AddGenerationPrompt asks the template to end with the header of an
	// assistant turn, for the model to write it.
	AddGenerationPrompt bool
	// BOSToken and EOSToken are tokenizer_config.json's bos_token and
	// eos_token; "" leaves the variable undefined, as transformers does for
	// a token the tokenizer does not have.
	BOSToken, EOSToken string
	// Now is the time strftime_now formats (default time.Now), so data
	// rendered with a template that prints today's date can be pinned.
	Now func() time.Time
	// Vars are further template variables (apply_chat_template's keyword
	// arguments, such as Qwen3's enable_thinking).
	Vars map[string]any
}

// Template is a compiled chat template. It is safe for concurrent use.
type Template struct {
	t *jinja.Template
}

// Compile parses a chat template. A syntax error or a statement the engine
// does not implement is an error wrapping ErrTemplate.
func Compile(source string) (*Template, error) {
	if source == "" {
		return nil, fmt.Errorf("chat: %w: the template is empty (tokenizer_config.json has no chat_template)", ErrTemplate)
	}
	t, err := guard(func() (*jinja.Template, error) { return jinja.Compile(source) })
	if err != nil {
		return nil, fmt.Errorf("chat: %w: %v", ErrTemplate, err)
	}
	return &Template{t: t}, nil
}

// Render renders messages. Errors wrap ErrTemplate; the template's own
// raise_exception is a *RaisedError carrying its message.
func (t *Template) Render(messages []Message, o Options) (string, error) {
	now := o.Now
	if now == nil {
		now = time.Now
	}
	var raised *RaisedError
	data := make(map[string]jinja.Value, len(o.Vars)+6)
	for k, v := range o.Vars {
		data[k] = jinja.FromGoValue(v)
	}
	msgs := make([]jinja.Value, len(messages))
	for i, m := range messages {
		// Built by hand, not from a Go map, so keys keep the order
		// role, content that a Python dict (and tojson) would show.
		d := jinja.NewDict()
		d.AsDict().Set("role", jinja.NewString(m.Role))
		d.AsDict().Set("content", jinja.NewString(m.Content))
		msgs[i] = d
	}
	data["messages"] = jinja.NewList(msgs)
	data["add_generation_prompt"] = jinja.NewBool(o.AddGenerationPrompt)
	if o.BOSToken != "" {
		data["bos_token"] = jinja.NewString(o.BOSToken)
	}
	if o.EOSToken != "" {
		data["eos_token"] = jinja.NewString(o.EOSToken)
	}
	data["raise_exception"] = jinja.NewCallable("raise_exception", func(args []jinja.Value, _ map[string]jinja.Value) (jinja.Value, error) {
		msg := "(no message)"
		if len(args) > 0 && args[0].IsString() {
			msg = args[0].AsString()
		} else if len(args) > 0 {
			msg = args[0].String()
		}
		raised = &RaisedError{Message: msg}
		return jinja.Undefined(), raised
	})
	data["strftime_now"] = jinja.NewCallable("strftime_now", func(args []jinja.Value, _ map[string]jinja.Value) (jinja.Value, error) {
		if len(args) != 1 || !args[0].IsString() {
			return jinja.Undefined(), errors.New("strftime_now takes one format string")
		}
		s, err := strftime(args[0].AsString(), now())
		if err != nil {
			return jinja.Undefined(), err
		}
		return jinja.NewString(s), nil
	})
	out, err := guard(func() (string, error) { return t.t.RenderValues(data) })
	if err != nil {
		if raised != nil {
			return "", fmt.Errorf("chat: %w", raised)
		}
		return "", fmt.Errorf("chat: %w: %v", ErrTemplate, err)
	}
	return out, nil
}

// Render compiles template and renders messages with it, as
// apply_chat_template(messages, add_generation_prompt=...,
// tokenize=False) does with the tokenizer's bos_token and eos_token.
func Render(template string, messages []Message, addGenerationPrompt bool, bosToken, eosToken string) (string, error) {
	t, err := Compile(template)
	if err != nil {
		return "", err
	}
	return t.Render(messages, Options{AddGenerationPrompt: addGenerationPrompt, BOSToken: bosToken, EOSToken: eosToken})
}

// OptionsFor returns the Options apply_chat_template would fill in from
// tok: its bos_token and eos_token (as tokenizer_config.json names them).
func OptionsFor(tok *tokenizer.Tokenizer) Options {
	var o Options
	if id, ok := tok.BOS(); ok {
		o.BOSToken, _ = tok.TokenString(id)
	}
	if id, ok := tok.EOS(); ok {
		o.EOSToken, _ = tok.TokenString(id)
	}
	return o
}

// guard runs f, turning a panic inside the template engine into an error:
// a chat template comes from a model folder, and a template the engine
// chokes on must be an error naming it, not a crash.
func guard[T any](f func() (T, error)) (v T, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("template engine failed: %v", r)
		}
	}()
	return f()
}
