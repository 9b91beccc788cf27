package merge

import (
	"bytes"
	"errors"
	"testing"

	"github.com/deltactl/deltactl/format"
)

// validCorrection is a small correction file as merge writes it: a header,
// two tensor records (one with DoRA norms) and the end record.
func validCorrection(t testing.TB) []byte {
	var buf bytes.Buffer
	cw, err := newCorrectionWriter(&buf, "sha256:seed")
	if err != nil {
		t.Fatal(err)
	}
	orig := []byte{1, 2, 3, 4, 5, 6, 7, 8}
	restored := []byte{1, 2, 3, 4, 5, 6, 7, 9}
	if err := cw.tensor("a.weight", format.BF16, format.BF16, []int64{2, 2}, orig, restored, orig, nil); err != nil {
		t.Fatal(err)
	}
	if err := cw.tensor("b.weight", format.F32, format.F32, []int64{2}, orig, orig, orig, [][]float64{{1, 2}}); err != nil {
		t.Fatal(err)
	}
	if err := cw.close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// FuzzCorrectionReader feeds arbitrary bytes to the correction-file
// reader: it must fail with ErrCorrection, never panic, never allocate
// beyond its limits. Seeds: testdata/fuzz/FuzzCorrectionReader and the
// valid file above with a few cuts.
func FuzzCorrectionReader(f *testing.F) {
	good := validCorrection(f)
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add([]byte{})
	f.Add([]byte("not zstd at all"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cr, err := newCorrectionReader(bytes.NewReader(data), "fuzz", 1<<16)
		if err != nil {
			if !errors.Is(err, ErrCorrection) {
				t.Fatalf("error does not wrap ErrCorrection: %v", err)
			}
			return
		}
		defer cr.close()
		for _, n := range []string{"b.weight", "a.weight", "zzz"} {
			e, err := cr.get(n)
			if err != nil {
				if !errors.Is(err, ErrCorrection) {
					t.Fatalf("error does not wrap ErrCorrection: %v", err)
				}
				return
			}
			if e != nil && int64(len(e.xor)) != e.rec.XORBytes {
				t.Fatalf("record %q: %d bytes, header says %d", n, len(e.xor), e.rec.XORBytes)
			}
		}
		if err := cr.finish(); err != nil && !errors.Is(err, ErrCorrection) {
			t.Fatalf("error does not wrap ErrCorrection: %v", err)
		}
	})
}

func TestCorrectionReaderRoundTrip(t *testing.T) {
	cr, err := newCorrectionReader(bytes.NewReader(validCorrection(t)), "mem", 1<<16)
	if err != nil {
		t.Fatal(err)
	}
	defer cr.close()
	if cr.deltas != "sha256:seed" {
		t.Errorf("fingerprint %q", cr.deltas)
	}
	// out of order: b is found after stashing a
	b, err := cr.get("b.weight")
	if err != nil || b == nil || len(b.norms) != 1 || b.norms[0][1] != 2 {
		t.Fatalf("b: %+v %v", b, err)
	}
	a, err := cr.get("a.weight")
	if err != nil || a == nil || a.xor[7] != 8^9 || a.xor[0] != 0 {
		t.Fatalf("a: %+v %v", a, err)
	}
	if err := cr.finish(); err != nil {
		t.Fatal(err)
	}
	// a record claiming more than the limit is refused before allocating
	if _, err := newCorrectionReader(bytes.NewReader(validCorrection(t)), "mem", 2); err == nil {
		cr2, _ := newCorrectionReader(bytes.NewReader(validCorrection(t)), "mem", 2)
		if _, err := cr2.get("a.weight"); !errors.Is(err, ErrCorrection) {
			t.Errorf("oversized record: %v", err)
		}
	}
}
