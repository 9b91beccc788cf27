package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPushFlagErrors: the registry names PushOptions fields in its errors;
// push tells the user about its flags instead.
func TestPushFlagErrors(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	R := "--registry=" + t.TempDir()
	plain, adapter := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(plain, "notes.txt"), []byte("hi"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(adapter, "adapter_config.json"), []byte(`{"peft_type":"LORA"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	cliJSON(t, 0, nil, "push", R, "plain:v1", plain)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"push", R, "--full", "x:v1", plain}, "--full needs --base REF"},
		{[]string{"push", R, "--base", "plain:v1", "x:v1", plain}, "has no adapter_config.json; pass --full"},
		{[]string{"push", R, "x:v1", adapter}, "pass --base REF naming the model it adapts"},
	} {
		code, _, stderr := cliRun(t, c.args...)
		if code != 1 || !strings.Contains(stderr, c.want) || strings.Contains(stderr, "PushOptions") {
			t.Errorf("deltactl %v: exit %d, stderr %q; want exit 1 and %q", c.args, code, stderr, c.want)
		}
	}
}
