package registry

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/deltactl/deltactl/registry/codec"
	"github.com/deltactl/deltactl/registry/store"
	"github.com/opencontainers/go-digest"
)

func newFSReg(t testing.TB) *Registry {
	t.Helper()
	b, err := store.NewFS(filepath.Join(t.TempDir(), "reg"))
	if err != nil {
		t.Fatal(err)
	}
	return newReg(t, b, 1<<20)
}

// checkNothingLeft fails when dir's parent holds anything but what was
// there before a failed pull (a temp folder, a sparse file).
func checkNothingLeft(t *testing.T, parent string) {
	t.Helper()
	ents, err := os.ReadDir(parent)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		t.Errorf("failed pull left %s behind", e.Name())
	}
}

// TestPullRefusesHostileChunkSizes: sizes that wrap int64 or claim more than
// a chunk may hold are refused before anything is allocated or created.
func TestPullRefusesHostileChunkSizes(t *testing.T) {
	r := newFSReg(t)
	d := digest.FromString("x")
	plantBlob(t, r, d, zstdFrame(t, 1, []byte("x")))
	cases := map[string]File{
		"wrap":     {Path: "w", Size: 0, Chunks: []Chunk{{d, 1 << 62}, {d, 1 << 62}, {d, 1 << 62}, {d, 1 << 62}}},
		"tebibyte": {Path: "t", Size: 1 << 40, Chunks: []Chunk{{d, 1 << 40}}},
		"negative": {Path: "n", Size: -1, Chunks: []Chunk{{d, -1}}},
	}
	for name, f := range cases {
		t.Run(name, func(t *testing.T) {
			m := &Manifest{SchemaVersion: 1, Kind: KindModel, Files: []File{f}}
			plantManifest(t, r, "evil/"+name+":v1", marshalRaw(t, m))
			parent := t.TempDir()
			_, err := r.Pull(bg, "evil/"+name+":v1", filepath.Join(parent, "out"))
			if !errors.Is(err, ErrBadManifest) {
				t.Fatalf("pull: %v, want ErrBadManifest", err)
			}
			checkNothingLeft(t, parent)
		})
	}
}

// allocDuring returns the bytes allocated while fn runs.
func allocDuring(fn func()) uint64 {
	var a, b runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&a)
	fn()
	runtime.ReadMemStats(&b)
	return b.TotalAlloc - a.TotalAlloc
}

// TestPullStopsAtClaimedSize: a chunk the manifest says is 40 KB whose frame
// claims 64 MiB of zeros is refused without decoding the 64 MiB.
func TestPullStopsAtClaimedSize(t *testing.T) {
	r := newFSReg(t)
	claimed := make([]byte, 40_000)
	d := digest.FromBytes(claimed)
	plantBlob(t, r, d, zstdFrame(t, 64<<20, make([]byte, 64<<20)))
	m := &Manifest{SchemaVersion: 1, Kind: KindModel, Files: []File{{Path: "f", Size: 40_000, Chunks: []Chunk{{d, 40_000}}}}}
	plantManifest(t, r, "amp/claim:v1", marshalRaw(t, m))
	var err error
	got := allocDuring(func() { _, err = r.Pull(bg, "amp/claim:v1", filepath.Join(t.TempDir(), "out")) })
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("pull: %v, want ErrCorrupt", err)
	}
	if got > 16<<20 {
		t.Fatalf("pull allocated %d MiB for a 40 KB chunk", got>>20)
	}
	t.Logf("pull of a 40 KB chunk whose frame claims 64 MiB allocated %d KiB", got>>10)
}

// TestPullDecodesSharedBaseOnce: a manifest naming the same XOR base in
// many chunks fetches and decodes that base once, not once per chunk.
func TestPullDecodesSharedBaseOnce(t *testing.T) {
	const size, n = 4 << 20, 12
	r := newFSReg(t)
	base := randF32(7, size/4)
	bd := digest.FromBytes(base)
	if _, err := r.putBlob(bg, bd, base, 1, "", nil); err != nil {
		t.Fatal(err)
	}
	var chunks []Chunk
	for i := range n {
		raw := append([]byte(nil), base...)
		for k := i; k < size; k += 4099 {
			raw[k] ^= byte(1 + i)
		}
		d := digest.FromBytes(raw)
		frame, err := r.codec.Encode(raw, codec.EncodeOptions{ElemSize: 4, Base: base, BaseDigest: bd})
		if err != nil {
			t.Fatal(err)
		}
		if h, err := codec.ParseHeader(frame); err != nil || h.Encoding != codec.XOR {
			t.Fatalf("chunk %d not XOR-encoded: %v %v", i, h.Encoding, err)
		}
		plantBlob(t, r, d, frame)
		chunks = append(chunks, Chunk{d, size})
	}
	m := &Manifest{SchemaVersion: 1, Kind: KindModel, Files: []File{{Path: "f", Size: n * size, Chunks: chunks}}}
	plantManifest(t, r, "amp/shared:v1", marshalRaw(t, m))
	var err error
	got := allocDuring(func() { _, err = r.Pull(bg, "amp/shared:v1", filepath.Join(t.TempDir(), "out")) })
	if err != nil {
		t.Fatal(err)
	}
	// Each chunk's own decode costs about 2 x size (the output and a
	// plane); fetching and decoding the base costs 2 x size more each
	// time it is done.
	if limit := uint64((2*n + 8) * size); got > limit {
		t.Fatalf("pull allocated %d MiB, want under %d MiB: the shared base is decoded more than once", got>>20, limit>>20)
	}
	t.Logf("pull of %d x %d MiB XOR chunks on one base allocated %d MiB", n, size>>20, got>>20)
}

