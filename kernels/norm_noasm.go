//go:build !amd64 || !gc || purego

package kernels

// Without the amd64 assembly the RMSNorm kernels run their Go twins.

func sumSqAsm(_ Path, x []float32, acc *[16]float64) bool                    { return false }
func normDotAsm(_ Path, x, g, w []float32, r float32, acc *[16]float64) bool { return false }
func normRowAsm(_ Path, y, x, w []float32, r float32) bool                   { return false }
func normBackRowAsm(_ Path, x, g, w, dx, pw []float32, r, m float32) bool    { return false }
func rotateHalfAsm(_ Path, x, cos, sin []float32, nh, h int) bool            { return false }
func dotAsm(_ Path, a, b []float32, acc *[16]float64) bool                   { return false }
