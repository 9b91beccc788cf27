package peft

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"sort"
)

// The peft_type values of the PEFT adapters deltactl applies (PEFT's own
// spelling; the format.Method of the resulting Delta is their typed kind).
const (
	PeftTypeLoRA = "LORA"
	PeftTypeIA3  = "IA3"
)

// Config is adapter_config.json. The fields deltactl uses are typed; every
// field of the file, known or not, is also kept verbatim so that reading
// and writing a config changes nothing the user did not change (unknown
// PEFT fields, nulls, number spellings such as 0.0 all survive).
type Config struct {
	PeftType            string // "LORA", "IA3", ...
	TaskType            string // "" for null
	BaseModelNameOrPath string // "" for null
	Revision            string // "" for null
	InferenceMode       bool

	R             int     // default rank (PEFT default 8)
	LoraAlpha     float64 // default alpha (PEFT default 8)
	RankPattern   Patterns
	AlphaPattern  Patterns
	UseRSLoRA     bool
	UseDoRA       bool
	LoraBias      bool
	FanInFanOut   bool
	LoraDropout   float64
	Bias          string // "none", "all" or "lora_only"
	ModulesToSave []string

	TargetModules      Modules
	ExcludeModules     Modules
	FeedforwardModules Modules // IA3

	// InitLoraWeights is true, false or a string such as "gaussian".
	InitLoraWeights any
	// LayersToTransform is null, an int or a list of ints (kept as a list).
	LayersToTransform []int
	// LayersPattern is null, a string or a list of strings (kept as a list).
	LayersPattern []string

	raw map[string]json.RawMessage
}

