package kernels

// RotateHalf32 applies the rotate-half rotary embedding to nh heads of
// width 2h held one after another in x (len(x) ≥ nh·2h), in place, with the
// cos and sin of one position (len ≥ h): for each head v and j < h,
//
//	(v[j], v[j+h]) <- (v[j]·cos[j] − v[j+h]·sin[j], v[j+h]·cos[j] + v[j]·sin[j])
func RotateHalf32(x, cos, sin []float32, nh, h int) {
	p := Selected()
	x, cos, sin = x[:nh*2*h], cos[:h], sin[:h]
	if !rotateHalfAsm(p, x, cos, sin, nh, h) {
		rotateHalfGo(x, cos, sin, nh, h)
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
