// Package demo runs deltactl's end-to-end demonstration on the bundled tiny
// base model: push the base to a registry, train a LoRA for a small task,
// push it as a delta of the base, evaluate base and base+delta, merge, and
// unmerge bit-exactly. It is what `deltactl demo` prints.
package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/deltactl/deltactl/format"
	"github.com/deltactl/deltactl/format/peft"
	"github.com/deltactl/deltactl/internal/humanize"
	"github.com/deltactl/deltactl/merge"
	"github.com/deltactl/deltactl/registry"
	"github.com/deltactl/deltactl/testdata"
	"github.com/deltactl/deltactl/train"
)

// Refs the demo pushes.
const (
	BaseRef  = "demo/tinyllama:base"
	DeltaRef = "demo/tinyllama:uppercase"
)

// Options configure a demo run.
type Options struct {
	// Registry is the registry URL (a folder or s3://...).
	Registry string
	// WorkDir keeps the demo's folders (base, data, lora, merged,
	// unmerged); empty means a temporary folder removed at the end.
	WorkDir string
	// Steps of LoRA training (default 150).
	Steps int
	// Threads for training and evaluation (0: all cores).
	Threads int
	// Stage, if set, is called when a stage starts.
	Stage func(name string)
}

// Stage is one timed step of the demo.
type Stage struct {
	Name    string  `json:"name"`
	Seconds float64 `json:"seconds"`
	Detail  string  `json:"detail"`
}

// Report is what the demo measured.
type Report struct {
	Registry string  `json:"registry"`
	WorkDir  string  `json:"workdir,omitempty"`
	Task     string  `json:"task"`
	Stages   []Stage `json:"stages"`

	BasePush  *registry.PushResult `json:"base_push"`
	DeltaPush *registry.PushResult `json:"delta_push"`
	Usage     *registry.Usage      `json:"registry_usage"`

	TrainableParams int64   `json:"trainable_params"`
	BaseParams      int64   `json:"base_params"`
	LossBefore      float64 `json:"eval_loss_base"`
	LossAfter       float64 `json:"eval_loss_base_plus_delta"`
	LossMerged      float64 `json:"eval_loss_merged"`
	UnmergeExact    bool    `json:"unmerge_exact"`
	TotalSeconds    float64 `json:"total_seconds"`
}

// Run executes the demo.
func Run(ctx context.Context, opt Options) (rep *Report, err error) {
	if opt.Steps <= 0 {
		opt.Steps = 150
	}
	work := opt.WorkDir
	if work == "" {
		if work, err = os.MkdirTemp("", "deltactl-demo-"); err != nil {
			return nil, err
		}
		defer os.RemoveAll(work)
	} else if err := os.MkdirAll(work, 0o755); err != nil {
		return nil, err
	}
	r := &run{ctx: ctx, opt: opt, work: work, rep: &Report{Registry: opt.Registry, Task: taskDescription}}
	if opt.WorkDir != "" {
		r.rep.WorkDir = work
	}
	start := time.Now()
	if err := r.all(); err != nil {
		return nil, err
	}
	r.rep.TotalSeconds = time.Since(start).Seconds()
	return r.rep, nil
}

type run struct {
	ctx  context.Context
	opt  Options
	work string
	rep  *Report
	reg  *registry.Registry
	// adapter holds the pulled LoRA; its tensors alias its memory map.
	adapter *peft.Adapter
}

func (r *run) path(name string) string { return filepath.Join(r.work, name) }

// stage times fn and records it with the detail it returns.
func (r *run) stage(name string, fn func() (string, error)) error {
	if r.opt.Stage != nil {
		r.opt.Stage(name)
	}
	t := time.Now()
	detail, err := fn()
	if err != nil {
		return fmt.Errorf("demo: %s: %w", name, err)
	}
	r.rep.Stages = append(r.rep.Stages, Stage{Name: name, Seconds: time.Since(t).Seconds(), Detail: detail})
	return nil
}

