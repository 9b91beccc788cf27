//go:build !linux || !amd64 || !gc || purego

package kernels

// amxUsable reports whether this process may run the AMX kernel: only on
// Linux/amd64, which has the opt-in it needs.
func amxUsable() bool { return false }
