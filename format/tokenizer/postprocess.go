package tokenizer

import (
	"encoding/json"
	"fmt"
)

// postProcessor adds the special tokens a tokenizer puts around a sequence
// (BOS/EOS); only single sequences are encoded here.
type postProcessor interface {
	process(ids []int, addSpecial bool) []int
}

func newPostProcessor(raw json.RawMessage, tokenID func(string) (int, bool), known func(int) bool) (postProcessor, error) {
	c, err := parseComponent(raw)
	if err != nil || c == nil {
		return nil, err
	}
	switch c.Type {
	case "ByteLevel":
		return nil, nil // it only trims offsets, which ids do not carry
	case "TemplateProcessing":
		return newTemplate(c, tokenID, known)
	case "BertProcessing", "RobertaProcessing":
		cls, err := specialPair(c.Cls, c.Type+" cls")
		if err != nil {
			return nil, err
		}
		sep, err := specialPair(c.Sep, c.Type+" sep")
		if err != nil {
			return nil, err
		}
		for _, id := range []int{cls, sep} {
			if !known(id) {
				return nil, fmt.Errorf("post_processor %s: id %d is not in the vocabulary", c.Type, id)
			}
		}
		return template{before: []int{cls}, after: []int{sep}}, nil
	case "Sequence":
		var seq sequencePost
		for i, r := range c.Processors {
			p, err := newPostProcessor(r, tokenID, known)
			if err != nil {
				return nil, fmt.Errorf("post_processor Sequence[%d]: %w", i, err)
			}
			if p != nil {
				seq = append(seq, p)
			}
		}
		return seq, nil
	}
	return nil, fmt.Errorf("post_processor %q: %w", c.Type, ErrUnsupported)
}

// specialPair reads Bert/RobertaProcessing's ["[CLS]", 101].
func specialPair(raw json.RawMessage, what string) (int, error) {
	var pair [2]json.RawMessage
	var id int
	if err := json.Unmarshal(raw, &pair); err != nil || json.Unmarshal(pair[1], &id) != nil {
		return 0, fmt.Errorf("post_processor %s: want [token, id], have %s", what, clip(raw))
	}
	return id, nil
}

// template is TemplateProcessing's "single" template: special tokens before
// and after sequence A.
type template struct{ before, after []int }

func newTemplate(c *component, tokenID func(string) (int, bool), known func(int) bool) (postProcessor, error) {
	var t template
	seenA := false
	for i, item := range c.Single {
		switch {
		case item.Sequence != nil:
			if item.Sequence.ID != "A" || seenA {
				return nil, fmt.Errorf("post_processor TemplateProcessing single[%d]: sequence %q: %w", i, item.Sequence.ID, ErrUnsupported)
			}
			seenA = true
		case item.SpecialToken != nil:
			name := item.SpecialToken.ID
			var ids []int
			if sp, ok := c.SpecialTokens[name]; ok {
				ids = sp.IDs
			} else if id, ok := tokenID(name); ok {
				ids = []int{id}
			} else {
				return nil, fmt.Errorf("post_processor TemplateProcessing: special token %q has no id", name)
			}
			for _, id := range ids {
				if !known(id) {
					return nil, fmt.Errorf("post_processor TemplateProcessing: special token %q: id %d is not in the vocabulary", name, id)
				}
			}
			if seenA {
				t.after = append(t.after, ids...)
			} else {
				t.before = append(t.before, ids...)
			}
		default:
			return nil, fmt.Errorf("post_processor TemplateProcessing single[%d]: neither Sequence nor SpecialToken", i)
		}
	}
	if !seenA {
		return nil, fmt.Errorf("post_processor TemplateProcessing: single template has no sequence A")
	}
	return t, nil
}

func (t template) process(ids []int, addSpecial bool) []int {
	if !addSpecial {
		return ids
	}
	out := make([]int, 0, len(t.before)+len(ids)+len(t.after))
	out = append(out, t.before...)
	out = append(out, ids...)
	return append(out, t.after...)
}

type sequencePost []postProcessor

func (seq sequencePost) process(ids []int, addSpecial bool) []int {
	for _, p := range seq {
		ids = p.process(ids, addSpecial)
	}
	return ids
}
