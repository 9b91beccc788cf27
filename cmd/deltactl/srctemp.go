package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// srcTempPrefix names the temporary folders that registry refs given as SRC
// are pulled into. The pid in the name lets a later run tell the leftovers of
// a killed process (kill -9 skips every cleanup) from a live run's folders.
const srcTempPrefix = "deltactl-src-"

// newSrcTemp creates this process's temporary folder for a pulled SRC, after
// removing the folders that dead deltactl processes left in the same place.
func newSrcTemp() (string, error) {
	sweepSrcTemps(os.TempDir(), time.Minute)
	return os.MkdirTemp("", fmt.Sprintf("%s%d-", srcTempPrefix, os.Getpid()))
}

// sweepSrcTemps removes dir's deltactl-src-PID-* folders whose process no
// longer exists and that are older than minAge (a pid just reused by a new
// process is not enough to keep a folder, but a folder a live process is
// still filling never looks dead: its pid is alive). Errors are ignored: a
// leftover costs space, never correctness, and the next run tries again.
func sweepSrcTemps(dir string, minAge time.Duration) (removed []string) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	for _, e := range ents {
		pid, ok := srcTempPID(e.Name())
		if !ok || !e.IsDir() || processAlive(pid) {
			continue
		}
		info, err := e.Info()
		if err != nil || time.Since(info.ModTime()) < minAge {
			continue
		}
		p := filepath.Join(dir, e.Name())
		if os.RemoveAll(p) == nil {
			removed = append(removed, p)
		}
	}
	return removed
}

// srcTempPID parses the pid out of a deltactl-src-PID-RANDOM name.
func srcTempPID(name string) (int, bool) {
	rest, ok := strings.CutPrefix(name, srcTempPrefix)
	if !ok {
		return 0, false
	}
	num, _, ok := strings.Cut(rest, "-")
	if !ok {
		return 0, false
	}
	pid, err := strconv.Atoi(num)
	return pid, err == nil && pid > 0
}

// processAlive reports whether pid names a process on this host (EPERM: it
// exists but belongs to someone else, so it is alive too).
func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
