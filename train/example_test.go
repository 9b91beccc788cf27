package train_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/deltactl/deltactl/format"
	"github.com/deltactl/deltactl/train"
)

// Options are checked before anything is loaded; a bad one comes back as
// an *OptionError naming the field, for the caller to say in its own words.
func ExampleOptions_Validate() {
	o := train.DefaultOptions()
	fmt.Println(o.Validate())

	o.Method, o.Adapter.Act = format.MethodAdapter, "tanh"
	err := o.Validate()
	var oe *train.OptionError
	if errors.As(err, &oe) {
		fmt.Println(oe.Option)
		fmt.Println(err)
		fmt.Println(oe.Describe("--adapter-act"))
	}
	// Output:
	// <nil>
	// Adapter.Act
	// train: Options.Adapter.Act "tanh": want relu, gelu or silu
	// train: --adapter-act "tanh": want relu, gelu or silu
}

// Two steps of a rank-4 LoRA on the bundled tiny model, trained on a little
// of its held-out text, written as a PEFT folder.
func ExampleTrain() {
	ctx := context.Background()
	base, err := train.LoadModel(ctx, "../testdata/tinyllama", 0)
	if err != nil {
		fmt.Println(err)
		return
	}
	dir, err := os.MkdirTemp("", "train-example-")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	data, err := train.LoadData("../testdata/tinyllama/heldout.txt", base.Config)
	if err != nil {
		fmt.Println(err)
		return
	}
	o := train.DefaultOptions()
	o.LoRA.Rank, o.Steps, o.Batch, o.Seq, o.Threads = 4, 2, 2, 32, 1
	o.Out = filepath.Join(dir, "lora")
	res, err := train.Train(ctx, base, data, nil, o)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(res.Method, res.Steps, "steps,", res.Tokens, "tokens,", res.TrainableParams, "trainable parameters")
	fmt.Println(res.Files)
	// Output:
	// lora 2 steps, 128 tokens, 10752 trainable parameters
	// [adapter_config.json adapter_model.safetensors training_log.json loss_curve.png]
}
