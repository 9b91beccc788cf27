package peft

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
)

// Pattern is one rank_pattern / alpha_pattern entry.
type Pattern struct {
	Key   string
	Value float64
}

// Patterns is an ordered rank_pattern or alpha_pattern: PEFT takes the
// first matching key in dict order, so order is kept from the file.
type Patterns []Pattern

var (
	_ json.Marshaler   = Patterns{}
	_ json.Unmarshaler = (*Patterns)(nil)
)

// Lookup returns the value for module using PEFT's get_pattern_key: the
// first key for which re.match(rf"(.*\.)?({key})$", module) succeeds.
// re.match anchors at the start only, "$" at the end.
func (p Patterns) Lookup(module string) (value float64, key string, ok bool, err error) {
	for _, e := range p {
		re, err := regexp.Compile(`^(.*\.)?(` + e.Key + `)$`)
		if err != nil {
			return 0, "", false, fmt.Errorf("%w: pattern key %q: %v", ErrInvalid, e.Key, err)
		}
		if re.MatchString(module) {
			return e.Value, e.Key, true, nil
		}
	}
	return 0, "", false, nil
}

// MarshalJSON writes the entries as a JSON object in order.
func (p Patterns) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, e := range p {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(e.Key)
		b.Write(k)
		b.WriteByte(':')
		b.WriteString(strconv.FormatFloat(e.Value, 'f', -1, 64))
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// UnmarshalJSON reads a JSON object of numbers keeping key order; null is
// an empty pattern. A repeated key keeps its first position and last value,
// as a Python dict does.
func (p *Patterns) UnmarshalJSON(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if tok == nil {
		*p = nil
		return nil
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return fmt.Errorf("want an object of numbers")
	}
	out := Patterns{}
	idx := map[string]int{}
	for dec.More() {
		kt, err := dec.Token()
		if err != nil {
			return err
		}
		k := kt.(string)
		var n json.Number
		if err := dec.Decode(&n); err != nil {
			return fmt.Errorf("key %q: want a number", k)
		}
		f, err := n.Float64()
		if err != nil {
			return fmt.Errorf("key %q: %v", k, err)
		}
		if i, dup := idx[k]; dup {
			out[i].Value = f
			continue
		}
		idx[k] = len(out)
		out = append(out, Pattern{k, f})
	}
	*p = out
	return nil
}
