package main

import (
	"sort"

	"github.com/deltactl/deltactl/internal/humanize"
)

// humanBytes formats n with binary units (KiB, MiB, ...).
func humanBytes(n int64) string { return humanize.Bytes(n) }

// sortedKeys returns m's keys in order, for stable output.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
