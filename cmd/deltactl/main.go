// Command deltactl manages base models and their task deltas: inspect and
// convert weight files, push and pull them through a content-addressed
// registry, merge, unmerge, stack, reduce and extract deltas, and train them.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"syscall"
)

func main() {
	// SIGTERM (timeout, systemd, Kubernetes) ends a command like Ctrl-C:
	// the context is cancelled, so registry locks are released on the way out.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:])
	stop()
	os.Exit(code)
}

// run executes deltactl with args and returns the process exit code.
func run(ctx context.Context, args []string) int {
	g := &globals{stdout: os.Stdout, stderr: os.Stderr}
	root := newRootCmd(g)
	root.SetArgs(args)
	cmd, err := root.ExecuteContextC(ctx)
	g.stopTimeout()
	if perr := g.stopProfile(); err == nil {
		err = perr
	}
	if err == nil {
		return exitOK
	}
	if g.timeout > 0 && errors.Is(err, context.DeadlineExceeded) {
		err = fmt.Errorf("timed out after %s (--timeout): %w", g.timeout, err)
	}
	if cmd.RunE == nil && !isUsage(err) {
		// Only a command with a RunE has failures of its own. An error
		// from any other is cobra rejecting the command line outside the
		// checks markUsageErrors wraps: the root's lookup of a word that
		// names no command, or a missing argument of the hidden
		// __complete command cobra adds only while executing.
		err = usageError{err}
	}
	code, name := exitCode(err)
	// A command line refused before --json was parsed still asked for JSON.
	if g.json || slices.Contains(args, "--json") {
		writeJSONError(g.stderr, code, name, err)
	} else {
		fmt.Fprintf(g.stderr, "deltactl: %v\n", err)
	}
	return code
}
