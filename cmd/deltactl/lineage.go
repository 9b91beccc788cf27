package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/opencontainers/go-digest"

	"github.com/deltactl/deltactl/format/hf"
	"github.com/deltactl/deltactl/format/peft"
	"github.com/deltactl/deltactl/format/safetensors"
	"github.com/deltactl/deltactl/registry"
)

// recordedBase is the manifest digest of the base a delta was made from: the
// registry's record for a delta ref, else the digest pinned in its
// adapter_config.json's base_model_name_or_path (deltactl train writes
// "NAME:TAG@sha256:..." there). "" when the delta records none.
func recordedBase(delta *source) (digest.Digest, error) {
	if delta.Base != "" {
		return delta.Base, nil
	}
	b, err := os.ReadFile(filepath.Join(delta.Path, peft.ConfigFile))
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	cfg, err := peft.ParseConfig(b)
	if err != nil {
		return "", fmt.Errorf("delta %s: %w", delta.Arg, err)
	}
	return pinnedDigest(cfg.BaseModelNameOrPath), nil
}

// pinnedDigest is the digest of a "REF@sha256:..." string, or "".
func pinnedDigest(s string) digest.Digest {
	_, d, ok := strings.Cut(s, "@")
	if !ok {
		return ""
	}
	dg, err := digest.Parse(d)
	if err != nil {
		return ""
	}
	return dg
}

// checkLineage refuses a delta whose recorded base is not base, when both
// are known, unless allow. A base given as a local folder has no digest to
// compare with.
func checkLineage(base, delta *source, allow bool) error {
	if allow || base.Digest == "" {
		return nil
	}
	rec, err := recordedBase(delta)
	if err != nil || rec == "" || rec == base.Digest {
		return err
	}
	return fmt.Errorf("delta %s was made from base %s, not from %s (%s): %w; pass --allow-base-mismatch to use it anyway",
		delta.Arg, rec, base.Arg, base.Digest, registry.ErrBaseMismatch)
}

// mergedFrom is the base digest a merged model folder records (mergeMetaKey
// in its first shard's metadata), or "" when it records none.
func mergedFrom(dir string) (digest.Digest, error) {
	shard := filepath.Join(dir, hf.SingleName)
	if b, err := os.ReadFile(filepath.Join(dir, hf.IndexName)); err == nil {
		idx, err := hf.ParseIndex(b, hf.IndexName)
		if err != nil {
			return "", err
		}
		if s := idx.Shards(); len(s) > 0 {
			shard = filepath.Join(dir, s[0])
		}
	}
	f, err := safetensors.Open(shard)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	defer func() { _ = f.Close() }() // read-only: closing loses nothing
	raw, ok := f.Metadata()[mergeMetaKey]
	if !ok {
		return "", nil
	}
	var rec mergeRecord
	if err := json.Unmarshal([]byte(raw), &rec); err != nil {
		return "", fmt.Errorf("%s: metadata %s: %w", shard, mergeMetaKey, err)
	}
	return rec.BaseDigest, nil
}
