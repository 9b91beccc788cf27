package main

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// Usage errors are recognised by type, through any wrapping, never by
// their wording.
func TestIsUsage(t *testing.T) {
	u := usagef("train: --seed must not be negative")
	for _, c := range []struct {
		err  error
		want bool
	}{
		{u, true},
		{fmt.Errorf("context: %w", u), true},
		{errors.Join(errors.New("other"), u), true},
		{errors.New("unknown command \"x\" for \"deltactl\""), false},
		{errors.New("requires at least 1 arg(s), only received 0"), false},
	} {
		if got := isUsage(c.err); got != c.want {
			t.Errorf("isUsage(%q) = %v, want %v", c.err, got, c.want)
		}
	}
}

// Each way cobra rejects a command line exits 2; a command's own failure
// exits 1 even when its message reads like one of cobra's.
func TestUsageExitCodes(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "unknown command")
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"no-such-command"}, exitUsage, "unknown command"},
		{[]string{"no-such-command", "--help"}, exitUsage, "unknown command"},
		{[]string{"--bogus"}, exitUsage, "unknown flag"},
		{[]string{"--registry"}, exitUsage, "flag needs an argument"},
		{[]string{"ls", "-z"}, exitUsage, "unknown shorthand"},
		{[]string{"inspect"}, exitUsage, "accepts 1 arg(s)"},
		{[]string{"copy"}, exitUsage, "requires at least 1 arg(s)"},
		{[]string{"ls", "a", "b"}, exitUsage, "accepts at most 1 arg(s)"},
		{[]string{"du", "extra"}, exitUsage, `unknown command "extra"`},
		{[]string{"train", "--steps", "many"}, exitUsage, "invalid argument"},
		{[]string{"completion", "bash", "extra"}, exitUsage, `unknown command "extra"`},
		{[]string{"__complete"}, exitUsage, "requires at least 1 arg(s)"},
		{[]string{"inspect", missing}, exitNotFound, "unknown command"},
	} {
		code, _, stderr := cliRun(t, c.args...)
		if code != c.code || !strings.Contains(stderr, c.want) {
			t.Errorf("deltactl %s: exit %d, stderr %q; want exit %d mentioning %q", strings.Join(c.args, " "), code, stderr, c.code, c.want)
		}
	}
	for _, args := range [][]string{nil, {"--help"}, {"help", "train"}, {"completion", "bash"}} {
		if code, _, stderr := cliRun(t, args...); code != exitOK {
			t.Errorf("deltactl %s: exit %d (%s), want 0", strings.Join(args, " "), code, stderr)
		}
	}
}
