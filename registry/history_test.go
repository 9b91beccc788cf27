package registry

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/deltactl/deltactl/registry/store"
	"github.com/deltactl/deltactl/registry/store/storetest"
	"github.com/opencontainers/go-digest"
)

// pushN pushes n small distinct models as name:v1..vn and returns their digests.
func pushN(t *testing.T, r *Registry, name string, n int) []digest.Digest {
	t.Helper()
	var out []digest.Digest
	for i := range n {
		res, err := r.Push(bg, name+":v"+itoa(i+1), oneTensorModel(t, 8, 8, uint64(100+i)), PushOptions{})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, res.Digest)
	}
	return out
}

// TestTagExpect: --expect moves a tag only from the expected digest,
// --expect none only creates; a mismatch is ErrConflict and changes
// nothing; the result names the previous digest.
func TestTagExpect(t *testing.T) {
	for name, b := range testBackends(t) {
		t.Run(name, func(t *testing.T) {
			r := newReg(t, b, 64<<10)
			d := pushN(t, r, "m", 3)
			res, err := r.TagWith(bg, "m:v1", "m:prod", TagOptions{ExpectAbsent: true})
			if err != nil || res.Previous != "" || res.Digest != d[0] || !res.Changed {
				t.Fatalf("create with expect none: %+v %v", res, err)
			}
			_, err = r.TagWith(bg, "m:v2", "m:prod", TagOptions{ExpectAbsent: true})
			if !errors.Is(err, ErrConflict) || !errors.Is(err, ErrExpectMismatch) || !strings.Contains(err.Error(), d[0].String()) {
				t.Fatalf("expect none on an existing tag: %v", err)
			}
			res, err = r.TagWith(bg, "m:v2", "m:prod", TagOptions{Expect: d[0]})
			if err != nil || res.Previous != d[0] || res.Digest != d[1] {
				t.Fatalf("move from the expected digest: %+v %v", res, err)
			}
			if _, err := r.TagWith(bg, "m:v3", "m:prod", TagOptions{Expect: d[0]}); !errors.Is(err, ErrConflict) {
				t.Fatalf("move from a stale expected digest: %v", err)
			}
			if got, _ := r.Resolve(bg, "m:prod"); got != d[1] {
				t.Fatalf("prod names %s after a refused move, want %s", got, d[1])
			}
			if _, err := r.TagWith(bg, "m:v3", "m:nope", TagOptions{Expect: d[0]}); !errors.Is(err, ErrConflict) {
				t.Fatalf("expect a digest on a missing tag: %v", err)
			}
		})
	}
}

// TestTagExpectRace: promotions racing from the same expected digest to
// different digests: exactly one wins, the others fail with ErrConflict,
// and the tag names the winner's digest.
func TestTagExpectRace(t *testing.T) {
	for name, b := range testBackends(t) {
		t.Run(name, func(t *testing.T) {
			r := newReg(t, b, 64<<10)
			const n = 4
			d := pushN(t, r, "m", n+1)
			if _, err := r.Tag(bg, "m:v1", "m:prod"); err != nil {
				t.Fatal(err)
			}
			for round := range 3 {
				cur, _ := r.Resolve(bg, "m:prod")
				var wg sync.WaitGroup
				start := make(chan struct{})
				errs := make([]error, n)
				for i := range n {
					wg.Add(1)
					go func() {
						defer wg.Done()
						<-start
						_, errs[i] = r.TagWith(bg, "m:v"+itoa(i+2), "m:prod", TagOptions{Expect: cur})
					}()
				}
				close(start)
				wg.Wait()
				winner := -1
				for i, err := range errs {
					switch {
					case err == nil && winner >= 0:
						t.Fatalf("round %d: two promotions won (%d and %d)", round, winner, i)
					case err == nil:
						winner = i
					case !errors.Is(err, ErrConflict):
						t.Fatalf("round %d: loser %d: %v", round, i, err)
					}
				}
				if winner < 0 {
					t.Fatalf("round %d: no promotion won: %v", round, errs)
				}
				if got, _ := r.Resolve(bg, "m:prod"); got != d[winner+1] {
					t.Fatalf("round %d: prod names %s, the winner pushed %s", round, got, d[winner+1])
				}
				if _, err := r.Tag(bg, "m:v1", "m:prod"); err != nil {
					t.Fatal(err)
				}
			}
			// The log has every move, losers none, and its entries chain:
			// each one's previous is the digest of the one before it.
			h, err := r.History(bg, "m:prod")
			if err != nil || len(h) != 7 {
				t.Fatalf("log after racing promotions: %d entries, %v", len(h), err)
			}
			for i := 0; i+1 < len(h); i++ {
				if h[i].Previous != h[i+1].Digest {
					t.Fatalf("log entries %d and %d do not chain: %+v", i, i+1, h)
				}
			}
		})
	}
}

