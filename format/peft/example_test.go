package peft_test

import (
	"fmt"
	"log"

	"github.com/deltactl/deltactl/format/peft"
)

// Load a PEFT adapter folder and print what each LoRA does to its base weight.
func ExampleLoad() {
	a, err := peft.Load("testdata/lora_mlp")
	if err != nil {
		log.Fatal(err)
	}
	defer a.Close() // read-only
	d, err := a.Delta()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(a.Config.PeftType, d.Method)
	for _, l := range d.LoRA {
		fmt.Printf("%s: rank %d, scale %g, A %v, B %v\n", l.Target, l.Rank(), l.Scale, l.A.Shape, l.B.Shape)
	}
	// Output:
	// LORA lora
	// lin0.weight: rank 8, scale 1, A [8 10], B [20 8]
}
