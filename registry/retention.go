package registry

import (
	"context"
	"errors"
	"fmt"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/deltactl/deltactl/registry/store"
)

// ErrBadPattern is returned (wrapped, naming the pattern) for a Retention
// pattern that is not NAME:GLOB.
var ErrBadPattern = errors.New("invalid ref pattern")

// Retention removes old tags before a gc collects (GCOptions.Retention).
type Retention struct {
	// KeepLast is how many of each name's matching tags survive: the
	// newest by the time the tag last moved (0 removes them all). Tags that
	// moved in the same second (S3 keeps whole seconds) are ordered by
	// name, numbers by value: ci-10 is newer than ci-9.
	KeepLast int
	// Match selects tags: NAME:GLOB patterns, e.g. "task:build-*" or
	// "*:pr-*" ('*' and '?' as in path.Match; in the name part '*' also
	// spans '/'). A pattern without ':' matches every tag of the names it
	// matches. At least one is required.
	Match []string
	// Protect names tags that are never removed, e.g. "*:prod"; they do
	// not count towards KeepLast either.
	Protect []string
}

// refPattern is one parsed NAME:GLOB.
type refPattern struct{ name, tag string }

func parsePatterns(pats []string) ([]refPattern, error) {
	out := make([]refPattern, 0, len(pats))
	for _, p := range pats {
		name, tag := p, "*"
		if i := strings.LastIndexByte(p, ':'); i >= 0 {
			name, tag = p[:i], p[i+1:]
		}
		if name == "" || tag == "" {
			return nil, fmt.Errorf("%w %q: want NAME:GLOB, e.g. 'team/model:build-*'", ErrBadPattern, p)
		}
		rp := refPattern{name: strings.ReplaceAll(name, "/", "|"), tag: tag}
		if _, err := path.Match(rp.name, ""); err != nil {
			return nil, fmt.Errorf("%w %q: %v", ErrBadPattern, p, err)
		}
		if _, err := path.Match(rp.tag, ""); err != nil {
			return nil, fmt.Errorf("%w %q: %v", ErrBadPattern, p, err)
		}
		out = append(out, rp)
	}
	return out, nil
}

func matchAny(pats []refPattern, ref Ref) bool {
	name := strings.ReplaceAll(ref.Name, "/", "|")
	for _, p := range pats {
		nok, _ := path.Match(p.name, name) // patterns were checked by parsePatterns
		tok, _ := path.Match(p.tag, ref.Tag)
		if nok && tok {
			return true
		}
	}
	return false
}

// retained returns the tags the retention policy removes, sorted.
func (r *Registry) retained(ctx context.Context, ret *Retention) ([]Ref, error) {
	if len(ret.Match) == 0 {
		return nil, fmt.Errorf("retention: %w: no --match pattern (refusing to apply keep-last to every tag)", ErrBadPattern)
	}
	if ret.KeepLast < 0 {
		return nil, fmt.Errorf("retention: keep-last %d: must not be negative", ret.KeepLast)
	}
	match, err := parsePatterns(ret.Match)
	if err != nil {
		return nil, err
	}
	protect, err := parsePatterns(ret.Protect)
	if err != nil {
		return nil, err
	}
	type cand struct {
		ref     Ref
		updated time.Time
	}
	byName := map[string][]cand{}
	if err := r.b.List(ctx, refPrefix, func(i store.Info) error {
		ref, ok := refFromKey(i.Key)
		if ok && matchAny(match, ref) && !matchAny(protect, ref) {
			byName[ref.Name] = append(byName[ref.Name], cand{ref, i.ModTime})
		}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("retention: list refs: %w", err)
	}
	var out []Ref
	for _, cs := range byName {
		sort.Slice(cs, func(i, j int) bool {
			if !cs[i].updated.Equal(cs[j].updated) {
				return cs[i].updated.After(cs[j].updated)
			}
			return naturalLess(cs[j].ref.Tag, cs[i].ref.Tag)
		})
		for _, c := range cs[min(ret.KeepLast, len(cs)):] {
			out = append(out, c.ref)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out, nil
}

// naturalLess orders strings with runs of digits compared by value
// ("ci-9" < "ci-10").
func naturalLess(a, b string) bool {
	for a != "" && b != "" {
		da, db := digitRun(a), digitRun(b)
		if da > 0 && db > 0 {
			na, nb := strings.TrimLeft(a[:da], "0"), strings.TrimLeft(b[:db], "0")
			if len(na) != len(nb) {
				return len(na) < len(nb)
			}
			if na != nb {
				return na < nb
			}
			a, b = a[da:], b[db:]
			continue
		}
		if a[0] != b[0] {
			return a[0] < b[0]
		}
		a, b = a[1:], b[1:]
	}
	return len(a) < len(b)
}

// digitRun is the length of the run of ASCII digits s starts with.
func digitRun(s string) int {
	n := 0
	for n < len(s) && s[n] >= '0' && s[n] <= '9' {
		n++
	}
	return n
}
