package peft

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
)

// Modules is target_modules (or exclude_modules, feedforward_modules,
// modules_to_save-like lists): null, a regex string, or a list of names.
type Modules struct {
	// Set is false for null or an absent field.
	Set bool
	// IsRegex is true when the field was a string: a Python regex that must
	// match the whole module name (re.fullmatch).
	IsRegex bool
	Regex   string
	// List holds the names of the list form.
	List []string
}

var _ fmt.Stringer = Modules{}

// ModuleList returns a list-form Modules.
func ModuleList(names ...string) Modules { return Modules{Set: true, List: names} }

// Match reports whether module (a dotted path such as
// "model.layers.0.self_attn.q_proj") is selected, with PEFT's rules
// (tuners_utils.check_target_module_exists): a regex must match the whole
// name; a list entry must equal the name or be a suffix after a ".".
// The special string "all-linear" cannot be decided from names alone and
// matches everything.
func (m Modules) Match(module string) (bool, error) {
	if !m.Set {
		return false, nil
	}
	if m.IsRegex {
		if m.Regex == "all-linear" {
			return true, nil
		}
		re, err := compileFull(m.Regex)
		if err != nil {
			return false, err
		}
		return re.MatchString(module), nil
	}
	for _, e := range m.List {
		if module == e || strings.HasSuffix(module, "."+e) {
			return true, nil
		}
	}
	return false, nil
}

// compileFull compiles a Python regex for re.fullmatch. Go's RE2 accepts
// most patterns PEFT users write; ones it cannot (look-arounds,
// back-references) are reported rather than guessed at.
func compileFull(expr string) (*regexp.Regexp, error) {
	re, err := regexp.Compile(`^(?:` + expr + `)$`)
	if err != nil {
		return nil, fmt.Errorf("%w: regex %q: %v", ErrInvalid, expr, err)
	}
	return re, nil
}

func (m Modules) encode() any {
	switch {
	case !m.Set:
		return nil
	case m.IsRegex:
		return m.Regex
	case m.List == nil:
		return []string{}
	}
	return m.List
}

func decodeModules(raw json.RawMessage) (Modules, error) {
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return Modules{}, err
	}
	switch v := v.(type) {
	case nil:
		return Modules{}, nil
	case string:
		return Modules{Set: true, IsRegex: true, Regex: v}, nil
	case []any:
		out := Modules{Set: true, List: make([]string, 0, len(v))}
		for _, e := range v {
			s, ok := e.(string)
			if !ok {
				return Modules{}, fmt.Errorf("list entry %v is not a string", e)
			}
			out.List = append(out.List, s)
		}
		return out, nil
	}
	return Modules{}, fmt.Errorf("want null, a string or a list of strings")
}

// String renders m for humans: the regex, or the names joined by ",".
func (m Modules) String() string {
	switch {
	case !m.Set:
		return "null"
	case m.IsRegex:
		return m.Regex
	}
	return strings.Join(m.List, ",")
}
