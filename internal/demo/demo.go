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
	"github.com/deltactl/deltactl/internal/atomicfile"
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
		defer os.RemoveAll(work) // best effort: a leftover temporary folder is harmless
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

	// What the stages hand on to the next ones.
	trainSet, evalSet string
	model             *train.Model
	evalData          *train.Dataset
	inputs            []merge.Input // the pulled LoRA
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

// all runs the stages in order; each hands its results on through r.
func (r *run) all() error {
	if err := r.stage("prepare", r.prepare); err != nil {
		return err
	}
	defer func() {
		_ = r.reg.Close() // releases caches only; nothing written is pending
		if r.adapter != nil {
			_ = r.adapter.Close() // unmaps a read-only file
		}
	}()
	if err := r.stage("push base", r.pushBase); err != nil {
		return err
	}
	if err := r.loadBase(); err != nil { // untimed: not one of the demo's stages
		return err
	}
	for _, s := range []struct {
		name string
		fn   func() (string, error)
	}{
		{"eval base", r.evalBase},
		{"train LoRA", r.trainLoRA},
		{"push LoRA", r.pushLoRA},
		{"pull LoRA", r.pullLoRA},
		{"eval base+LoRA", r.evalLoRA},
		{"merge", r.merge},
		{"unmerge", r.unmerge},
	} {
		if err := r.stage(s.name, s.fn); err != nil {
			return err
		}
	}
	return nil
}

// prepare unpacks the bundled base, writes the task and opens the registry.
func (r *run) prepare() (string, error) {
	if err := writeBase(r.path("base")); err != nil {
		return "", err
	}
	var n, m int
	var err error
	r.trainSet, r.evalSet, n, m, err = writeTask(r.path("data"))
	if err != nil {
		return "", err
	}
	reg, err := registry.Open(r.ctx, r.opt.Registry, registry.Options{})
	if err != nil {
		return "", err
	}
	r.reg = reg
	return fmt.Sprintf("bundled base unpacked; task: %d training and %d held-out words", n, m), nil
}

func (r *run) pushBase() (string, error) {
	res, err := r.reg.Push(r.ctx, BaseRef, r.path("base"), registry.PushOptions{})
	r.rep.BasePush = res
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%s: %s logical, %s uploaded", BaseRef, humanize.Bytes(res.LogicalBytes), humanize.Bytes(res.UploadedBytes)), nil
}

// loadBase loads the base model for training and the held-out set.
func (r *run) loadBase() error {
	model, err := train.LoadModel(r.ctx, r.path("base"), 0)
	if err != nil {
		return err
	}
	// Record the registry ref, not the temporary folder, as the LoRA's
	// base_model_name_or_path: reruns then give the same bytes and digest.
	model.Source = BaseRef
	r.model = model
	r.evalData, err = train.LoadData(r.evalSet, model.Config)
	return err
}

func (r *run) evalOptions() train.EvalOptions { return train.EvalOptions{Threads: r.opt.Threads} }

func (r *run) evalBase() (string, error) {
	res, err := train.Evaluate(r.ctx, r.model, nil, r.evalData, r.evalOptions())
	if err != nil {
		return "", err
	}
	r.rep.LossBefore = res.Loss
	return fmt.Sprintf("held-out loss %.3f nats/byte (perplexity %.1f)", res.Loss, res.Perplexity), nil
}

