package kernels_test

import (
	"fmt"

	"github.com/deltactl/deltactl/kernels"
)

// C = A·B for 2×2 row-major matrices (alpha 1, beta 0: C is only written).
func ExampleSgemm() {
	a := []float32{1, 2, 3, 4}
	b := []float32{5, 6, 7, 8}
	c := make([]float32, 4)
	kernels.Sgemm(false, false, 2, 2, 2, 1, a, 2, b, 2, 0, c, 2)
	fmt.Println(c)
	// Output: [19 22 43 50]
}
