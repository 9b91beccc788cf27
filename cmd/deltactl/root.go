package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// globals are the flags every command shares, and where output goes.
type globals struct {
	registry string
	json     bool
	quiet    bool
	// timeout bounds the whole command (--timeout); stopTimeout releases
	// its timer.
	timeout     time.Duration
	stopTimeout context.CancelFunc
	// progressEvery is how often progress lines are printed when stderr
	// is not a terminal (0: every 10 s).
	progressEvery time.Duration
	stdout        io.Writer
	stderr        io.Writer
	// cpuProfile is the hidden --cpuprofile file; stopProfile ends it.
	cpuProfile  string
	stopProfile func() error
}

// envRegistry names the registry when --registry is not given.
const envRegistry = "DELTACTL_REGISTRY"

// registryURL resolves --registry, then $DELTACTL_REGISTRY, then the default
// folder under the user's home.
func (g *globals) registryURL() (string, error) {
	if g.registry != "" {
		return g.registry, nil
	}
	if v := os.Getenv(envRegistry); v != "" {
		return v, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("no --registry, no $%s and no home folder: %w", envRegistry, err)
	}
	return filepath.Join(home, ".deltactl", "registry"), nil
}

// printJSON writes v as one indented JSON document on stdout.
func (g *globals) printJSON(v any) error {
	enc := json.NewEncoder(g.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// printf writes human output on stdout unless -q or --json.
func (g *globals) printf(format string, args ...any) {
	if g.quiet || g.json {
		return
	}
	fmt.Fprintf(g.stdout, format, args...)
}

func newRootCmd(g *globals) *cobra.Command {
	root := &cobra.Command{
		Use:   "deltactl",
		Short: "Manage base models and their fine-tuning deltas",
		Long: `deltactl keeps one copy of each base model and, beside it, many small task
deltas (LoRA, bottleneck adapters, exact full fine-tune differences). It reads
safetensors, Hugging Face model folders, PEFT adapter folders and legacy torch
files; stores them in a content-addressed registry on a folder or S3; merges,
unmerges, stacks, reduces and extracts deltas; and trains them on the CPU.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version(),
	}
	root.SetVersionTemplate("deltactl {{.Version}}\n")
	root.SetOut(g.stdout)
	root.SetErr(g.stderr)
	pf := root.PersistentFlags()
	pf.StringVar(&g.registry, "registry", "", "registry URL: a folder, file://PATH or s3://BUCKET[/PREFIX] (env "+envRegistry+")")
	pf.BoolVar(&g.json, "json", false, "print machine-readable JSON on stdout (and a failure as one JSON line on stderr)")
	pf.BoolVarP(&g.quiet, "quiet", "q", false, "print nothing but errors")
	pf.DurationVar(&g.timeout, "timeout", 0, "give up after this long (e.g. 10m), whatever the command is doing; 0: no limit")
	pf.StringVar(&g.cpuProfile, "cpuprofile", "", "write a CPU profile of the command to this file (go tool pprof)")
	_ = pf.MarkHidden("cpuprofile") // a developer's tool: kept out of every help page
	g.stopTimeout = func() {}
	g.stopProfile = func() error { return nil }
	root.PersistentPreRunE = func(cmd *cobra.Command, _ []string) error {
		if g.cpuProfile != "" {
			stop, err := startCPUProfile(g.cpuProfile)
			if err != nil {
				return err
			}
			g.stopProfile = stop
		}
		if g.timeout < 0 {
			return usagef("--timeout %s: must not be negative", g.timeout)
		}
		if g.timeout > 0 {
			ctx, cancel := context.WithTimeout(cmd.Context(), g.timeout)
			cmd.SetContext(ctx)
			g.stopTimeout = cancel
		}
		return nil
	}

	for _, newCmd := range []func(*globals) *cobra.Command{
		// Each command lives in its own file; add new ones here.
		newDemoCmd, newInspectCmd, newConvertCmd, newExportCmd,
		newTrainCmd, newEvalCmd,
		newGenerateCmd,
		newMergeCmd, newUnmergeCmd, newStackCmd, newReduceCmd, newExtractCmd,
		newDiffCmd,
		newPushCmd, newPullCmd, newLsCmd, newShowCmd, newTagCmd, newRmCmd, newDuCmd, newGcCmd, newVerifyCmd, newCopyCmd,
		newInitCmd, newLogCmd, newRollbackCmd, newUnlockCmd,
		newTokenizeCmd,
	} {
		root.AddCommand(newCmd(g))
	}
	root.AddCommand(newVersionCmd(g), &cobra.Command{
		// A help topic: no Run, shown by "deltactl help exit-codes".
		Use:   "exit-codes",
		Short: "What deltactl's exit codes mean (0 ok, 1 failure, 2 usage, 3 check failed, 4 not found, 5 conflict, 6 unreachable)",
		Long:  exitCodesHelp,
	})
	markUsageErrors(root)
	return root
}

// threadsFlag defines --threads the same way in every command: 0, the
// default, means one thread per CPU deltactl may use (GOMAXPROCS).
func threadsFlag(f *pflag.FlagSet, p *int, what string) {
	f.IntVar(p, "threads", 0, what+" (0: all cores)")
}

// threads resolves a --threads value: 0 or less is GOMAXPROCS.
func threads(n int) int {
	if n <= 0 {
		return runtime.GOMAXPROCS(0)
	}
	return n
}