// TestHistoryAndRollback: every move is logged newest first with who and
// labels; rollback goes back by steps or to a digest, as a compare-and-swap,
// and is logged itself; rm is logged.
func TestHistoryAndRollback(t *testing.T) {
	for name, b := range testBackends(t) {
		t.Run(name, func(t *testing.T) {
			r := newReg(t, b, 64<<10)
			r.opt.Who = "ci@runner"
			res, err := r.Push(bg, "m:prod", oneTensorModel(t, 8, 8, 1), PushOptions{Labels: map[string]string{"git": "abc123"}})
			if err != nil {
				t.Fatal(err)
			}
			a := res.Digest
			bd := pushN(t, r, "m", 2)
			if _, err := r.Tag(bg, "m:v1", "m:prod"); err != nil {
				t.Fatal(err)
			}
			if _, err := r.Tag(bg, "m:v2", "m:prod"); err != nil {
				t.Fatal(err)
			}
			h, err := r.History(bg, "m:prod")
			if err != nil {
				t.Fatal(err)
			}
			if len(h) != 3 || h[0].Digest != bd[1] || h[0].Previous != bd[0] || h[1].Previous != a || h[2].Previous != "" ||
				h[2].Action != ActionPush || h[0].Action != ActionTag || h[0].Who != "ci@runner" || h[2].Labels["git"] != "abc123" {
				t.Fatalf("history: %+v", h)
			}
			// Two steps back: what it named two moves ago.
			rb, err := r.Rollback(bg, "m:prod", RollbackOptions{Steps: 2})
			if err != nil || rb.Digest != a || rb.Previous != bd[1] {
				t.Fatalf("rollback 2 steps: %+v %v", rb, err)
			}
			// To a digest prefix from the log.
			rb, err = r.Rollback(bg, "m:prod", RollbackOptions{To: bd[0].Encoded()[:10]})
			if err != nil || rb.Digest != bd[0] || rb.Previous != a {
				t.Fatalf("rollback to a prefix: %+v %v", rb, err)
			}
			h, _ = r.History(bg, "m:prod")
			if len(h) != 5 || h[0].Action != ActionRollback || h[0].Digest != bd[0] {
				t.Fatalf("history after rollbacks: %+v", h)
			}
			if _, err := r.Rollback(bg, "m:prod", RollbackOptions{Steps: 9}); !errors.Is(err, ErrNotFound) {
				t.Fatalf("rollback past the log: %v", err)
			}
			if _, err := r.Rollback(bg, "m:prod", RollbackOptions{To: "ffff"}); !errors.Is(err, ErrNotFound) {
				t.Fatalf("rollback to an unknown prefix: %v", err)
			}
			if _, err := r.Remove(bg, "m:prod"); err != nil {
				t.Fatal(err)
			}
			h, _ = r.History(bg, "m:prod")
			if h[0].Action != ActionRemove || h[0].Digest != "" || h[0].Previous != bd[0] {
				t.Fatalf("rm not logged: %+v", h[0])
			}
			// A removed tag can be rolled back into existence.
			if rb, err := r.Rollback(bg, "m:prod", RollbackOptions{}); err != nil || rb.Digest != bd[0] || rb.Previous != "" {
				t.Fatalf("rollback after rm: %+v %v", rb, err)
			}
			if h, err := r.History(bg, "m:never"); err != nil || len(h) != 0 {
				t.Fatalf("history of an unknown tag: %v %v", h, err)
			}
		})
	}
}

// TestRollbackIsCompareAndSwap: a rollback whose tag moved after it read it
// fails with ErrConflict and keeps the newer value.
func TestRollbackIsCompareAndSwap(t *testing.T) {
	r := newReg(t, storetest.NewFS(t), 64<<10)
	d := pushN(t, r, "m", 3)
	for _, v := range []string{"m:v1", "m:v2"} {
		if _, err := r.Tag(bg, v, "m:prod"); err != nil {
			t.Fatal(err)
		}
	}
	// The tag moves between the rollback's read and its swap: the
	// rollback's lock wait is where it reads nothing yet, so move it from
	// inside the expectation check instead (moveRef reads, then swaps).
	h, _ := r.History(bg, "m:prod")
	target, err := rollbackTarget(Ref{Name: "m", Tag: "prod"}, h, RollbackOptions{})
	if err != nil || target != d[0] {
		t.Fatalf("target: %s %v", target, err)
	}
	if _, err := r.Tag(bg, "m:v3", "m:prod"); err != nil {
		t.Fatal(err)
	}
	_, err = r.point(bg, "rollback", Ref{Name: "m", Tag: "prod"}, Ref{Name: "m", Digest: target},
		move{action: ActionRollback, expect: expectation{set: true, d: d[1]}})
	if !errors.Is(err, ErrConflict) {
		t.Fatalf("rollback over a newer move: %v", err)
	}
	if got, _ := r.Resolve(bg, "m:prod"); got != d[2] {
		t.Fatalf("prod names %s, want the newer %s", got, d[2])
	}
}

