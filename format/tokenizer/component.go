package tokenizer

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// component is any normalizer, pre-tokenizer, post-processor or decoder
// object of tokenizer.json: the fields of every type this package knows.
type component struct {
	Type string `json:"type"`

	Normalizers   []json.RawMessage `json:"normalizers"`
	Pretokenizers []json.RawMessage `json:"pretokenizers"`
	Processors    []json.RawMessage `json:"processors"`
	Decoders      []json.RawMessage `json:"decoders"`

	Pattern *struct {
		String *string `json:"String"`
		Regex  *string `json:"Regex"`
	} `json:"pattern"`
	Content  *string `json:"content"`
	Prepend  *string `json:"prepend"`
	Behavior string  `json:"behavior"`
	Invert   bool    `json:"invert"`

	AddPrefixSpace *bool   `json:"add_prefix_space"`
	UseRegex       *bool   `json:"use_regex"`
	Replacement    *string `json:"replacement"`
	PrependScheme  *string `json:"prepend_scheme"`
	Split          *bool   `json:"split"`

	IndividualDigits bool `json:"individual_digits"`
	StripLeft        bool `json:"strip_left"`
	StripRight       bool `json:"strip_right"`
	Start            int  `json:"start"`
	Stop             int  `json:"stop"`

	Single []struct {
		SpecialToken *struct {
			ID string `json:"id"`
		} `json:"SpecialToken"`
		Sequence *struct {
			ID string `json:"id"`
		} `json:"Sequence"`
	} `json:"single"`
	SpecialTokens map[string]struct {
		IDs []int `json:"ids"`
	} `json:"special_tokens"`
	Cls json.RawMessage `json:"cls"`
	Sep json.RawMessage `json:"sep"`
}

// parseComponent reads one component; JSON null or an absent field gives nil.
func parseComponent(raw json.RawMessage) (*component, error) {
	if len(bytes.TrimSpace(raw)) == 0 || bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		return nil, nil
	}
	var c component
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, fmt.Errorf("component %s: %w", clip(raw), err)
	}
	if c.Type == "" {
		return nil, fmt.Errorf("component without \"type\": %s", clip(raw))
	}
	return &c, nil
}

func (c *component) boolOr(b *bool, def bool) bool {
	if b == nil {
		return def
	}
	return *b
}

func (c *component) contentOr(def string) string {
	if c.Content == nil {
		return def
	}
	return *c.Content
}

// literalPattern returns a Replace's String pattern; Regex patterns are
// refused (none of the supported families needs one).
func (c *component) literalPattern(what string) (string, error) {
	switch {
	case c.Pattern == nil:
		return "", fmt.Errorf("%s without a pattern", what)
	case c.Pattern.String != nil && *c.Pattern.String != "":
		return *c.Pattern.String, nil
	case c.Pattern.Regex != nil:
		return "", fmt.Errorf("%s with regex %q: %w", what, *c.Pattern.Regex, ErrUnsupported)
	}
	return "", fmt.Errorf("%s with an empty pattern", what)
}

// clip shortens raw JSON for an error message.
func clip(raw []byte) string {
	const max = 120
	if len(raw) > max {
		return string(raw[:max]) + "..."
	}
	return string(raw)
}
