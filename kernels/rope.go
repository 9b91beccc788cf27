package kernels

// RotateHalf32 applies the rotate-half rotary embedding in place to rows
// consecutive rows of x, each nh heads of width 2h one after another
// (len(x) ≥ rows·nh·2h). Row r is at the position whose cos and sin are
// cos[r·h:(r+1)·h] and sin[r·h:(r+1)·h]: for each head v of the row and
// j < h,
//
//	(v[j], v[j+h]) <- (v[j]·cos[j] − v[j+h]·sin[j], v[j+h]·cos[j] + v[j]·sin[j])
func RotateHalf32(x, cos, sin []float32, rows, nh, h int) {
	p := Selected()
	w := nh * 2 * h
	for r := 0; r < rows; r++ {
		xr, c, s := x[r*w:(r+1)*w], cos[r*h:(r+1)*h], sin[r*h:(r+1)*h]
		if !rotateHalfAsm(p, xr, c, s, nh, h) {
			rotateHalfGo(xr, c, s, nh, h)
		}
	}
}

func rotateHalfGo(x, cos, sin []float32, nh, h int) {
	cos, sin = cos[:h], sin[:h]
	for hh := 0; hh < nh; hh++ {
		v := x[hh*2*h : (hh+1)*2*h]
		for j := 0; j < h; j++ {
			a, b := v[j], v[j+h]
			v[j] = a*cos[j] - b*sin[j]
			v[j+h] = b*cos[j] + a*sin[j]
		}
	}
}