// TestLabels: push labels are stored in the manifest, listed, filterable,
// and bad ones are refused before anything is written.
func TestLabels(t *testing.T) {
	r := newReg(t, storetest.NewFS(t), 64<<10)
	dir := oneTensorModel(t, 8, 8, 1)
	plain, err := r.Push(bg, "m:plain", dir, PushOptions{})
	if err != nil {
		t.Fatal(err)
	}
	res, err := r.Push(bg, "m:ok", dir, PushOptions{Labels: map[string]string{"gate": "passed", "git": "abc"}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Digest == plain.Digest {
		t.Fatal("labels did not change the manifest")
	}
	m, err := r.Manifest(bg, res.Digest)
	if err != nil || m.Labels["gate"] != "passed" {
		t.Fatalf("manifest labels: %v %v", m, err)
	}
	if _, err := r.Push(bg, "m:bad", dir, PushOptions{Labels: map[string]string{"gate": "failed"}}); err != nil {
		t.Fatal(err)
	}
	ls, err := r.ListWith(bg, ListOptions{Labels: map[string]string{"gate": "passed"}})
	if err != nil || len(ls) != 1 || ls[0].Ref != "m:ok" || ls[0].Labels["git"] != "abc" {
		t.Fatalf("ls --label gate=passed: %+v %v", ls, err)
	}
	for _, bad := range []map[string]string{{"": "x"}, {"-x": "y"}, {"k": "a\nb"}, {"sp ace": "v"}} {
		if _, err := r.Push(bg, "m:x", dir, PushOptions{Labels: bad}); !errors.Is(err, ErrBadLabel) {
			t.Errorf("label %q: %v", bad, err)
		}
	}
	if _, err := r.Resolve(bg, "m:x"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a refused push moved the ref: %v", err)
	}
}

// setRefTime backdates a tag on an fs backend, as if it moved at t.
func setRefTime(t *testing.T, b *store.FS, ref string, at time.Time) {
	t.Helper()
	p, _ := ParseRef(ref)
	if err := os.Chtimes(filepath.Join(b.Location(), filepath.FromSlash(p.key())), at, at); err != nil {
		t.Fatal(err)
	}
}

// TestListTimes: ls gives each ref's update time and its manifest's
// creation time, and sorts by update time on request.
func TestListTimes(t *testing.T) {
	b := storetest.NewFS(t)
	r := newReg(t, b, 64<<10)
	pushN(t, r, "m", 3)
	now := time.Now()
	setRefTime(t, b, "m:v1", now.Add(-time.Hour))
	setRefTime(t, b, "m:v2", now.Add(time.Minute))
	setRefTime(t, b, "m:v3", now.Add(-2*time.Hour))
	ls, err := r.ListWith(bg, ListOptions{Sort: SortTime})
	if err != nil {
		t.Fatal(err)
	}
	if len(ls) != 3 || ls[0].Ref != "m:v2" || ls[1].Ref != "m:v1" || ls[2].Ref != "m:v3" {
		t.Fatalf("ls --sort time: %+v", ls)
	}
	for _, ri := range ls {
		if ri.Created.IsZero() || ri.Updated.IsZero() || time.Since(ri.Created) > time.Hour {
			t.Fatalf("times missing: %+v", ri)
		}
	}
	if _, err := r.ListWith(bg, ListOptions{Sort: "size"}); err == nil {
		t.Fatal("unknown sort accepted")
	}
}

// TestRetention: gc --keep-last N --match keeps the newest N matching tags
// of a name, never a protected one; a dry run lists the refs and objects it
// would delete and deletes nothing; the real run removes them, collects
// what only they kept, and logs the removals.
func TestRetention(t *testing.T) {
	b := storetest.NewFS(t)
	r := newReg(t, b, 64<<10)
	var d []digest.Digest
	for i := range 5 {
		res, err := r.Push(bg, "m:build-"+itoa(i+1), oneTensorModel(t, 8, 8, uint64(200+i)), PushOptions{})
		if err != nil {
			t.Fatal(err)
		}
		d = append(d, res.Digest)
		setRefTime(t, b, "m:build-"+itoa(i+1), time.Now().Add(time.Duration(i-10)*time.Minute))
	}
	if _, err := r.Tag(bg, "m:build-1", "m:prod"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Push(bg, "other:build-1", oneTensorModel(t, 8, 8, 300), PushOptions{}); err != nil {
		t.Fatal(err)
	}
	opt := GCOptions{Grace: -1, DryRun: true, Retention: &Retention{KeepLast: 2, Match: []string{"m:build-*"}, Protect: []string{"*:prod"}}}
	res, err := r.GC(bg, opt)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"m:build-1", "m:build-2", "m:build-3"}
	if strings.Join(res.RemovedRefs, " ") != strings.Join(want, " ") {
		t.Fatalf("dry run would remove %v, want %v", res.RemovedRefs, want)
	}
	// build-1 stays reachable through prod: only build-2 and build-3's
	// manifests (and their blobs) would go.
	var manifests []string
	for _, o := range res.Objects {
		if o.Kind == "manifest" {
			manifests = append(manifests, o.Key)
		}
	}
	if len(manifests) != 2 || res.DeletedManifests != 2 || res.DeletedBlobs == 0 || len(res.Objects) != res.DeletedBlobs+res.DeletedManifests {
		t.Fatalf("dry run objects: %+v", res)
	}
	for _, m := range manifests {
		if m != manifestKey(d[1]) && m != manifestKey(d[2]) {
			t.Fatalf("dry run would delete %s", m)
		}
	}
	if ls, _ := r.List(bg, ""); len(ls) != 7 {
		t.Fatalf("dry run removed refs: %d left", len(ls))
	}
	opt.DryRun = false
	res, err = r.GC(bg, opt)
	if err != nil || len(res.RemovedRefs) != 3 || res.DeletedManifests != 2 {
		t.Fatalf("gc with retention: %+v %v", res, err)
	}
	ls, _ := r.List(bg, "")
	var left []string
	for _, ri := range ls {
		left = append(left, ri.Ref)
	}
	if strings.Join(left, " ") != "m:build-4 m:build-5 m:prod other:build-1" {
		t.Fatalf("left after retention: %v", left)
	}
	if v, err := r.Verify(bg, nil); err != nil || !v.OK {
		t.Fatalf("verify after retention: %+v %v", v, err)
	}
	if h, _ := r.History(bg, "m:build-2"); len(h) == 0 || h[0].Action != ActionGC {
		t.Fatalf("retention removal not logged: %+v", h)
	}
	for _, bad := range []*Retention{{KeepLast: 1}, {KeepLast: 1, Match: []string{"m:[x"}}, {KeepLast: -1, Match: []string{"m:*"}}} {
		if _, err := r.GC(bg, GCOptions{Grace: -1, DryRun: true, Retention: bad}); err == nil {
			t.Errorf("retention %+v accepted", bad)
		}
	}
}

// TestMissingRegistry: opening a folder registry that does not exist
// creates nothing; reads fail with ErrNoRegistry naming it; Init makes it.
func TestMissingRegistry(t *testing.T) {
	root := filepath.Join(t.TempDir(), "typo")
	r, err := Open(bg, root, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := r.List(bg, ""); !errors.Is(err, ErrNoRegistry) || !strings.Contains(err.Error(), root) {
		t.Fatalf("ls of a missing registry: %v", err)
	}
	if _, err := r.Show(bg, "m:v1"); !errors.Is(err, ErrNoRegistry) {
		t.Fatalf("show in a missing registry: %v", err)
	}
	if v, err := r.Verify(bg, nil); !errors.Is(err, ErrNoRegistry) {
		t.Fatalf("verify of a missing registry: %+v %v", v, err)
	}
	if _, err := os.Stat(root); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("reads created the registry: %v", err)
	}
	ri, err := Init(bg, root, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ri.Close()
	if ls, err := ri.List(bg, ""); err != nil || len(ls) != 0 {
		t.Fatalf("ls of a fresh registry: %v %v", ls, err)
	}
}

func TestNaturalLess(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want bool
	}{
		{"ci-9", "ci-10", true}, {"ci-10", "ci-9", false}, {"ci-09", "ci-10", true},
		{"a", "b", true}, {"b", "a", false}, {"ci", "ci-1", true}, {"x2y", "x2z", true}, {"v1", "v1", false},
	} {
		if got := naturalLess(c.a, c.b); got != c.want {
			t.Errorf("naturalLess(%q, %q) = %v", c.a, c.b, got)
		}
	}
}

// setRef moves a tag without conditions, as a push does (for tests that
// plant refs).
func (r *Registry) setRef(ctx context.Context, ref Ref, d digest.Digest) error {
	_, err := r.moveRef(ctx, ref, d, move{action: ActionPush})
	return err
}
