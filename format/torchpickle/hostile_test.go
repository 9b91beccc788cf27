package torchpickle

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/deltactl/deltactl/internal/testutil"
)

// Each hostile input must fail with the right sentinel and a message that
// says what was wrong; none may panic or allocate far beyond its size.
func TestHostile(t *testing.T) {
	zipOf := func(p *pk, st map[string][]byte) []byte { return tzip(t, p.Bytes(), st, "little") }
	cases := append(unsafeGlobalCases(zipOf), corruptCases(zipOf)...)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := readBytes(t, c.file())
			if !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
			if !strings.Contains(err.Error(), c.msg) || !strings.HasPrefix(err.Error(), "torchpickle: test.pt: ") {
				t.Fatalf("err = %q, want it to name the file and contain %q", err, c.msg)
			}
		})
	}
}

// Truncating or flipping bytes of a real file must give an error, not a
// panic (CRC checks catch flipped storage bytes in the zip format).
func TestCorruptedRealFile(t *testing.T) {
	file, err := os.ReadFile(testutil.Testdata(t, "torch/state_dict.pt"))
	if err != nil {
		t.Fatal(err)
	}
	for n := 0; n < len(file); n += 7 {
		if _, err := readBytes(t, file[:n]); err == nil {
			t.Fatalf("truncated to %d bytes: no error", n)
		}
	}
	for i := 0; i < len(file); i++ {
		b := bytes.Clone(file)
		b[i] ^= 0x5a
		readBytes(t, b) // may or may not fail; must not panic
	}
	// A flipped byte inside storage 0's data is caught by the CRC.
	off := bytes.Index(file, zipEntry(t, testutil.Testdata(t, "torch/state_dict.pt"), "state_dict/data/0"))
	b := bytes.Clone(file)
	b[off+5] ^= 1
	if _, err := readBytes(t, b); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("flipped storage byte: %v", err)
	}
}

func FuzzTorchPickle(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join(testutil.Testdata(f, "torch"), "*.*"))
	for _, p := range files {
		if strings.HasSuffix(p, ".pt") || strings.HasSuffix(p, ".bin") {
			b, err := os.ReadFile(p)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
	var p pk
	p.proto().op(opEmptyDict).str("w").tensor("FloatStorage", "0", 6, 1, []int{2, 2}, []int{1, 2}).op(opSetItem, opStop)
	f.Add(tzip(f, p.Bytes(), map[string][]byte{"0": seqF32(6)}, "big"))
	f.Add(p.Bytes())
	f.Fuzz(func(t *testing.T, b []byte) {
		sd, err := Read(bytes.NewReader(b), int64(len(b)), "fuzz.pt")
		if err != nil {
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrNotTorch) && !errors.Is(err, ErrUnsafeGlobal) {
				t.Fatalf("error without a sentinel: %v", err)
			}
			return
		}
		for _, tt := range sd.Tensors {
			if err := tt.Check(); err != nil {
				t.Fatalf("loaded tensor fails Check: %v", err)
			}
		}
	})
}

// hostileCase is one input TestHostile must refuse with want and msg.
type hostileCase struct {
	name string
	file func() []byte
	want error
	msg  string
}

// unsafeGlobalCases reach for code outside the allow-list.
func unsafeGlobalCases(zipOf func(*pk, map[string][]byte) []byte) []hostileCase {
	return []hostileCase{
		{"os.system via GLOBAL", func() []byte {
			var p pk
			p.proto().global("os", "system").str("echo pwned").op(opTuple1, opReduce, opStop)
			return zipOf(&p, nil)
		}, ErrUnsafeGlobal, `refusing global "os.system"`},
		{"builtins.eval via STACK_GLOBAL", func() []byte {
			var p pk
			p.op(opProto, 4).str("builtins").str("eval").op(opStackGlobal, opStop)
			return zipOf(&p, nil)
		}, ErrUnsafeGlobal, `refusing global "builtins.eval"`},
		{"torch global outside the allow-list", func() []byte {
			var p pk
			p.proto().global("torch", "load").op(opStop)
			return zipOf(&p, nil)
		}, ErrUnsafeGlobal, `"torch.load"`},
		{"INST of subprocess", func() []byte {
			var p pk
			p.proto().op(opMark).str("ls").op(opInst)
			p.WriteString("subprocess\nPopen\n")
			p.op(opStop)
			return zipOf(&p, nil)
		}, ErrUnsafeGlobal, `"subprocess.Popen"`},
		{"legacy file with os.system", func() []byte {
			var p pk
			p.proto().global("posix", "system").op(opStop)
			return legacyFile(p.Bytes(), nil, nil, 4)
		}, ErrUnsafeGlobal, `"posix.system"`},
		{"EXT opcode", func() []byte {
			var p pk
			p.proto().op(opExt1, 1, opStop)
			return zipOf(&p, nil)
		}, ErrUnsafeGlobal, "extension"},
	}
}

