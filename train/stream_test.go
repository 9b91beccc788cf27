package train

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestStreamedDataSameBytes checks that training and evaluating on a JSONL
// read from disk a batch at a time (with read-ahead) writes the same bytes
// as on the same file held in memory, over several epochs, and that a
// streamed file's errors name their line.
func TestStreamedDataSameBytes(t *testing.T) {
	ctx := context.Background()
	m := smallModel(t)
	dir := t.TempDir()
	var b strings.Builder
	for r := 0; r < 23; r++ {
		if r == 5 {
			b.WriteString("\n") // a blank line is not a record
		}
		ids := randomTokens(10+int(splitmix64(uint64(r))%20), uint64(r)*31)
		fmt.Fprintf(&b, `{"input_ids": %s}`+"\n", strings.Join(strings.Fields(fmt.Sprint(ids)), ", "))
	}
	path := filepath.Join(dir, "d.jsonl")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	files := map[bool]map[string][]byte{}
	for _, streamed := range []bool{false, true} {
		from := int64(1 << 40)
		if streamed {
			from = 0
		}
		d, err := loadData(path, m.Config, from)
		if err != nil {
			t.Fatal(err)
		}
		if (d.Records == nil) != streamed || d.numRecords() != 23 {
			t.Fatalf("streamed %v: %d records in memory, %d in all", streamed, len(d.Records), d.numRecords())
		}
		o := DefaultOptions()
		o.Steps, o.Batch, o.Seq, o.Threads = 8, 4, 32, 2 // 32 rows: the data set once and a part
		o.EvalEvery, o.EvalBatches = 3, 2
		o.Out = filepath.Join(t.TempDir(), "out")
		if _, err := Train(ctx, m, d, d, o); err != nil {
			t.Fatal(err)
		}
		files[streamed] = runFiles(t, o.Out)
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
	}
	sameFiles(t, files[false], files[true], "streamed")

	bad := filepath.Join(dir, "bad.jsonl")
	if err := os.WriteFile(bad, []byte(`{"input_ids": [1, 2, 3]}`+"\n\n"+`{"input_ids": [1, 999, 3]}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := loadData(bad, m.Config, 0); !errors.Is(err, ErrData) || !strings.Contains(err.Error(), "bad.jsonl:3") {
		t.Errorf("streamed bad record: %v, want ErrData naming bad.jsonl:3", err)
	}
	d, err := loadData(path, m.Config, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = d.Close() }() // read-only
	if err := d.checkSeq(8); !errors.Is(err, ErrData) || !strings.Contains(err.Error(), "d.jsonl:") {
		t.Errorf("streamed record longer than the window: %v", err)
	}
}