func (r *run) all() error {
	base, data := r.path("base"), r.path("data")
	var trainSet, evalSet string
	err := r.stage("prepare", func() (string, error) {
		if err := writeBase(base); err != nil {
			return "", err
		}
		var n, m int
		var err error
		trainSet, evalSet, n, m, err = writeTask(base, data)
		if err != nil {
			return "", err
		}
		reg, err := registry.Open(r.ctx, r.opt.Registry, registry.Options{})
		if err != nil {
			return "", err
		}
		r.reg = reg
		return fmt.Sprintf("bundled base unpacked; task: %d training and %d held-out words", n, m), nil
	})
	if err != nil {
		return err
	}
	defer r.reg.Close()
	defer func() {
		if r.adapter != nil {
			r.adapter.Close()
		}
	}()

	if err := r.stage("push base", func() (string, error) {
		res, err := r.reg.Push(r.ctx, BaseRef, base, registry.PushOptions{})
		r.rep.BasePush = res
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("%s: %s logical, %s uploaded", BaseRef, humanize.Bytes(res.LogicalBytes), humanize.Bytes(res.UploadedBytes)), nil
	}); err != nil {
		return err
	}

	model, err := train.LoadModel(r.ctx, base, 0)
	if err != nil {
		return err
	}
	// Record the registry ref, not the temporary folder, as the LoRA's
	// base_model_name_or_path: reruns then give the same bytes and digest.
	model.Source = BaseRef
	evalData, err := train.LoadData(evalSet, model.Config)
	if err != nil {
		return err
	}
	evalOpt := train.EvalOptions{Threads: r.opt.Threads}
	if err := r.stage("eval base", func() (string, error) {
		res, err := train.Evaluate(r.ctx, model, nil, evalData, evalOpt)
		if err != nil {
			return "", err
		}
		r.rep.LossBefore = res.Loss
		return fmt.Sprintf("held-out loss %.3f nats/byte (perplexity %.1f)", res.Loss, res.Perplexity), nil
	}); err != nil {
		return err
	}

	lora := r.path("lora")
	if err := r.stage("train LoRA", func() (string, error) {
		ds, err := train.LoadData(trainSet, model.Config)
		if err != nil {
			return "", err
		}
		o := train.DefaultOptions()
		o.Method = format.MethodLoRA
		o.LoRA.Rank, o.LoRA.Alpha = 8, 16
		o.LoRA.Targets = []string{"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}
		o.Steps, o.Batch, o.LR, o.Warmup = r.opt.Steps, 16, 3e-3, 10
		o.Threads, o.Out = r.opt.Threads, lora
		res, err := train.Train(r.ctx, model, ds, nil, o)
		if err != nil {
			return "", err
		}
		r.rep.TrainableParams = res.TrainableParams
		r.rep.BaseParams = model.NumParams()
		return fmt.Sprintf("rank 8 on q,k,v,o,gate,up,down: %d steps, %d trainable parameters, %.0f tokens/s", res.Steps, res.TrainableParams, res.TokensPerSec), nil
	}); err != nil {
		return err
	}

	if err := r.stage("push LoRA", func() (string, error) {
		res, err := r.reg.Push(r.ctx, DeltaRef, lora, registry.PushOptions{Base: BaseRef})
		r.rep.DeltaPush = res
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("%s as a delta of %s: %s uploaded", DeltaRef, BaseRef, humanize.Bytes(res.UploadedBytes)), nil
	}); err != nil {
		return err
	}

	// From here on the delta comes back out of the registry, verified.
	pulled := r.path("pulled-lora")
	var inputs []merge.Input
	if err := r.stage("pull LoRA", func() (string, error) {
		if _, err := r.reg.Pull(r.ctx, DeltaRef, pulled); err != nil {
			return "", err
		}
		a, err := peft.Load(pulled)
		if err != nil {
			return "", err
		}
		r.adapter = a
		d, err := a.Delta()
		if err != nil {
			return "", err
		}
		inputs = []merge.Input{{Name: DeltaRef, Delta: d, Weight: 1}}
		return fmt.Sprintf("%s pulled and verified (%d LoRA modules)", DeltaRef, len(d.LoRA)), nil
	}); err != nil {
		return err
	}

	if err := r.stage("eval base+LoRA", func() (string, error) {
		res, err := train.Evaluate(r.ctx, model, inputs[0].Delta, evalData, evalOpt)
		if err != nil {
			return "", err
		}
		r.rep.LossAfter = res.Loss
		return fmt.Sprintf("held-out loss %.3f nats/byte (perplexity %.1f)", res.Loss, res.Perplexity), nil
	}); err != nil {
		return err
	}

	merged := r.path("merged")
	if err := r.stage("merge", func() (string, error) {
		f, err := merge.OpenFolder(base)
		if err != nil {
			return "", err
		}
		defer f.Close()
		res, err := merge.Merge(r.ctx, f, inputs, merged, merge.MergeOptions{Correction: true})
		if err != nil {
			return "", err
		}
		m, err := train.LoadModel(r.ctx, merged, 0)
		if err != nil {
			return "", err
		}
		ev, err := train.Evaluate(r.ctx, m, nil, evalData, evalOpt)
		if err != nil {
			return "", err
		}
		r.rep.LossMerged = ev.Loss
		return fmt.Sprintf("%d tensors merged in BF16, rounded once; correction %s; merged model loss %.3f", len(res.Merged), humanize.Bytes(res.CorrectionBytes), ev.Loss), nil
	}); err != nil {
		return err
	}

	return r.stage("unmerge", func() (string, error) {
		f, err := merge.OpenFolder(merged)
		if err != nil {
			return "", err
		}
		defer f.Close()
		unmerged := r.path("unmerged")
		res, err := merge.Unmerge(r.ctx, f, inputs, unmerged)
		if err != nil {
			return "", err
		}
		same, err := sameFile(filepath.Join(base, "model.safetensors"), filepath.Join(unmerged, "model.safetensors"))
		if err != nil {
			return "", err
		}
		r.rep.UnmergeExact = res.Exact && same
		if !r.rep.UnmergeExact {
			return "", errors.New("unmerged weights differ from the base")
		}
		u, err := r.reg.DiskUsage(r.ctx)
		if err != nil {
			return "", err
		}
		r.rep.Usage = u
		return "base recovered bit for bit (model.safetensors identical)", nil
	})
}

// writeBase unpacks the bundled model into dir.
func writeBase(dir string) error {
	src := testdata.TinyLlama()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, name := range []string{"config.json", "model.safetensors"} {
		b, err := fs.ReadFile(src, name)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

const taskDescription = `uppercase a word: "lower: thou\nupper:" -> " THOU\n"`

var wordRE = regexp.MustCompile(`\b[a-z]{3,8}\b`)

// writeTask builds the task from the held-out Shakespeare text the base never
// saw: every distinct lowercase word, the first 80% for training and the rest
// for evaluation, as prompt/completion JSONL (loss on the completion only).
func writeTask(base, dir string) (trainSet, evalSet string, nTrain, nEval int, err error) {
	text, err := fs.ReadFile(testdata.TinyLlama(), "heldout.txt")
	if err != nil {
		return "", "", 0, 0, err
	}
	seen := map[string]bool{}
	var words []string
	for _, w := range wordRE.FindAllString(string(text), -1) {
		if !seen[w] {
			seen[w] = true
			words = append(words, w)
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", "", 0, 0, err
	}
	split := len(words) * 4 / 5
	trainSet, evalSet = filepath.Join(dir, "train.jsonl"), filepath.Join(dir, "eval.jsonl")
	if err := writeJSONL(trainSet, words[:split]); err != nil {
		return "", "", 0, 0, err
	}
	if err := writeJSONL(evalSet, words[split:]); err != nil {
		return "", "", 0, 0, err
	}
	return trainSet, evalSet, split, len(words) - split, nil
}

func writeJSONL(path string, words []string) error {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	for _, w := range words {
		if err := enc.Encode(map[string]string{"prompt": "lower: " + w + "\nupper:", "completion": " " + strings.ToUpper(w) + "\n"}); err != nil {
			return err
		}
	}
	return os.WriteFile(path, b.Bytes(), 0o644)
}

func sameFile(a, b string) (bool, error) {
	x, err := os.ReadFile(a)
	if err != nil {
		return false, err
	}
	y, err := os.ReadFile(b)
	if err != nil {
		return false, err
	}
	return bytes.Equal(x, y), nil
}