// field maps one JSON key to a typed Config field.
type field struct {
	key    string
	def    string // JSON of PEFT's default, used when the key is absent
	decode func(c *Config, raw json.RawMessage) error
	encode func(c *Config) any
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func decodeNullString(raw json.RawMessage, dst *string) error {
	var v *string
	if err := json.Unmarshal(raw, &v); err != nil {
		return err
	}
	*dst = ""
	if v != nil {
		*dst = *v
	}
	return nil
}

func decodeInt(raw json.RawMessage, dst *int) error {
	var f float64
	if err := json.Unmarshal(raw, &f); err != nil {
		return err
	}
	if f != math.Trunc(f) || math.Abs(f) > 1<<31 {
		return fmt.Errorf("%v is not an integer", f)
	}
	*dst = int(f)
	return nil
}

var fields = []field{
	{"peft_type", `null`, func(c *Config, r json.RawMessage) error { return decodeNullString(r, &c.PeftType) }, func(c *Config) any { return nullable(c.PeftType) }},
	{"task_type", `null`, func(c *Config, r json.RawMessage) error { return decodeNullString(r, &c.TaskType) }, func(c *Config) any { return nullable(c.TaskType) }},
	{"base_model_name_or_path", `null`, func(c *Config, r json.RawMessage) error { return decodeNullString(r, &c.BaseModelNameOrPath) }, func(c *Config) any { return nullable(c.BaseModelNameOrPath) }},
	{"revision", `null`, func(c *Config, r json.RawMessage) error { return decodeNullString(r, &c.Revision) }, func(c *Config) any { return nullable(c.Revision) }},
	{"inference_mode", `false`, func(c *Config, r json.RawMessage) error { return json.Unmarshal(r, &c.InferenceMode) }, func(c *Config) any { return c.InferenceMode }},
	{"r", `8`, func(c *Config, r json.RawMessage) error { return decodeInt(r, &c.R) }, func(c *Config) any { return c.R }},
	{"lora_alpha", `8`, func(c *Config, r json.RawMessage) error { return json.Unmarshal(r, &c.LoraAlpha) }, func(c *Config) any { return c.LoraAlpha }},
	{"rank_pattern", `{}`, func(c *Config, r json.RawMessage) error { return json.Unmarshal(r, &c.RankPattern) }, func(c *Config) any { return nonNilPatterns(c.RankPattern) }},
	{"alpha_pattern", `{}`, func(c *Config, r json.RawMessage) error { return json.Unmarshal(r, &c.AlphaPattern) }, func(c *Config) any { return nonNilPatterns(c.AlphaPattern) }},
	{"use_rslora", `false`, func(c *Config, r json.RawMessage) error { return json.Unmarshal(r, &c.UseRSLoRA) }, func(c *Config) any { return c.UseRSLoRA }},
	{"use_dora", `false`, func(c *Config, r json.RawMessage) error { return json.Unmarshal(r, &c.UseDoRA) }, func(c *Config) any { return c.UseDoRA }},
	{"lora_bias", `false`, func(c *Config, r json.RawMessage) error { return json.Unmarshal(r, &c.LoraBias) }, func(c *Config) any { return c.LoraBias }},
	{"fan_in_fan_out", `false`, func(c *Config, r json.RawMessage) error { return json.Unmarshal(r, &c.FanInFanOut) }, func(c *Config) any { return c.FanInFanOut }},
	{"lora_dropout", `0.0`, func(c *Config, r json.RawMessage) error { return json.Unmarshal(r, &c.LoraDropout) }, func(c *Config) any { return c.LoraDropout }},
	{"bias", `"none"`, func(c *Config, r json.RawMessage) error { return decodeNullString(r, &c.Bias) }, func(c *Config) any { return nullable(c.Bias) }},
	{"modules_to_save", `null`, func(c *Config, r json.RawMessage) error { return json.Unmarshal(r, &c.ModulesToSave) }, func(c *Config) any {
		if c.ModulesToSave == nil {
			return nil
		}
		return c.ModulesToSave
	}},
	{"target_modules", `null`, func(c *Config, r json.RawMessage) (err error) { c.TargetModules, err = decodeModules(r); return }, func(c *Config) any { return c.TargetModules.encode() }},
	{"exclude_modules", `null`, func(c *Config, r json.RawMessage) (err error) { c.ExcludeModules, err = decodeModules(r); return }, func(c *Config) any { return c.ExcludeModules.encode() }},
	{"feedforward_modules", `null`, func(c *Config, r json.RawMessage) (err error) { c.FeedforwardModules, err = decodeModules(r); return }, func(c *Config) any { return c.FeedforwardModules.encode() }},
	{"init_lora_weights", `true`, func(c *Config, r json.RawMessage) error {
		var v any
		if err := json.Unmarshal(r, &v); err != nil {
			return err
		}
		switch v.(type) {
		case bool, string:
		default:
			return fmt.Errorf("want true, false or a string")
		}
		c.InitLoraWeights = v
		return nil
	}, func(c *Config) any { return c.InitLoraWeights }},
	{"layers_to_transform", `null`, func(c *Config, r json.RawMessage) error {
		var v any
		if err := json.Unmarshal(r, &v); err != nil {
			return err
		}
		c.LayersToTransform = nil
		switch v := v.(type) {
		case nil:
		case float64:
			c.LayersToTransform = []int{int(v)}
		case []any:
			c.LayersToTransform = []int{}
			for _, e := range v {
				f, ok := e.(float64)
				if !ok || f != math.Trunc(f) {
					return fmt.Errorf("list entry %v is not an integer", e)
				}
				c.LayersToTransform = append(c.LayersToTransform, int(f))
			}
		default:
			return fmt.Errorf("want null, an integer or a list of integers")
		}
		return nil
	}, func(c *Config) any {
		if c.LayersToTransform == nil {
			return nil
		}
		return c.LayersToTransform
	}},
	{"layers_pattern", `null`, func(c *Config, r json.RawMessage) error {
		m, err := decodeModules(r)
		c.LayersPattern = nil
		if m.Set {
			c.LayersPattern = m.List
			if m.IsRegex {
				c.LayersPattern = []string{m.Regex}
			}
		}
		return err
	}, func(c *Config) any {
		if c.LayersPattern == nil {
			return nil
		}
		return c.LayersPattern
	}},
}

func nonNilPatterns(p Patterns) Patterns {
	if p == nil {
		return Patterns{}
	}
	return p
}

// ParseConfig parses adapter_config.json. It fails with ErrNotPEFT when the
// JSON has no peft_type (another tool's adapter config) and with ErrInvalid
// when a known field has the wrong type.
func ParseConfig(data []byte) (*Config, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("%w: adapter_config.json: %v", ErrInvalid, err)
	}
	if raw == nil {
		return nil, fmt.Errorf("%w: adapter_config.json is null", ErrInvalid)
	}
	c := &Config{raw: raw}
	for _, f := range fields {
		v, ok := raw[f.key]
		if !ok {
			v = json.RawMessage(f.def)
		}
		if err := f.decode(c, v); err != nil {
			return nil, fmt.Errorf("%w: adapter_config.json: field %q: %v", ErrInvalid, f.key, err)
		}
	}
	if _, ok := raw["peft_type"]; !ok || c.PeftType == "" {
		return nil, fmt.Errorf("%w: adapter_config.json has no peft_type", ErrNotPEFT)
	}
	return c, nil
}

