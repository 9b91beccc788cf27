package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"
)

// usageError marks an error caused by how deltactl was called: a missing or
// malformed flag or argument, an unknown command. run exits 2 for it (and 1
// for any other error); it is found with errors.As, so it may be wrapped.
type usageError struct{ err error }

var _ error = usageError{}

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// usagef is fmt.Errorf for usage errors.
func usagef(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

// isUsage reports whether err, or an error it wraps, is a usage error.
func isUsage(err error) bool {
	var ue usageError
	return errors.As(err, &ue)
}

// usageArgs makes the errors of a positional-argument check usage errors.
func usageArgs(check cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := check(cmd, args); err != nil {
			return usageError{err}
		}
		return nil
	}
}

// markUsageErrors makes cobra report every malformed command line under
// root as a usageError: flag parsing errors through the flag error function
// (which subcommands inherit), positional-argument errors by wrapping each
// command's Args check. It adds cobra's help and completion commands first,
// which cobra would otherwise add only when executing, so that theirs are
// wrapped too. The errors cobra raises outside these checks (an unknown
// command) come from commands without a RunE; run marks those.
func markUsageErrors(root *cobra.Command) {
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	var walk func(*cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Args != nil {
			c.Args = usageArgs(c.Args)
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
}
