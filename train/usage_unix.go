//go:build unix

package train

import (
	"bufio"
	"bytes"
	"os"
	"strconv"
	"syscall"
	"time"
)

// procUsage reports the process's peak resident set size in bytes and the
// CPU time it has used (user + system), or zeros when unknown.
func procUsage() (peakRSS int64, cpu time.Duration) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, 0
	}
	cpu = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	// ru_maxrss is in KiB on Linux (bytes on macOS); VmHWM says the same
	// where /proc exists, in a unit it names.
	if v := procStatusKiB("VmHWM:"); v > 0 {
		return v << 10, cpu
	}
	return int64(ru.Maxrss) << 10, cpu
}

// machineMemory is the machine's physical memory in bytes (MemTotal of
// /proc/meminfo), or 0 when unknown.
func machineMemory() int64 {
	return fileKiB("/proc/meminfo", "MemTotal:") << 10
}

// procStatusKiB reads a "Key: N kB" line of /proc/self/status.
func procStatusKiB(key string) int64 { return fileKiB("/proc/self/status", key) }

// fileKiB reads the value of a "key N kB" line of a /proc file (0 if absent).
func fileKiB(path, key string) int64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := bytes.Fields(sc.Bytes())
		if len(f) >= 2 && string(f[0]) == key {
			v, err := strconv.ParseInt(string(f[1]), 10, 64)
			if err != nil {
				return 0
			}
			return v
		}
	}
	return 0
}