// NewLoRAConfig returns a LoRA config with the fields PEFT writes and its
// defaults, for the caller to fill in.
func NewLoRAConfig() *Config {
	c, err := ParseConfig([]byte(`{
  "alpha_pattern": {}, "base_model_name_or_path": null, "bias": "none",
  "fan_in_fan_out": false, "inference_mode": true, "init_lora_weights": true,
  "layers_pattern": null, "layers_to_transform": null, "lora_alpha": 8,
  "lora_dropout": 0.0, "modules_to_save": null, "peft_type": "LORA", "r": 8,
  "rank_pattern": {}, "revision": null, "target_modules": null, "task_type": null}`))
	if err != nil {
		panic("peft: built-in default config does not parse: " + err.Error()) // a bug in this file, not input
	}
	return c
}

// Extra returns the raw JSON of a field, known or not (nil when absent).
func (c *Config) Extra(key string) json.RawMessage { return c.raw[key] }

// SetExtra sets or (with nil) deletes a raw field that Config has no typed
// field for. Setting a known key through it is overridden by the typed
// field on Marshal.
func (c *Config) SetExtra(key string, v json.RawMessage) {
	if c.raw == nil {
		c.raw = map[string]json.RawMessage{}
	}
	if v == nil {
		delete(c.raw, key)
		return
	}
	c.raw[key] = v
}

// Marshal renders the config the way PEFT's save_pretrained does
// (json.dumps(indent=2, sort_keys=True)). Fields read from a file whose
// typed value did not change keep their original bytes; changed fields are
// re-encoded; known fields absent from the file are written only when they
// differ from PEFT's default.
func (c *Config) Marshal() ([]byte, error) {
	out := map[string]json.RawMessage{}
	for k, v := range c.raw {
		out[k] = v
	}
	for _, f := range fields {
		cur, err := marshalValue(f.encode(c))
		if err != nil {
			return nil, fmt.Errorf("peft: config field %q: %w", f.key, err)
		}
		old, present := c.raw[f.key]
		if !present {
			if !bytes.Equal(cur, canonical(f, json.RawMessage(f.def))) {
				out[f.key] = cur
			}
			continue
		}
		if !bytes.Equal(cur, canonical(f, old)) {
			out[f.key] = cur
		}
	}
	keys := make([]string, 0, len(out))
	for k := range out {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b bytes.Buffer
	b.WriteString("{")
	for i, k := range keys {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString("\n  ")
		kb, _ := marshalValue(k)
		b.Write(kb)
		b.WriteString(": ")
		var ind bytes.Buffer
		if err := json.Indent(&ind, out[k], "  ", "  "); err != nil {
			return nil, fmt.Errorf("peft: config field %q: %w", k, err)
		}
		b.Write(ind.Bytes())
	}
	if len(keys) > 0 {
		b.WriteString("\n")
	}
	b.WriteString("}")
	return b.Bytes(), nil
}

// canonical is the encoding of raw after decoding it into field f, so that
// spellings that mean the same (16 and 16.0, 3 and [3]) compare equal.
func canonical(f field, raw json.RawMessage) []byte {
	var tmp Config
	if err := f.decode(&tmp, raw); err != nil {
		return nil
	}
	b, err := marshalValue(f.encode(&tmp))
	if err != nil {
		return nil
	}
	return b
}

func marshalValue(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(b.Bytes(), "\n"), nil
}

// Clone returns a deep copy of c.
func (c *Config) Clone() *Config {
	d := *c
	d.raw = make(map[string]json.RawMessage, len(c.raw))
	for k, v := range c.raw {
		d.raw[k] = slices.Clone(v)
	}
	d.RankPattern = slices.Clone(c.RankPattern)
	d.AlphaPattern = slices.Clone(c.AlphaPattern)
	d.ModulesToSave = slices.Clone(c.ModulesToSave)
	d.TargetModules.List = slices.Clone(c.TargetModules.List)
	d.ExcludeModules.List = slices.Clone(c.ExcludeModules.List)
	d.FeedforwardModules.List = slices.Clone(c.FeedforwardModules.List)
	d.LayersToTransform = slices.Clone(c.LayersToTransform)
	d.LayersPattern = slices.Clone(c.LayersPattern)
	return &d
}
