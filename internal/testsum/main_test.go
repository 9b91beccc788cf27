package main

import (
	"strings"
	"testing"
)

// A stream as `go test -json` writes it: one passing package with a skipped
// and a passing test, one with a failing subtest, and one that does not build.
const stream = `{"Action":"start","Package":"m/a"}
{"Action":"run","Package":"m/a","Test":"TestOK"}
{"Action":"output","Package":"m/a","Test":"TestOK","Output":"=== RUN   TestOK\n"}
{"Action":"output","Package":"m/a","Test":"TestOK","Output":"--- PASS: TestOK (0.00s)\n"}
{"Action":"pass","Package":"m/a","Test":"TestOK","Elapsed":0}
{"Action":"run","Package":"m/a","Test":"TestShared"}
{"Action":"output","Package":"m/a","Test":"TestShared","Output":"    a_test.go:9: SKIP: shared test data missing\n"}
{"Action":"skip","Package":"m/a","Test":"TestShared","Elapsed":0}
{"Action":"output","Package":"m/a","Output":"PASS\n"}
{"Action":"output","Package":"m/a","Output":"ok  \tm/a\t0.01s\n"}
{"Action":"pass","Package":"m/a","Elapsed":0.01}
{"Action":"run","Package":"m/b","Test":"TestT"}
{"Action":"run","Package":"m/b","Test":"TestT/sub"}
{"Action":"output","Package":"m/b","Test":"TestT/sub","Output":"    b_test.go:7: got 2, want 3\n"}
{"Action":"output","Package":"m/b","Test":"TestT","Output":"--- FAIL: TestT (0.00s)\n"}
{"Action":"output","Package":"m/b","Test":"TestT/sub","Output":"    --- FAIL: TestT/sub (0.00s)\n"}
{"Action":"fail","Package":"m/b","Test":"TestT/sub","Elapsed":0}
{"Action":"fail","Package":"m/b","Test":"TestT","Elapsed":0}
{"Action":"output","Package":"m/b","Output":"FAIL\n"}
{"Action":"output","Package":"m/b","Output":"FAIL\tm/b\t0.01s\n"}
{"Action":"fail","Package":"m/b","Elapsed":0.01}
{"ImportPath":"m/c [m/c.test]","Action":"build-output","Output":"c/c.go:3:1: syntax error\n"}
{"ImportPath":"m/c [m/c.test]","Action":"build-fail"}
{"Action":"output","Package":"m/c","Output":"FAIL\tm/c [build failed]\n"}
{"Action":"fail","Package":"m/c","Elapsed":0}
`

func TestSummarize(t *testing.T) {
	var out strings.Builder
	c, err := summarize(strings.NewReader(stream), &out)
	if err != nil {
		t.Fatal(err)
	}
	// TestT and TestT/sub fail, and m/c fails with no test.
	if want := "1 passed, 3 failed, 1 skipped"; c.String() != want {
		t.Errorf("summary %q, want %q", c, want)
	}
	got := out.String()
	for _, want := range []string{"ok  \tm/a\t0.01s\n", "b_test.go:7: got 2, want 3\n", "--- FAIL: TestT (0.00s)\n", "FAIL\tm/b\t0.01s\n", "c/c.go:3:1: syntax error\n", "FAIL\tm/c [build failed]\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	for _, hidden := range []string{"=== RUN", "--- PASS", "SKIP: shared"} {
		if strings.Contains(got, hidden) {
			t.Errorf("output shows %q, which plain go test hides:\n%s", hidden, got)
		}
	}
	if strings.HasPrefix(got, "PASS\n") || strings.Contains(got, "\nPASS\n") {
		t.Errorf("a passing package's PASS line is shown:\n%s", got)
	}
}

func TestSummarizePassesPlainLines(t *testing.T) {
	var out strings.Builder
	c, err := summarize(strings.NewReader("# m/d\nvet: d.go:1: oops\n"), &out)
	if err != nil {
		t.Fatal(err)
	}
	if out.String() != "# m/d\nvet: d.go:1: oops\n" || c != (counts{}) {
		t.Errorf("plain lines: %q, %v", out.String(), c)
	}
}
