package registry

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/deltactl/deltactl/format"
	"github.com/deltactl/deltactl/format/peft"
)

// ErrBaseMismatch is returned (wrapped) when a delta does not fit its base:
// a target weight is missing or has another shape.
var ErrBaseMismatch = errors.New("delta does not fit its base")

// checkAdapter loads the adapter folder at dir and checks every weight it
// changes against the base manifest's tensor table. It returns the delta
// method and the adapter_config.json content for the manifest.
func checkAdapter(dir string, base *Manifest, baseRef string) (method format.Method, config any, err error) {
	raw, err := os.ReadFile(filepath.Join(dir, "adapter_config.json"))
	if err != nil {
		return "", nil, err
	}
	if config, err = decodeJSON(raw); err != nil {
		return "", nil, fmt.Errorf("%s: %w", filepath.Join(dir, "adapter_config.json"), err)
	}
	ad, err := peft.Load(dir)
	if err != nil {
		return "", nil, err
	}
	delta, err := ad.Delta()
	if err != nil {
		return "", nil, err
	}
	method = delta.Method
	switch method {
	case MethodLoRA, MethodIA3, MethodAdapter, MethodFull:
	default:
		return "", nil, fmt.Errorf("%s: unsupported delta method %q", dir, method)
	}
	idx := base.tensorIndex()
	has := func(n string) bool { _, ok := idx[n]; return ok }
	find := func(target string) (*Tensor, error) {
		name, ok := peft.ResolveTarget(target, has)
		if !ok {
			return nil, fmt.Errorf("%w: target weight %q is missing from base %s", ErrBaseMismatch, target, baseRef)
		}
		return idx[name], nil
	}
	mismatch := func(target string, need string, bt *Tensor) error {
		return fmt.Errorf("%w: tensor %q: the adapter needs a base weight of shape %s, base %s has %q with shape %v",
			ErrBaseMismatch, target, need, baseRef, bt.Name, bt.Shape)
	}
	for _, l := range delta.LoRA {
		bt, err := find(l.Target)
		if err != nil {
			return "", nil, err
		}
		if l.A == nil || l.B == nil || len(l.A.Shape) < 2 || len(l.B.Shape) < 2 {
			return "", nil, fmt.Errorf("lora %q: A or B missing or not a matrix", l.Target)
		}
		in, out := l.A.Shape[1], l.B.Shape[0]
		want := []int64{out, in}
		if l.FanInFanOut || l.Embedding {
			want = []int64{in, out}
		}
		ok := len(bt.Shape) >= 2 && bt.Shape[0] == want[0] && bt.Shape[1] == want[1]
		if len(bt.Shape) == 2 && len(l.A.Shape) != 2 {
			ok = false
		}
		if !ok {
			return "", nil, mismatch(l.Target, fmt.Sprint(want), bt)
		}
	}
	for _, v := range delta.IA3 {
		bt, err := find(v.Target)
		if err != nil {
			return "", nil, err
		}
		n := v.Vector.NumElements()
		if len(bt.Shape) < 1 || (n != bt.Shape[0] && (len(bt.Shape) < 2 || n != bt.Shape[1])) {
			return "", nil, mismatch(v.Target, fmt.Sprintf("with a dimension of %d", n), bt)
		}
	}
	for _, ad := range delta.Adapters {
		if err := checkBottleneck(ad, find, baseRef); err != nil {
			return "", nil, err
		}
	}
	for _, ts := range [][]*format.Tensor{delta.Full, delta.Replace} {
		for _, t := range ts {
			bt, err := find(t.Name)
			if err != nil {
				return "", nil, err
			}
			if !format.ShapeEqual(bt.Shape, t.Shape) {
				return "", nil, mismatch(t.Name, fmt.Sprint(t.Shape), bt)
			}
		}
	}
	return method, config, nil
}

// checkBottleneck checks that a bottleneck adapter (deltactl's BOTTLENECK
// folder, see package peft) fits the base: the block it sits on, the
// attention output projection for attn_adapter or the MLP's down
// projection for mlp_adapter of the same layer, must exist in the base and
// produce the hidden size the adapter reads (peft has already checked the
// adapter's own shapes).
func checkBottleneck(ad *format.Adapter, find func(string) (*Tensor, error), baseRef string) error {
	i := strings.LastIndexByte(ad.Placement, '.')
	if i < 0 || ad.Down == nil || len(ad.Down.Shape) != 2 {
		return fmt.Errorf("bottleneck adapter %q: malformed", ad.Placement)
	}
	layer, where := ad.Placement[:i], ad.Placement[i+1:]
	var out string
	switch where {
	case peft.PlacementAttn:
		out = layer + ".self_attn.o_proj.weight"
	case peft.PlacementMLP:
		out = layer + ".mlp.down_proj.weight"
	default:
		return fmt.Errorf("bottleneck adapter %q: unknown placement %q", ad.Placement, where)
	}
	bt, err := find(out)
	if err != nil {
		return fmt.Errorf("bottleneck adapter %q: %w", ad.Placement, err)
	}
	if hidden := ad.Down.Shape[1]; len(bt.Shape) != 2 || bt.Shape[0] != hidden {
		return fmt.Errorf("%w: bottleneck adapter %q reads hidden size %d, base %s has %q with shape %v",
			ErrBaseMismatch, ad.Placement, hidden, baseRef, bt.Name, bt.Shape)
	}
	return nil
}
