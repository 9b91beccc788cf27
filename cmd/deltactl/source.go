package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/opencontainers/go-digest"

	"github.com/deltactl/deltactl/format"
	"github.com/deltactl/deltactl/format/peft"
	"github.com/deltactl/deltactl/merge"
	"github.com/deltactl/deltactl/registry"
)

// source is a command-line SRC made local.
type source struct {
	// Arg is SRC as given; Path the local file or folder.
	Arg, Path string
	// Ref is the registry ref SRC named ("" for a local path), Digest its
	// manifest digest and Base, for a delta, its base's manifest digest.
	Ref          string
	Digest, Base digest.Digest
}

// Pinned names a registry source by its ref and digest ("NAME:TAG@DIGEST"),
// and a local one by its path: what a trained delta records as its base, so
// that it never records a temporary folder.
func (s *source) Pinned() string {
	if s.Ref == "" {
		return s.Arg
	}
	if strings.Contains(s.Ref, "@") {
		return s.Ref
	}
	return s.Ref + "@" + s.Digest.String()
}

// resolveSource turns a command-line SRC into a local path. An existing file
// or folder is used as it is; anything else must be a registry ref, which is
// pulled (every digest verified) into a temporary folder that cleanup removes.
func resolveSource(ctx context.Context, g *globals, src string) (localPath string, cleanup func(), err error) {
	s, cleanup, err := resolveSrc(ctx, g, src)
	if err != nil {
		return "", nil, err
	}
	return s.Path, cleanup, nil
}

// resolveSrc is resolveSource that also says what a ref resolved to.
func resolveSrc(ctx context.Context, g *globals, src string) (*source, func(), error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	if _, err := os.Stat(src); err == nil {
		return &source{Arg: src, Path: src}, func() {}, nil
	}
	if _, err := registry.ParseRef(src); err != nil {
		return nil, nil, reworded{msg: src + ": no such file or folder, and not a registry ref", err: fs.ErrNotExist}
	}
	return pullSource(ctx, g, src)
}

// pullSource pulls the registry ref src into a new temporary folder.
func pullSource(ctx context.Context, g *globals, src string) (*source, func(), error) {
	tmp, err := newSrcTemp()
	if err != nil {
		return nil, nil, err
	}
	// Best effort: a leftover temporary folder costs space, not correctness.
	cleanup := func() { _ = os.RemoveAll(tmp) }
	s := &source{Arg: src, Path: filepath.Join(tmp, "src"), Ref: src}
	err = g.withRegistry(ctx, func(reg *registry.Registry) error {
		res, err := reg.Pull(ctx, src, s.Path)
		if errors.Is(err, registry.ErrNotFound) {
			return fmt.Errorf("%s: no such file or folder, and not in the registry at %s: %w", src, reg.Location(), err)
		}
		if err == nil {
			s.Digest, s.Base = res.Digest, res.Base
		}
		return err
	})
	if err != nil {
		cleanup()
		return nil, nil, err
	}
	return s, cleanup, nil
}

// loadInputs resolves and loads every --delta with its --weight (all 1 when
// no weight is given; otherwise one weight per delta).
func loadInputs(ctx context.Context, g *globals, srcs []string, weights []float64) ([]merge.Input, func(), error) {
	in, _, done, err := loadInputSources(ctx, g, srcs, weights)
	return in, done, err
}

// loadInputSources is loadInputs that also says where each delta came from.
func loadInputSources(ctx context.Context, g *globals, srcs []string, weights []float64) ([]merge.Input, []*source, func(), error) {
	if len(srcs) == 0 {
		return nil, nil, nil, usagef("need at least one --delta")
	}
	if len(weights) != 0 && len(weights) != len(srcs) {
		return nil, nil, nil, usagef("%d --weight values for %d --delta sources: give one per delta or none", len(weights), len(srcs))
	}
	var cleanups []func()
	done := func() {
		for _, c := range cleanups {
			c()
		}
	}
	var in []merge.Input
	var sources []*source
	for i, src := range srcs {
		sc, cleanup, err := resolveSrc(ctx, g, src)
		if err != nil {
			done()
			return nil, nil, nil, err
		}
		cleanups = append(cleanups, cleanup)
		sources = append(sources, sc)
		a, err := peft.Load(sc.Path)
		if err != nil {
			done()
			return nil, nil, nil, fmt.Errorf("delta %s: %w", src, err)
		}
		// The delta's tensors alias the adapter's memory map: close it
		// only when the command is done with them.
		cleanups = append(cleanups, func() { _ = a.Close() }) // a read-only mapping: unmapping loses nothing
		d, err := a.Delta()
		if err != nil {
			done()
			return nil, nil, nil, fmt.Errorf("delta %s: %w", src, err)
		}
		w := 1.0
		if len(weights) > 0 {
			w = weights[i]
		}
		in = append(in, merge.Input{Name: src, Delta: d, Weight: w})
	}
	return in, sources, done, nil
}

// openModel resolves and opens a model SRC.
func openModel(ctx context.Context, g *globals, src string) (*merge.Folder, func(), error) {
	m, _, done, err := openModelSource(ctx, g, src)
	return m, done, err
}

// openModelSource is openModel that also says where the model came from.
func openModelSource(ctx context.Context, g *globals, src string) (*merge.Folder, *source, func(), error) {
	sc, cleanup, err := resolveSrc(ctx, g, src)
	if err != nil {
		return nil, nil, nil, err
	}
	m, err := merge.OpenFolder(sc.Path)
	if err != nil {
		cleanup()
		return nil, nil, nil, err
	}
	return m, sc, func() {
		_ = m.Close() // read-only mappings: unmapping loses nothing
		cleanup()
	}, nil
}

// printModules prints per-module reports of stack, reduce and extract.
func printModules(g *globals, reps []merge.ModuleReport) {
	for _, r := range reps {
		if r.Note != "" {
			g.printf("  %-50s %s\n", r.Target, r.Note)
			continue
		}
		g.printf("  %-50s rank %4d -> %-4d rel.err %.3e  kept energy %.6f\n", r.Target, r.FromRank, r.Rank, r.RelErr, r.Energy)
	}
}

// writePEFTDelta writes d as a PEFT adapter folder (peft.FromDelta: lora_alpha
// = r per module with the scale folded into B, rank_pattern/alpha_pattern
// where ranks differ), atomically, as adapter_model.safetensors. base
// becomes base_model_name_or_path.
func writePEFTDelta(ctx context.Context, dir string, d *format.Delta, base string) error {
	cfg, tensors, err := peft.FromDelta(d, base)
	if err != nil {
		return err
	}
	return peft.Write(ctx, dir, cfg, tensors, true)
}
