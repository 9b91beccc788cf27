//go:build !amd64 || !gc || purego

package kernels

// Without the amd64 assembly the elementwise kernels run their Go twins:
// each *Asm reports that it did nothing.

func expShiftSumAsm(_ Path, dst, src []float32, shift float32, acc *[16]float32) bool { return false }
func maxAsm(_ Path, x []float32, m *[16]float32) bool                                 { return false }
func scaleAsm(_ Path, x []float32, f float32) bool                                    { return false }
func swigluAsm(_ Path, g, u, a, sig []float32) bool                                   { return false }
func swigluBackAsm(_ Path, g, u, sig, da, dg, du []float32) bool                      { return false }
func softmaxBackAsm(_ Path, p, dr []float32, d, scale float32) bool                   { return false }
func indexEqAsm(_ Path, x []float32, v float32) int                                   { return -1 }
func swigluBackRecomputeAsm(_ Path, g, u, da, dg, du []float32) bool                  { return false }
