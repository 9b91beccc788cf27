package codec

import (
	"encoding/binary"
	"math/bits"
)

// rotatable reports whether elements of size e are rotated before grouping.
// For IEEE and bfloat16 floats of 2, 4 and 8 bytes, rotating the
// little-endian word left by one bit moves the sign from the top bit to the
// bottom one, so the top byte plane holds the exponent alone (all 8 bits for
// bf16 and f32). Exponents of trained weights take few values, so that plane
// compresses well while the sign, which is a coin flip, joins the mantissa
// plane that is incompressible anyway (ZipNN's "bit reordering").
func rotatable(e int) bool { return e == 2 || e == 4 || e == 8 }

// splitPlanes writes byte k of each full element of src (rotated first when
// rot is set) into planes[k]. Each plane must hold len(src)/e bytes.
func splitPlanes(planes [][]byte, src []byte, e int, rot bool) {
	n := len(src) / e
	switch {
	case rot && e == 2:
		p0, p1 := planes[0][:n], planes[1][:n]
		j := 0
		// Four elements per step: rotate each 16-bit lane of a 64-bit word.
		for ; j+4 <= n; j += 4 {
			v := binary.LittleEndian.Uint64(src[2*j:])
			v = (v<<1)&0xfffefffefffefffe | (v>>15)&0x0001000100010001
			lo := v & 0x00ff00ff00ff00ff
			hi := (v >> 8) & 0x00ff00ff00ff00ff
			binary.LittleEndian.PutUint32(p0[j:], uint32(pack16(lo)))
			binary.LittleEndian.PutUint32(p1[j:], uint32(pack16(hi)))
		}
		for ; j < n; j++ {
			v := bits.RotateLeft16(binary.LittleEndian.Uint16(src[2*j:]), 1)
			p0[j], p1[j] = byte(v), byte(v>>8)
		}
	case rot && e == 4:
		p0, p1, p2, p3 := planes[0][:n], planes[1][:n], planes[2][:n], planes[3][:n]
		for j := range p0 {
			v := bits.RotateLeft32(binary.LittleEndian.Uint32(src[4*j:]), 1)
			p0[j], p1[j], p2[j], p3[j] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
		}
	case rot && e == 8:
		for j := range n {
			v := bits.RotateLeft64(binary.LittleEndian.Uint64(src[8*j:]), 1)
			for k := range 8 {
				planes[k][j] = byte(v >> (8 * k))
			}
		}
	case e == 2:
		p0, p1 := planes[0][:n], planes[1][:n]
		for j := range p0 {
			p0[j], p1[j] = src[2*j], src[2*j+1]
		}
	default:
		for k := range e {
			p := planes[k][:n]
			for j := range p {
				p[j] = src[j*e+k]
			}
		}
	}
}

// joinPlanes is the inverse of splitPlanes: it fills the first len(dst)/e*e
// bytes of dst from the planes.
func joinPlanes(dst []byte, planes [][]byte, e int, rot bool) {
	n := len(dst) / e
	switch {
	case rot && e == 2:
		p0, p1 := planes[0][:n], planes[1][:n]
		j := 0
		for ; j+4 <= n; j += 4 {
			lo := spread16(uint64(binary.LittleEndian.Uint32(p0[j:])))
			hi := spread16(uint64(binary.LittleEndian.Uint32(p1[j:])))
			v := lo | hi<<8
			v = (v>>1)&0x7fff7fff7fff7fff | (v<<15)&0x8000800080008000
			binary.LittleEndian.PutUint64(dst[2*j:], v)
		}
		for ; j < n; j++ {
			v := uint16(p0[j]) | uint16(p1[j])<<8
			binary.LittleEndian.PutUint16(dst[2*j:], bits.RotateLeft16(v, -1))
		}
	case rot && e == 4:
		p0, p1, p2, p3 := planes[0][:n], planes[1][:n], planes[2][:n], planes[3][:n]
		for j := range p0 {
			v := uint32(p0[j]) | uint32(p1[j])<<8 | uint32(p2[j])<<16 | uint32(p3[j])<<24
			binary.LittleEndian.PutUint32(dst[4*j:], bits.RotateLeft32(v, -1))
		}
	case rot && e == 8:
		for j := range n {
			var v uint64
			for k := range 8 {
				v |= uint64(planes[k][j]) << (8 * k)
			}
			binary.LittleEndian.PutUint64(dst[8*j:], bits.RotateLeft64(v, -1))
		}
	case e == 2:
		p0, p1 := planes[0][:n], planes[1][:n]
		for j := range p0 {
			dst[2*j], dst[2*j+1] = p0[j], p1[j]
		}
	default:
		for k := range e {
			p := planes[k][:n]
			for j := range p {
				dst[j*e+k] = p[j]
			}
		}
	}
}

// pack16 gathers the low byte of each 16-bit lane of v (whose high bytes
// are zero) into the low 32 bits.
func pack16(v uint64) uint64 {
	v = (v | v>>8) & 0x0000ffff0000ffff
	return (v | v>>16) & 0xffffffff
}

// spread16 is the inverse of pack16: byte i of the low 32 bits goes to the
// low byte of 16-bit lane i.
func spread16(v uint64) uint64 {
	v = (v | v<<16) & 0x0000ffff0000ffff
	return (v | v<<8) & 0x00ff00ff00ff00ff
}

// xorInto sets dst[i] = a[i] ^ b[i]; all three have the same length.
func xorInto(dst, a, b []byte) {
	i := 0
	for ; i+8 <= len(dst); i += 8 {
		binary.LittleEndian.PutUint64(dst[i:], binary.LittleEndian.Uint64(a[i:])^binary.LittleEndian.Uint64(b[i:]))
	}
	for ; i < len(dst); i++ {
		dst[i] = a[i] ^ b[i]
	}
}
