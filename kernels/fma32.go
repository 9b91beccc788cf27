package kernels

import "math"

// fma32 returns x*y+z rounded once to float32 (round to nearest even), the
// result of the VFMADD instructions, computed without float32 FMA hardware.
//
// x*y is exact in float64 (24+24 bits), but p+z rounded to float64 and then
// to float32 is a double rounding: it goes wrong exactly when the float64
// sum lands on a float32 halfway point that the exact sum was not on. TwoSum
// recovers the float64 rounding error e, and its sign breaks such ties.
func fma32(x, y, z float32) float32 {
	// x*y is exact in float64, so s is the exact sum rounded once (fused
	// or not). float32(s) is then the correctly rounded result unless s
	// sits exactly on a float32 halfway point (low 29 mantissa bits
	// 1000...0) or in the float32 subnormal range, where halfway points are
	// coarser; only those go the slow way. Small enough to inline.
	s := float64(x)*float64(y) + float64(z)
	b := math.Float64bits(s)
	if b&(1<<29-1) != 1<<28 && b&0x7ff0000000000000 >= 0x3810000000000000 {
		return float32(s)
	}
	return fma32Slow(x, y, z)
}

// fma32Slow is fma32 for the sums that land on a float32 halfway point or
// below the float32 normal range.
func fma32Slow(x, y, z float32) float32 {
	p := float64(x) * float64(y)
	zz := float64(z)
	s := p + zz
	r := float32(s)
	if float64(r) == s || s != s || math.IsInf(float64(r), 0) {
		// Exact, NaN, or overflow. (An exact sum just below the overflow
		// threshold whose float64 rounding lands on it is not corrected.)
		return r
	}
	bv := s - p
	e := (p - (s - bv)) + (zz - bv)
	if e == 0 {
		return r
	}
	// The neighbour of r on the other side of s.
	var o float32
	if float64(r) < s {
		o = math.Nextafter32(r, float32(math.Inf(1)))
	} else {
		o = math.Nextafter32(r, float32(math.Inf(-1)))
	}
	if s-float64(r) != float64(o)-s {
		return r // not a tie: float32(s) already rounded the exact sum right
	}
	// s is a float32 halfway point but the exact sum is s+e: round toward e.
	if (e > 0) == (float64(o) > float64(r)) {
		return o
	}
	return r
}
