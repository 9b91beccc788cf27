package chat

import (
	"errors"
	"testing"
	"time"
)

// FuzzRender feeds arbitrary templates and contents: Render returns text or
// an error wrapping ErrTemplate, never panics.
func FuzzRender(f *testing.F) {
	for _, s := range []string{
		"{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}",
		"{{ messages[0]['content'] | trim }}{{ raise_exception('x') }}",
		"{% set ns = namespace(a=1) %}{% set ns.a = messages|length %}{{ ns.a }}",
		"{{ messages[::-1] | tojson }}{{ (messages|first).content.split('x')[-1] }}",
		"{% macro m(x) %}{{ x }}{% endmacro %}{{ m(strftime_now('%Y')) }}",
		"{{ 1 / 0 }}{{ messages.content.strip() }}{{ 'a' * 3 }}",
	} {
		f.Add(s, "hello </think> world")
	}
	now := func() time.Time { return time.Unix(0, 0).UTC() }
	f.Fuzz(func(t *testing.T, tmpl, content string) {
		c, err := Compile(tmpl)
		if err != nil {
			if !errors.Is(err, ErrTemplate) {
				t.Fatalf("compile error %v does not wrap ErrTemplate", err)
			}
			return
		}
		msgs := []Message{{Role: RoleUser, Content: content}, {Role: RoleAssistant, Content: content}}
		if _, err := c.Render(msgs, Options{AddGenerationPrompt: true, BOSToken: "<s>", Now: now}); err != nil && !errors.Is(err, ErrTemplate) {
			t.Fatalf("render error %v does not wrap ErrTemplate", err)
		}
	})
}
