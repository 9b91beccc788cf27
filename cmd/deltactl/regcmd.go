package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/deltactl/deltactl/registry"
)

// openRegistry opens the registry named by --registry / $DELTACTL_REGISTRY,
// with a progress bar on stderr when it is a terminal.
func (g *globals) openRegistry(ctx context.Context) (*registry.Registry, error) {
	url, err := g.registryURL()
	if err != nil {
		return nil, err
	}
	opt := registry.Options{}
	if g.progressOn() {
		opt.Progress = newProgressBar(g).update
	}
	return registry.Open(ctx, url, opt)
}

// withRegistry opens the registry, runs fn on it and closes it, reporting
// the first error of fn and Close.
func (g *globals) withRegistry(ctx context.Context, fn func(*registry.Registry) error) error {
	r, err := g.openRegistry(ctx)
	if err != nil {
		return err
	}
	return errors.Join(fn(r), r.Close())
}

// refErr turns a malformed reference into a usage error (exit 2).
func refErr(err error) error {
	if errors.Is(err, registry.ErrBadRef) {
		return usageError{err}
	}
	return err
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
	fmt.Fprintf(p.g.stderr, "\r%-8s %5.1f%%  %s / %s   ", pr.Stage, pct, humanBytes(pr.Done), humanBytes(pr.Total))
	if done {
		fmt.Fprintln(p.g.stderr)
	}
}
