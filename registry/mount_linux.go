//go:build linux

package registry

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// isMountPoint reports whether dir is a mount point: its device differs
// from its parent's, or (a bind mount of the same filesystem keeps the
// device) the mount table lists it. A rename onto a mount point fails with
// EBUSY, and one from another filesystem with EXDEV.
func isMountPoint(dir string) bool {
	var st, pst syscall.Stat_t
	if syscall.Stat(dir, &st) != nil || syscall.Stat(filepath.Dir(dir), &pst) != nil {
		return false
	}
	if st.Dev != pst.Dev {
		return true
	}
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return false
	}
	defer func() { _ = f.Close() }() // read only
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// Field 5 is the mount point, with space, tab, newline and
		// backslash written as octal escapes.
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 && unescapeMount(fields[4]) == dir {
			return true
		}
	}
	return false
}

func unescapeMount(s string) string {
	return strings.NewReplacer(`\040`, " ", `\011`, "\t", `\012`, "\n", `\134`, `\`).Replace(s)
}