// TestPullManyFilesUnderFileLimit: pull holds a bounded number of files
// open, so a folder with more files than RLIMIT_NOFILE pulls (push always
// could).
func TestPullManyFilesUnderFileLimit(t *testing.T) {
	const files = 300
	r := newFSReg(t)
	src := t.TempDir()
	for i := range files {
		writeFile(t, filepath.Join(src, "d"+itoa(i%7), "f"+itoa(i)+".txt"), "content "+itoa(i))
	}
	if _, err := r.Push(bg, "many/files:v1", src, PushOptions{}); err != nil {
		t.Fatal(err)
	}
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd:", err)
	}
	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &old); err != nil {
		t.Fatal(err)
	}
	low := old
	low.Cur = uint64(len(fds) + 64)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &low); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "out")
	_, err = r.Pull(bg, "many/files:v1", out)
	if rerr := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &old); rerr != nil {
		t.Fatal(rerr)
	}
	if err != nil {
		t.Fatalf("pull of %d files with RLIMIT_NOFILE %d: %v", files, low.Cur, err)
	}
	sameTree(t, src, out)
}

// TestPullIntoEmptyMountPoint: an empty target that is a mount point (the
// hooks stand in for one: renaming onto it fails with EBUSY) is filled in
// place, through a temp folder inside it, and the result verified.
func TestPullIntoEmptyMountPoint(t *testing.T) {
	r := newFSReg(t)
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "config.json"), `{"a":1}`)
	writeFile(t, filepath.Join(src, "sub", "w.bin"), "weights")
	if _, err := r.Push(bg, "mnt/m:v1", src, PushOptions{}); err != nil {
		t.Fatal(err)
	}
	parent := t.TempDir()
	mnt := filepath.Join(parent, "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	r.hooks.isMount = func(dir string) bool { return dir == mnt }
	r.hooks.commitDir = func(tmp, dst string) error {
		if dst == mnt {
			return &os.LinkError{Op: "rename", Old: tmp, New: dst, Err: syscall.EBUSY}
		}
		return errors.New("unexpected commit")
	}
	if _, err := r.Pull(bg, "mnt/m:v1", mnt); err != nil {
		t.Fatalf("pull into an empty mount point: %v", err)
	}
	sameTree(t, src, mnt)
	ents, _ := os.ReadDir(parent)
	if len(ents) != 1 {
		t.Fatalf("parent holds %v, want only the mount point", ents)
	}
	// A failed pull leaves the mount point empty.
	empty := filepath.Join(parent, "mnt2")
	if err := os.Mkdir(empty, 0o755); err != nil {
		t.Fatal(err)
	}
	r.hooks.isMount = func(string) bool { return true }
	flipByte(t, r.b, blobKey(digest.FromString("weights")))
	if _, err := r.Pull(bg, "mnt/m:v1", empty); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("pull of a damaged blob: %v", err)
	}
	if ents, _ := os.ReadDir(empty); len(ents) != 0 {
		t.Fatalf("failed pull left %v in the mount point", ents)
	}
}

// TestIsMountPoint checks the detection on mounts every Linux has.
func TestIsMountPoint(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("mount points are detected on Linux only")
	}
	if !isMountPoint("/proc") {
		t.Error("/proc not seen as a mount point")
	}
	if d := t.TempDir(); isMountPoint(d) {
		t.Errorf("%s seen as a mount point", d)
	}
}

