package codec

import (
	"bytes"
	"testing"
)

// TestPlanesMatchDefinition checks the fast split and join paths against
// the format's definition, element by element: plane k holds byte k of the
// little-endian element after an optional rotate-left by one bit.
func TestPlanesMatchDefinition(t *testing.T) {
	src := randomBytes(8*1001+5, 9)
	for _, e := range []int{2, 3, 4, 8} {
		for _, rot := range []bool{false, true} {
			if rot && !rotatable(e) {
				continue
			}
			n := len(src) / e
			planes := make([][]byte, e)
			for k := range planes {
				planes[k] = make([]byte, n)
			}
			splitPlanes(planes, src, e, rot)
			for j := range n {
				el := append([]byte(nil), src[j*e:(j+1)*e]...)
				if rot {
					carry := el[e-1] >> 7
					for k := e - 1; k > 0; k-- {
						el[k] = el[k]<<1 | el[k-1]>>7
					}
					el[0] = el[0]<<1 | carry
				}
				for k := range e {
					if planes[k][j] != el[k] {
						t.Fatalf("e=%d rot=%v element %d byte %d: plane has %#x, definition %#x", e, rot, j, k, planes[k][j], el[k])
					}
				}
			}
			back := make([]byte, n*e)
			joinPlanes(back, planes, e, rot)
			if !bytes.Equal(back, src[:n*e]) {
				t.Fatalf("e=%d rot=%v: join does not invert split", e, rot)
			}
		}
	}
}
