package registry

import (
	"errors"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// process identifies this process for its locks.
type process struct {
	bootID string
	start  uint64
}

var thisProcess = sync.OnceValue(func() process {
	b, _ := os.ReadFile("/proc/sys/kernel/random/boot_id") // empty when unreadable: dead-holder detection is then off
	start, _ := procStart(os.Getpid())
	return process{bootID: strings.TrimSpace(string(b)), start: start}
})

// processAlive reports whether pid runs, and its start time when readable.
func processAlive(pid int) (bool, uint64) {
	err := syscall.Kill(pid, 0)
	if errors.Is(err, syscall.ESRCH) {
		return false, 0
	}
	// nil or EPERM (another user's process): it exists.
	start, ok := procStart(pid)
	if !ok {
		return true, 0
	}
	return true, start
}

// procStart reads a process's start time (clock ticks since boot, field 22
// of /proc/PID/stat).
func procStart(pid int) (uint64, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false
	}
	// The command name (field 2) is in parentheses and may hold spaces.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state), so field 22 is f[19].
	if len(f) < 20 {
		return 0, false
	}
	v, err := strconv.ParseUint(f[19], 10, 64)
	return v, err == nil
}