func (r *run) trainLoRA() (string, error) {
	ds, err := train.LoadData(r.trainSet, r.model.Config)
	if err != nil {
		return "", err
	}
	o := train.DefaultOptions()
	o.Method = format.MethodLoRA
	o.LoRA.Rank, o.LoRA.Alpha = 8, 16
	o.LoRA.Targets = []string{"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}
	o.Steps, o.Batch, o.LR, o.Warmup = r.opt.Steps, 16, 3e-3, 10
	o.Threads, o.Out = r.opt.Threads, r.path("lora")
	res, err := train.Train(r.ctx, r.model, ds, nil, o)
	if err != nil {
		return "", err
	}
	r.rep.TrainableParams = res.TrainableParams
	r.rep.BaseParams = r.model.NumParams()
	return fmt.Sprintf("rank 8 on q,k,v,o,gate,up,down: %d steps, %d trainable parameters, %.0f tokens/s", res.Steps, res.TrainableParams, res.TokensPerSec), nil
}

func (r *run) pushLoRA() (string, error) {
	res, err := r.reg.Push(r.ctx, DeltaRef, r.path("lora"), registry.PushOptions{Base: BaseRef})
	r.rep.DeltaPush = res
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%s as a delta of %s: %s uploaded", DeltaRef, BaseRef, humanize.Bytes(res.UploadedBytes)), nil
}

// pullLoRA brings the delta back out of the registry, verified; the later
// stages use this copy, not the trainer's output.
func (r *run) pullLoRA() (string, error) {
	pulled := r.path("pulled-lora")
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
	r.inputs = []merge.Input{{Name: DeltaRef, Delta: d, Weight: 1}}
	return fmt.Sprintf("%s pulled and verified (%d LoRA modules)", DeltaRef, len(d.LoRA)), nil
}

func (r *run) evalLoRA() (string, error) {
	res, err := train.Evaluate(r.ctx, r.model, r.inputs[0].Delta, r.evalData, r.evalOptions())
	if err != nil {
		return "", err
	}
	r.rep.LossAfter = res.Loss
	return fmt.Sprintf("held-out loss %.3f nats/byte (perplexity %.1f)", res.Loss, res.Perplexity), nil
}

// merge merges the LoRA into the base and evaluates the merged model.
func (r *run) merge() (string, error) {
	f, err := merge.OpenFolder(r.path("base"))
	if err != nil {
		return "", err
	}
	defer f.Close() // read-only model folder
	merged := r.path("merged")
	res, err := merge.Merge(r.ctx, f, r.inputs, merged, merge.MergeOptions{Correction: true})
	if err != nil {
		return "", err
	}
	m, err := train.LoadModel(r.ctx, merged, 0)
	if err != nil {
		return "", err
	}
	ev, err := train.Evaluate(r.ctx, m, nil, r.evalData, r.evalOptions())
	if err != nil {
		return "", err
	}
	r.rep.LossMerged = ev.Loss
	return fmt.Sprintf("%d tensors merged in BF16, rounded once; correction %s; merged model loss %.3f", len(res.Merged), humanize.Bytes(res.CorrectionBytes), ev.Loss), nil
}

// unmerge takes the LoRA back out of the merged model and checks that the
// base comes back bit for bit.
func (r *run) unmerge() (string, error) {
	f, err := merge.OpenFolder(r.path("merged"))
	if err != nil {
		return "", err
	}
	defer f.Close() // read-only model folder
	unmerged := r.path("unmerged")
	res, err := merge.Unmerge(r.ctx, f, r.inputs, unmerged)
	if err != nil {
		return "", err
	}
	same, err := sameFile(filepath.Join(r.path("base"), "model.safetensors"), filepath.Join(unmerged, "model.safetensors"))
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
func writeTask(dir string) (trainSet, evalSet string, nTrain, nEval int, err error) {
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

// ExportBase writes the bundled tiny base model (config.json and
// model.safetensors) into dir, which must not exist or be empty; the
// folder appears whole or not at all. It touches no registry.
func ExportBase(dir string) error {
	return exportDir(dir, writeBase)
}

// ExportData writes the demo's task data, train.jsonl and eval.jsonl
// (prompt/completion records), into dir, which must not exist or be empty.
func ExportData(dir string) error {
	return exportDir(dir, func(tmp string) error {
		_, _, _, _, err := writeTask(tmp)
		return err
	})
}

// exportDir fills a temporary folder beside dir with fill and renames it
// to dir.
func exportDir(dir string, fill func(string) error) error {
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		return fmt.Errorf("demo: %s exists and is not empty", dir)
	}
	tmp, err := atomicfile.TempDirBeside(dir)
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	defer func() { _ = os.RemoveAll(tmp) }() // gone after the commit; a failed export leaves nothing
	if err := fill(tmp); err != nil {
		return fmt.Errorf("demo: %s: %w", dir, err)
	}
	if err := atomicfile.CommitDir(tmp, dir); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	return nil
}