// TestXORBaseCycles: frames naming each other (or themselves) as XOR bases
// are reported as corrupt by pull and verify; they never wait on each other
// forever.
func TestXORBaseCycles(t *testing.T) {
	r := newFSReg(t)
	a, b, c := digest.FromString("a"), digest.FromString("b"), digest.FromString("c")
	plantBlob(t, r, a, xorFrame(b, []byte("x")))
	plantBlob(t, r, b, xorFrame(a, []byte("y")))
	plantBlob(t, r, c, xorFrame(c, []byte("z")))
	var chunks []Chunk
	for range 8 {
		chunks = append(chunks, Chunk{a, 1}, Chunk{b, 1}, Chunk{c, 1})
	}
	m := &Manifest{SchemaVersion: 1, Kind: KindModel, Files: []File{{Path: "f", Size: int64(len(chunks)), Chunks: chunks}}}
	plantManifest(t, r, "cyc/m:v1", marshalRaw(t, m))
	done := make(chan struct{})
	go func() {
		defer close(done)
		if _, err := r.Pull(bg, "cyc/m:v1", filepath.Join(t.TempDir(), "o")); !errors.Is(err, ErrCorrupt) {
			t.Errorf("pull: %v", err)
		}
		v, err := r.Verify(bg, nil)
		if err != nil || v.OK {
			t.Errorf("verify: %+v %v", v, err)
		}
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("XOR base cycle hangs")
	}
}

// TestPullRemovesItsStaleTempFolders: a pull killed mid-way leaves a hidden
// temp folder beside its target (or inside an empty mount point); the next
// pull to that target removes it once it is older than DefaultGrace, and
// leaves a young one (a pull still running) alone.
func TestPullRemovesItsStaleTempFolders(t *testing.T) {
	r := newFSReg(t)
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "config.json"), `{}`)
	if _, err := r.Push(bg, "tmp/m:v1", src, PushOptions{}); err != nil {
		t.Fatal(err)
	}
	parent := t.TempDir()
	old := time.Now().Add(-2 * DefaultGrace)
	mk := func(p string, stale bool) {
		writeFile(t, filepath.Join(p, "half.bin"), "half")
		if stale {
			if err := os.Chtimes(p, old, old); err != nil {
				t.Fatal(err)
			}
		}
	}
	staleBeside, young := filepath.Join(parent, ".out.tmp-111"), filepath.Join(parent, ".out.tmp-222")
	mk(staleBeside, true)
	mk(young, false)
	if _, err := r.Pull(bg, "tmp/m:v1", filepath.Join(parent, "out")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(staleBeside); !os.IsNotExist(err) {
		t.Error("stale temp folder beside the target kept")
	}
	if _, err := os.Stat(young); err != nil {
		t.Error("young temp folder removed")
	}
	mnt := filepath.Join(parent, "mnt")
	mk(filepath.Join(mnt, ".deltactl-pull-333"), true)
	r.hooks.isMount = func(dir string) bool { return dir == mnt }
	if _, err := r.Pull(bg, "tmp/m:v1", mnt); err != nil {
		t.Fatalf("pull into a mount point holding only a stale temp folder: %v", err)
	}
	sameTree(t, src, mnt)
}

// TestPullDecodeMemoryBudget: chunks whose frames are tiny but decode to
// large buffers are decoded only as many at a time as the decode budget
// holds, so the live heap during a pull stays near the budget instead of
// growing with the chunks in flight.
func TestPullDecodeMemoryBudget(t *testing.T) {
	const size, n = 8 << 20, 12
	r := newFSReg(t)
	r.opt.Workers = 8              // many chunks in flight,
	r.cpu = make(chan struct{}, n) // decoded at once as on a 12-core machine
	r.mem = newMemBudget(3 * size)
	var chunks []Chunk
	for i := range n {
		raw := make([]byte, size)
		raw[i] = 1
		d := digest.FromBytes(raw)
		frame, err := r.codec.Encode(raw, codec.EncodeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		plantBlob(t, r, d, frame)
		chunks = append(chunks, Chunk{d, size})
	}
	m := &Manifest{SchemaVersion: 1, Kind: KindModel, Files: []File{{Path: "f", Size: n * size, Chunks: chunks}}}
	plantManifest(t, r, "amp/budget:v1", marshalRaw(t, m))
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	stop := make(chan struct{})
	peak := make(chan uint64)
	go func() {
		var max uint64
		var ms runtime.MemStats
		for {
			select {
			case <-stop:
				peak <- max
				return
			case <-time.After(2 * time.Millisecond):
			}
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > max {
				max = ms.HeapInuse
			}
		}
	}()
	_, err := r.Pull(bg, "amp/budget:v1", filepath.Join(t.TempDir(), "out"))
	close(stop)
	got := <-peak - before.HeapInuse
	if err != nil {
		t.Fatal(err)
	}
	if limit := uint64(3*size + 4*(8<<20)); got > limit {
		t.Fatalf("peak heap grew by %d MiB during the pull, want under %d MiB", got>>20, limit>>20)
	}
	t.Logf("peak heap growth %d MiB with a %d MiB decode budget", got>>20, 3*size>>20)
}
