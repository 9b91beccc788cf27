//go:build linux && amd64 && gc && !purego

package kernels

import (
	"syscall"

	"golang.org/x/sys/cpu"
)

// amxUsable reports whether this process may run the AMX kernel: the CPU
// has AMX-BF16 and Linux granted the process the tile-data state (the
// arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) opt-in every process
// must make; asking again once granted is a cheap no-op, so it is asked on
// every call rather than remembered in a global).
func amxUsable() bool {
	if !cpu.X86.HasAMXTile || !cpu.X86.HasAMXBF16 || !cpu.X86.HasAVX512F {
		return false
	}
	const archReqXcompPerm, xfeatureXTileData = 0x1023, 18
	_, _, errno := syscall.RawSyscall(syscall.SYS_ARCH_PRCTL, archReqXcompPerm, xfeatureXTileData, 0)
	return errno == 0
}
