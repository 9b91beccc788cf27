package kernels_test

import (
	"fmt"

	"github.com/deltactl/deltactl/kernels"
)

// y = x·Wᵀ and dx = dy·W from one bf16 weight W stored [out, in] = [2, 3],
// as a model file holds it: no float32 copy, no transposed copy.
func ExampleSgemmB16() {
	var w []uint16
	for _, v := range []float32{1, 2, 3, 4, 5, 6} {
		w = append(w, kernels.BF16FromF32(v))
	}
	x := []float32{1, 0, -1} // one token, 3 inputs
	y := make([]float32, 2)
	kernels.SgemmB16(1, false, true, 1, 2, 3, 1, x, 3, w, kernels.BF16, 3, 0, y, 2)
	dy := []float32{1, 1}
	dx := make([]float32, 3)
	kernels.SgemmB16(1, false, false, 1, 3, 2, 1, dy, 2, w, kernels.BF16, 3, 0, dx, 3)
	fmt.Println(y, dx)
	// Output: [-2 -2] [5 7 9]
}

// The same forward product on bf16 hardware (or its twin): x is rounded
// to bf16, which 0.5 and 3 survive exactly.
func ExampleBgemm() {
	var w []uint16
	for _, v := range []float32{1, 2, 3, 4, 5, 6} {
		w = append(w, kernels.BF16FromF32(v))
	}
	x := []float32{0.5, 3, 0}
	y := make([]float32, 2)
	kernels.Bgemm(1, false, true, 1, 2, 3, 1, x, 3, w, kernels.BF16, 3, 0, y, 2)
	fmt.Println(y)
	// Output: [6.5 17]
}
