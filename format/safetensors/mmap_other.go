//go:build !unix

package safetensors

import "os"

// mmapFile is unavailable here; Open falls back to reading through the file.
func mmapFile(*os.File, int64) ([]byte, error) { return nil, errNoMmap }

func munmap([]byte) error { return nil }

// preallocate sets f's size.
func preallocate(f *os.File, size int64) error { return f.Truncate(size) }
