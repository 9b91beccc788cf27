package train

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/deltactl/deltactl/format"
	"github.com/deltactl/deltactl/format/safetensors"
)

// CheckpointFile is the one file of a checkpoint folder: every trainable
// parameter and both AdamW moments in F32, and in its metadata the step,
// the loss history and the options of the run.
const CheckpointFile = "checkpoint.safetensors"

type checkpoint struct {
	step   int
	losses []float64
	evals  [][2]float64
}

// saveCheckpoint writes the state after step steps.
func saveCheckpoint(ctx context.Context, dir string, step int, params []param[float32], opt *adamW, o *Options, res *Result) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("train: checkpoint: %w", err)
	}
	var ts []*format.Tensor
	for i, p := range params {
		for _, x := range []struct {
			prefix string
			v      []float32
		}{{"param.", p.w}, {"adam_m.", opt.m[i]}, {"adam_v.", opt.v[i]}} {
			t, err := format.FromFloat32(x.prefix+p.name, format.F32, p.shape, x.v)
			if err != nil {
				return fmt.Errorf("train: checkpoint: %w", err)
			}
			ts = append(ts, t)
		}
	}
	meta := map[string]string{"step": strconv.Itoa(step), "adam_step": strconv.Itoa(opt.step)}
	for key, v := range map[string]any{"losses": res.Losses, "eval_losses": res.EvalLosses, "options": o} {
		b, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("train: checkpoint: %s: %w", key, err)
		}
		meta[key] = string(b)
	}
	if err := safetensors.WriteFile(ctx, filepath.Join(dir, CheckpointFile), ts, meta); err != nil {
		return fmt.Errorf("train: checkpoint: %w", err)
	}
	return nil
}

// loadCheckpoint restores parameters and optimizer state from dir. The
// run's options must match the checkpoint's except for the step count and
// the places output goes.
func loadCheckpoint(ctx context.Context, dir string, params []param[float32], opt *adamW, o *Options) (*checkpoint, error) {
	path := filepath.Join(dir, CheckpointFile)
	f, err := safetensors.Open(path)
	if err != nil {
		return nil, fmt.Errorf("train: resume: %w", err)
	}
	defer func() { _ = f.Close() }() // a read-only mapping: unmapping loses nothing
	meta := f.Metadata()
	var saved Options
	if err := json.Unmarshal([]byte(meta["options"]), &saved); err != nil {
		return nil, fmt.Errorf("train: resume: %s: options: %w", path, err)
	}
	cur := *o
	saved.Steps, saved.EvalEvery, saved.EvalBatches, saved.SaveEvery = cur.Steps, cur.EvalEvery, cur.EvalBatches, cur.SaveEvery
	a, err := json.Marshal(saved)
	if err != nil {
		return nil, fmt.Errorf("train: resume: %s: options: %w", path, err)
	}
	b, err := json.Marshal(cur)
	if err != nil {
		return nil, fmt.Errorf("train: resume: options: %w", err)
	}
	if string(a) != string(b) {
		return nil, fmt.Errorf("train: resume: %s was written with other options:\n  checkpoint %s\n  this run   %s", path, a, b)
	}
	ck := &checkpoint{}
	if ck.step, err = strconv.Atoi(meta["step"]); err != nil {
		return nil, fmt.Errorf("train: resume: %s: step: %w", path, err)
	}
	if opt.step, err = strconv.Atoi(meta["adam_step"]); err != nil {
		return nil, fmt.Errorf("train: resume: %s: adam_step: %w", path, err)
	}
	if err := json.Unmarshal([]byte(meta["losses"]), &ck.losses); err != nil {
		return nil, fmt.Errorf("train: resume: %s: losses: %w", path, err)
	}
	if err := json.Unmarshal([]byte(meta["eval_losses"]), &ck.evals); err != nil {
		return nil, fmt.Errorf("train: resume: %s: eval_losses: %w", path, err)
	}
	for i, p := range params {
		for _, x := range []struct {
			prefix string
			dst    []float32
		}{{"param.", p.w}, {"adam_m.", opt.m[i]}, {"adam_v.", opt.v[i]}} {
			t, err := f.Tensor(x.prefix + p.name)
			if err != nil {
				return nil, fmt.Errorf("train: resume: %w", err)
			}
			if !format.ShapeEqual(t.Shape, p.shape) || t.DType != format.F32 {
				return nil, fmt.Errorf("train: resume: %s: tensor %q is %s %v, want F32 %v", path, t.Name, t.DType, t.Shape, p.shape)
			}
			v, err := t.Float32s()
			if err != nil {
				return nil, fmt.Errorf("train: resume: %s: %w", path, err)
			}
			copy(x.dst, v)
		}
	}
	if ck.step > o.Steps {
		return nil, &OptionError{Where: "resume " + path, Option: "Steps", Value: o.Steps, Reason: fmt.Sprintf("the checkpoint is already at step %d", ck.step)}
	}
	return ck, ctx.Err()
}