// corruptCases are malformed or resource-hungry pickles and archives.
func corruptCases(zipOf func(*pk, map[string][]byte) []byte) []hostileCase {
	return []hostileCase{
		{"deep nesting", func() []byte {
			var p pk
			p.proto()
			for range 100000 {
				p.op(opEmptyDict).str("a")
			}
			p.op(opNone)
			for range 100000 {
				p.op(opSetItem)
			}
			p.op(opStop)
			return zipOf(&p, nil)
		}, ErrCorrupt, "nested deeper"},
		{"self-referencing dict", func() []byte {
			var p pk
			p.proto().op(opEmptyDict, opBinPut, 0).str("me").op(opBinGet, 0, opSetItem, opStop)
			return zipOf(&p, nil)
		}, ErrCorrupt, "nested deeper"},
		{"exponential DAG", func() []byte {
			var p pk
			p.proto().tensor("FloatStorage", "0", 1, 0, []int{1}, []int{1}).op(opBinPut, 0)
			for i := range 60 {
				p.op(opMark, opBinGet, byte(i), opPop, opPopMark) // exercise POP/POP_MARK
				p.op(opEmptyDict, opMark).str("a").op(opBinGet, byte(i)).str("b").op(opBinGet, byte(i))
				p.op(opSetItems, opBinPut, byte(i+1))
			}
			p.op(opStop)
			return zipOf(&p, map[string][]byte{"0": seqF32(1)})
		}, ErrCorrupt, "more than the file's size allows"},
		{"huge string length", func() []byte {
			var p pk
			p.proto().op(opBinUnicode, 0xff, 0xff, 0xff, 0x7f, opStop)
			return zipOf(&p, nil)
		}, ErrCorrupt, "exceeds"},
		{"huge BINBYTES8 length", func() []byte {
			var p pk
			p.op(opProto, 4, opBinBytes8, 0, 0, 0, 0, 0, 0, 0, 0x40, opStop)
			return zipOf(&p, nil)
		}, ErrCorrupt, "exceeds"},
		{"huge storage count", func() []byte {
			var p pk
			p.proto().op(opEmptyDict).str("w").tensor("FloatStorage", "0", 1<<30, 0, []int{1 << 30}, []int{1}).op(opSetItem, opStop)
			return zipOf(&p, map[string][]byte{"0": seqF32(4)})
		}, ErrCorrupt, "needs 4294967296 bytes"},
		{"shape beyond storage", func() []byte {
			var p pk
			p.proto().op(opEmptyDict).str("w").tensor("FloatStorage", "0", 4, 0, []int{1 << 20, 1 << 20}, []int{1 << 20, 1}).op(opSetItem, opStop)
			return zipOf(&p, map[string][]byte{"0": seqF32(4)})
		}, ErrCorrupt, `tensor "w"`},
		{"huge expanded tensor", func() []byte {
			var p pk
			p.proto().op(opEmptyDict).str("w").tensor("FloatStorage", "0", 1, 0, []int{1 << 20, 1 << 20}, []int{0, 0}).op(opSetItem, opStop)
			return zipOf(&p, map[string][]byte{"0": seqF32(1)})
		}, ErrCorrupt, "more than the file's size allows"},
		{"missing storage entry", func() []byte {
			var p pk
			p.proto().op(opEmptyDict).str("w").tensor("FloatStorage", "9", 1, 0, []int{1}, []int{1}).op(opSetItem, opStop)
			return zipOf(&p, nil)
		}, ErrCorrupt, "archive/data/9"},
		{"memo miss", func() []byte {
			var p pk
			p.proto().op(opBinGet, 7, opStop)
			return zipOf(&p, nil)
		}, ErrCorrupt, "memo key 7"},
		{"stack underflow", func() []byte {
			var p pk
			p.proto().op(opTuple3, opStop)
			return zipOf(&p, nil)
		}, ErrCorrupt, "underflow"},
		{"no STOP", func() []byte {
			var p pk
			p.proto().op(opEmptyDict)
			return zipOf(&p, nil)
		}, ErrCorrupt, "truncated"},
		{"unknown opcode", func() []byte {
			var p pk
			p.proto().op(0xff)
			return zipOf(&p, nil)
		}, ErrCorrupt, "unknown opcode"},
		{"calling a storage type", func() []byte {
			var p pk
			p.proto().global("torch", "FloatStorage").op(opEmptyTuple, opReduce, opStop)
			return zipOf(&p, nil)
		}, ErrCorrupt, "cannot be called"},
		{"legacy count disagrees", func() []byte {
			var p pk
			p.proto().op(opEmptyDict).str("w")
			p.global("torch._utils", "_rebuild_tensor_v2").op(opMark)
			p.op(opMark).str("storage").global("torch", "FloatStorage").str("k").str("cpu").int(2).op(opNone, opTuple, opBinPersID)
			p.int(0).ints(2).ints(1).op(opTuple, opReduce, opSetItem, opStop)
			return legacyFile(p.Bytes(), []string{"k"}, map[string][]byte{"k": seqF32(3)}, 4)
		}, ErrCorrupt, "has 3 elements, the pickle says 2"},
		{"legacy bad magic", func() []byte {
			return []byte{opProto, 2, opBinInt1, 7, opStop, 0, 0, 0}
		}, ErrNotTorch, "magic"},
	}
}
