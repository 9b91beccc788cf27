package main

import (
	"fmt"
	"os"
	"sync"
	"time"

	"golang.org/x/term"

	"github.com/deltactl/deltactl/registry"
	"github.com/deltactl/deltactl/train"
)

// progressMode is how long work reports itself on stderr.
type progressMode int

const (
	progressOff   progressMode = iota // -q or --json
	progressTTY                       // a redrawn status line on a terminal
	progressPlain                     // a plain line every ~10 s, for CI logs
)

// defaultProgressEvery is the interval of plain progress lines.
const defaultProgressEvery = 10 * time.Second

// progress says how to report progress: off under -q or --json (stdout is
// then the only output a script reads, and stderr only its error line), a
// status line on a terminal, and otherwise plain lines a log keeps.
func (g *globals) progress() progressMode {
	if g.quiet || g.json {
		return progressOff
	}
	if f, ok := g.stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		return progressTTY
	}
	return progressPlain
}

// progressOn reports whether a terminal status line should be drawn.
func (g *globals) progressOn() bool { return g.progress() == progressTTY }

func (g *globals) every() time.Duration {
	if g.progressEvery > 0 {
		return g.progressEvery
	}
	return defaultProgressEvery
}

// registryProgress is the registry's progress callback for g's mode.
func (g *globals) registryProgress() func(registry.Progress) {
	switch g.progress() {
	case progressTTY:
		return newProgressBar(g).update
	case progressPlain:
		return newProgressLog(g).update
	}
	return nil
}

// trainProgressFunc is train's progress callback for g's mode.
func (g *globals) trainProgressFunc() func(train.Progress) {
	switch g.progress() {
	case progressTTY:
		return trainProgress(g)
	case progressPlain:
		return trainProgressLog(g)
	}
	return nil
}

// progressBar draws "stage  42%  1.2 GiB / 2.9 GiB" on stderr, at most ten
// times a second, and ends the line when a stage completes.
type progressBar struct {
	g    *globals
	mu   sync.Mutex
	last time.Time
}

func newProgressBar(g *globals) *progressBar { return &progressBar{g: g} }

func (p *progressBar) update(pr registry.Progress) {
	p.mu.Lock()
	defer p.mu.Unlock()
	done := pr.Total > 0 && pr.Done >= pr.Total
	if !done && time.Since(p.last) < 100*time.Millisecond {
		return
	}
	p.last = time.Now()
	pct := 100.0
	if pr.Total > 0 {
		pct = 100 * float64(pr.Done) / float64(pr.Total)
	}
	fmt.Fprintf(p.g.stderr, "\r%-8v %5.1f%%  %s / %s   ", pr.Stage, pct, humanBytes(pr.Done), humanBytes(pr.Total))
	if done {
		fmt.Fprintln(p.g.stderr)
	}
}

// progressLog prints "push: 1.2 GiB / 2.9 GiB (41%), 85 MiB/s" on its own
// line once per interval of each stage, and once when a stage completes
// (if it took longer than an interval).
type progressLog struct {
	g     *globals
	mu    sync.Mutex
	stage string
	start time.Time
	last  time.Time
}

func newProgressLog(g *globals) *progressLog { return &progressLog{g: g} }

func (p *progressLog) update(pr registry.Progress) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	if stage := fmt.Sprint(pr.Stage); stage != p.stage {
		p.stage, p.start, p.last = stage, now, now
	}
	done := pr.Total > 0 && pr.Done >= pr.Total
	if now.Sub(p.last) < p.g.every() && !(done && now.Sub(p.start) >= p.g.every()) {
		return
	}
	p.last = now
	pct := 100.0
	if pr.Total > 0 {
		pct = 100 * float64(pr.Done) / float64(pr.Total)
	}
	rate := float64(pr.Done) / max(now.Sub(p.start).Seconds(), 1e-3)
	fmt.Fprintf(p.g.stderr, "%s: %s / %s (%.0f%%), %s/s\n", p.stage, humanBytes(pr.Done), humanBytes(pr.Total), pct, humanBytes(int64(rate)))
	if done {
		p.stage = "" // a later stage of the same name starts afresh
	}
}

// trainProgress draws one status line per step on stderr.
func trainProgress(g *globals) func(train.Progress) {
	first := true
	return func(p train.Progress) {
		if first {
			fmt.Fprintf(g.stderr, "memory: %s\n", p.Memory)
			first = false
		}
		ev := ""
		if p.EvalLoss == p.EvalLoss { // not NaN: an evaluation just ran
			ev = fmt.Sprintf(" eval %.4f", p.EvalLoss)
		}
		fmt.Fprintf(g.stderr, "\rstep %d/%d  loss %.4f%s  lr %.2e  %.0f tok/s   ", p.Step, p.Steps, p.Loss, ev, p.LR, p.TokensPerSec)
		if p.Step == p.Steps {
			fmt.Fprintln(g.stderr)
		}
	}
}

// trainProgressLog prints "train: step 120/2000  loss 2.3141  812 tok/s
// ETA 7m40s" once per interval, and for the last step if the run took
// longer than one.
func trainProgressLog(g *globals) func(train.Progress) {
	start := time.Now()
	last := start
	first := -1
	return func(p train.Progress) {
		now := time.Now()
		if first < 0 {
			first = p.Step - 1 // a resumed run starts past step 1
			fmt.Fprintf(g.stderr, "train: memory: %s\n", p.Memory)
		}
		final := p.Step == p.Steps && now.Sub(start) >= g.every()
		if now.Sub(last) < g.every() && !final {
			return
		}
		last = now
		eta := "-"
		if n := p.Step - first; n > 0 {
			per := now.Sub(start) / time.Duration(n)
			eta = (per * time.Duration(p.Steps-p.Step)).Round(time.Second).String()
		}
		ev := ""
		if p.EvalLoss == p.EvalLoss {
			ev = fmt.Sprintf("  eval %.4f", p.EvalLoss)
		}
		fmt.Fprintf(g.stderr, "train: step %d/%d  loss %.4f%s  %.0f tok/s  ETA %s\n", p.Step, p.Steps, p.Loss, ev, p.TokensPerSec, eta)
	}
}
