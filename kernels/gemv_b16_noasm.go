//go:build !amd64 || !gc || purego

package kernels

func gemvBF16AVX512(acc *float32, x *float32, w *uint16, ldw int, n16, ngrp int) {
	panic("kernels: assembly kernel called in a build without assembly")
}

func gemvF16AVX512(acc *float32, x *float32, w *uint16, ldw int, n16, ngrp int) {
	panic("kernels: assembly kernel called in a build without assembly")
}

func gemvF16BlocksAVX512(y *float32, acc *float32, x *float32, w *uint16, ldw int, nblk int, zeroY bool) {
	panic("kernels: assembly kernel called in a build without assembly")
}

func gemvBF16PairsAVX512(y *float32, acc *float32, x *float32, w *uint16, ldw int, nblk, ngrp int, zeroY bool) {
	panic("kernels: assembly kernel called in a build without assembly")
}

func gemvBF16AVX2(acc *float32, x *float32, w *uint16, ldw int, n8 int) {
	panic("kernels: assembly kernel called in a build without assembly")
}

func gemvF16AVX2(acc *float32, x *float32, w *uint16, ldw int, n8 int) {
	panic("kernels: assembly kernel called in a build without assembly")
}
