// Command testsum reads `go test -json` on stdin, prints what `go test`
// without -json would print (package result lines, and the output of failing
// tests), and ends with one line "N passed, N failed, N skipped" counting
// every test and subtest. A package that fails with no failing test (a build
// error, a panic outside a test, a timeout) counts as one failure. It exits 1
// if anything failed; `make test` pipes into it with pipefail, so go test's
// own status is kept too.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
)

// event is one line of `go test -json` (cmd/test2json).
type event struct {
	Action     string
	Package    string
	ImportPath string // build-output, build-fail
	Test       string
	Output     string
}

// counts is what the summary line reports.
type counts struct{ passed, failed, skipped int }

func (c counts) String() string {
	return fmt.Sprintf("%d passed, %d failed, %d skipped", c.passed, c.failed, c.skipped)
}

func main() {
	c, err := summarize(os.Stdin, os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "testsum:", err)
		os.Exit(2)
	}
	fmt.Println(c)
	if c.failed > 0 {
		os.Exit(1)
	}
}

// summarize copies the normal output of the events read from r to w and
// counts the results.
func summarize(r io.Reader, w io.Writer) (counts, error) {
	var c counts
	held := map[string]*strings.Builder{} // output of running tests, by package and test
	failedTests := map[string]bool{}      // packages with a failed test
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var e event
		if err := json.Unmarshal(line, &e); err != nil || e.Action == "" {
			// Not an event (go vet or the go command writing plainly): pass it on.
			fmt.Fprintf(w, "%s\n", line)
			continue
		}
		key := e.Package + "\x00" + e.Test
		switch {
		case e.Action == "build-output":
			fmt.Fprint(w, e.Output)
		case e.Test == "" && e.Action == "output":
			if e.Output != "PASS\n" { // go test prints only the "ok" line of a passing package
				fmt.Fprint(w, e.Output)
			}
		case e.Test == "" && e.Action == "fail":
			if !failedTests[e.Package] {
				c.failed++
			}
		case e.Action == "output":
			if isProgress(e.Output) {
				continue
			}
			b := held[key]
			if b == nil {
				b = &strings.Builder{}
				held[key] = b
			}
			b.WriteString(e.Output)
		case e.Test != "" && (e.Action == "pass" || e.Action == "skip" || e.Action == "fail"):
			switch e.Action {
			case "pass":
				c.passed++
			case "skip":
				c.skipped++
			case "fail":
				c.failed++
				failedTests[e.Package] = true
				if b := held[key]; b != nil {
					fmt.Fprint(w, b.String())
				}
			}
			delete(held, key)
		}
	}
	return c, sc.Err()
}

// isProgress reports the lines -v adds that plain go test does not print.
func isProgress(s string) bool {
	t := strings.TrimLeft(s, " ")
	for _, p := range []string{"=== RUN", "=== PAUSE", "=== CONT", "=== NAME"} {
		if strings.HasPrefix(t, p) {
			return true
		}
	}
	return false
}
