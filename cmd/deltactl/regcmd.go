package main

import (
	"context"
	"errors"

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
	opt.Progress = g.registryProgress()
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
