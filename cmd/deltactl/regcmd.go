package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"

	"github.com/deltactl/deltactl/registry"
)

// openRegistry opens the registry named by --registry / $DELTACTL_REGISTRY,
// with a progress bar on stderr when it is a terminal.
func (g *globals) openRegistry(ctx context.Context) (*registry.Registry, error) {
	url, err := g.registryURL()
	if err != nil {
		return nil, err
	}
	return registry.Open(ctx, url, g.registryOptions())
}

// envWho names who moves refs in the ref log (default user@host), e.g. a CI
// job: DELTACTL_WHO="ci/$GITHUB_REPOSITORY#$GITHUB_RUN_ID".
const envWho = "DELTACTL_WHO"

// registryOptions are the Options every command opens a registry with:
// a progress bar on a terminal, notices (lock waits, retries) on stderr
// unless -q.
func (g *globals) registryOptions() registry.Options {
	opt := registry.Options{Who: os.Getenv(envWho)}
	opt.Progress = g.registryProgress()
	if !g.quiet {
		var mu sync.Mutex
		opt.Notify = func(msg string) {
			mu.Lock()
			defer mu.Unlock()
			fmt.Fprintf(g.stderr, "deltactl: %s\n", msg)
		}
	}
	return opt
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
