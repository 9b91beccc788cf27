// Package testutil helps tests find the shared external test data that sits
// beside the repository (../shared/data) and the repository's own testdata.
package testutil

import (
	"os"
	"path/filepath"
	"testing"
)

// Root returns the repository root (the folder holding go.mod).
func Root(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("testutil: no go.mod above the test's folder")
		}
		dir = parent
	}
}

// SharedData returns the path of rel under ../shared/data beside the
// repository, or under $DELTACTL_SHARED_DATA when set. A bare clone has no
// ../shared: the test is then skipped with a message naming the missing path
// (the skip is what `make test`'s summary counts). Under CI=true a missing
// file fails the test instead: CI always has shared/, and a silently skipped
// test there proves nothing.
func SharedData(t testing.TB, rel string) string {
	t.Helper()
	base := os.Getenv("DELTACTL_SHARED_DATA")
	if base == "" {
		base = filepath.Join(Root(t), "..", "shared", "data")
	}
	p := filepath.Join(base, filepath.FromSlash(rel))
	if _, err := os.Stat(p); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("shared test data (required under CI=true): %v", err)
		}
		t.Skipf("SKIP: shared test data missing: %s (clone beside ../shared to run this test)", p)
	}
	return p
}

// Testdata returns the path of rel under the repository's testdata folder.
func Testdata(t testing.TB, rel string) string {
	t.Helper()
	return filepath.Join(Root(t), "testdata", filepath.FromSlash(rel))
}
