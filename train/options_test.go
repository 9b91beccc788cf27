package train

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/deltactl/deltactl/format"
)

// Validate names the field at fault, never a command-line flag.
func TestValidateNamesTheOption(t *testing.T) {
	for _, c := range []struct {
		edit   func(*Options)
		option string
	}{
		{func(o *Options) { o.Method = "sgd" }, "Method"},
		{func(o *Options) { o.Method = format.MethodIA3 }, "Method"},
		{func(o *Options) { o.Steps = 0 }, "Steps"},
		{func(o *Options) { o.Batch = -1 }, "Batch"},
		{func(o *Options) { o.Seq = 0 }, "Seq"},
		{func(o *Options) { o.LR = 0 }, "LR"},
		{func(o *Options) { o.SaveDType = "I8" }, "SaveDType"},
		{func(o *Options) { o.LoRA.Rank = 0 }, "LoRA.Rank"},
		{func(o *Options) { o.LoRA.Dropout = -0.1 }, "LoRA.Dropout"},
		{func(o *Options) { o.LoRA.Targets = nil }, "LoRA.Targets"},
		{func(o *Options) { o.LoRA.Targets = []string{"q_proj", "w_proj"} }, "LoRA.Targets"},
		{func(o *Options) { o.Method, o.Adapter.Size = format.MethodAdapter, 0 }, "Adapter.Size"},
		{func(o *Options) { o.Method, o.Adapter.Act = format.MethodAdapter, "tanh" }, "Adapter.Act"},
	} {
		o := DefaultOptions()
		c.edit(&o)
		err := o.Validate()
		var oe *OptionError
		if !errors.As(err, &oe) || oe.Option != c.option || !strings.HasPrefix(err.Error(), "train: Options."+c.option+" ") || strings.Contains(err.Error(), "--") {
			t.Errorf("%+v: Validate = %v, want an OptionError about %s", o, err, c.option)
		}
	}
	for _, m := range []format.Method{format.MethodLoRA, format.MethodAdapter, format.MethodFull} {
		o := DefaultOptions()
		o.Method = m
		if err := o.Validate(); err != nil {
			t.Errorf("defaults with method %s: %v", m, err)
		}
	}
}

// A record longer than the window is bad data and an error about Seq.
func TestCheckSeqIsDataAndOption(t *testing.T) {
	d := &Dataset{Path: "d.jsonl", Records: []Record{{Tokens: make([]int32, 10), Line: 3}}}
	if err := d.checkSeq(9); err != nil {
		t.Fatalf("10 tokens in a window of 9 + 1: %v", err)
	}
	err := d.checkSeq(8)
	var oe *OptionError
	if !errors.Is(err, ErrData) || !errors.As(err, &oe) || oe.Option != "Seq" || !strings.Contains(err.Error(), "d.jsonl:3") {
		t.Errorf("checkSeq(8) = %v, want ErrData and an OptionError about Seq naming d.jsonl:3", err)
	}
}

// A diverged run's NaN loss cannot be written as JSON: the checkpoint
// fails naming what, instead of writing empty metadata.
func TestCheckpointRefusesNaN(t *testing.T) {
	dir := t.TempDir()
	o := DefaultOptions()
	res := &Result{Losses: []float64{2.5, math.NaN()}}
	err := saveCheckpoint(context.Background(), dir, 2, nil, newAdamW(nil, 0), &o, res)
	if err == nil || !strings.Contains(err.Error(), "losses") {
		t.Fatalf("saveCheckpoint with a NaN loss: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, CheckpointFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s written: %v", CheckpointFile, err)
	}
}
