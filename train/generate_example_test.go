package train_test

import (
	"context"
	"fmt"

	"github.com/deltactl/deltactl/train"
)

// Greedy continuation of a prompt by the bundled byte-level model, one
// token at a time over the cache; with a byte vocabulary the ids are the
// text's bytes.
func ExampleGenerator() {
	ctx := context.Background()
	m, err := train.LoadModel(ctx, "../testdata/tinyllama", 0)
	if err != nil {
		fmt.Println(err)
		return
	}
	g, err := train.NewGenerator(m, nil, 1)
	if err != nil {
		fmt.Println(err)
		return
	}
	prompt := []int{}
	for _, b := range []byte("ROMEO:\n") {
		prompt = append(prompt, int(b))
	}
	res, err := g.Generate(ctx, prompt, train.GenerateOptions{MaxNewTokens: 32})
	if err != nil {
		fmt.Println(err)
		return
	}
	text := make([]byte, len(res.IDs))
	for i, id := range res.IDs {
		text[i] = byte(id)
	}
	fmt.Printf("%q\n", text)
	// Output:
	// "I have the shall the shall the s"
}
