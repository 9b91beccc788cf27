package train

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"sync"
)

// streamAbove is the JSONL size from which LoadData streams the records
// from disk instead of holding them: the file is scanned once (every
// record checked; its offset and line kept) and records are read and
// tokenized again as batches need them, the next batch's in the
// background. What stays in memory is about 28 bytes a record (offset,
// line, and the sampler's permutations of two epochs), whatever the
// records' length.
const streamAbove = 256 << 20

// recordFile is a JSONL file read a record at a time.
type recordFile struct {
	f      *os.File
	cfg    Config
	enc    encoder // how the records' text becomes tokens
	off    []int64 // byte offset of each record's line
	line   []int32 // its line number (blank lines are not records)
	maxLen int     // the longest record, in tokens
	maxAt  int     // the line of the first longest one
	tokens int64   // tokens of all records

	mu   sync.Mutex
	next map[int]chan streamed // records being read ahead, by index
}

// streamed is a record read ahead, or the error reading it.
type streamed struct {
	r   Record
	err error
}

// openRecords scans the JSONL file at path: every record parsed and
// checked as LoadData checks it (errors name the line), its offset kept,
// its tokens dropped.
func openRecords(path string, c Config, enc encoder) (*Dataset, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("train: data: %w", err)
	}
	rf := &recordFile{f: f, cfg: c, enc: enc, next: map[int]chan streamed{}}
	d := &Dataset{Path: path, file: rf}
	br := bufio.NewReaderSize(f, 1<<20)
	var off int64
	line := 0
	for {
		b, err := br.ReadBytes('\n')
		if len(b) > 0 {
			line++
			start := off
			off += int64(len(b))
			if t := bytes.TrimSpace(b); len(t) > 0 {
				rec, err := d.checkRecord(t, line)
				if err != nil {
					_ = f.Close() // read-only
					return nil, err
				}
				rf.off, rf.line = append(rf.off, start), append(rf.line, int32(line))
				rf.tokens += int64(len(rec.Tokens))
				d.TextBytes += recordBytes(rec, d.Kind, enc)
				if len(rec.Tokens) > rf.maxLen {
					rf.maxLen, rf.maxAt = len(rec.Tokens), line
				}
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			_ = f.Close() // read-only
			return nil, fmt.Errorf("train: %s:%d: %w", path, line+1, err)
		}
	}
	if len(rf.off) == 0 {
		_ = f.Close() // read-only
		return nil, fmt.Errorf("train: %s: %w: no records", path, ErrData)
	}
	return d, nil
}

// checkRecord parses line's record b as LoadData does and checks it
// against the data set's kind so far.
func (d *Dataset) checkRecord(b []byte, line int) (Record, error) {
	c := d.cfg()
	rec, kind, err := parseRecord(b, c, d.file.enc)
	if err != nil {
		return Record{}, fmt.Errorf("train: %s:%d: %w: %v", d.Path, line, ErrData, err)
	}
	if d.Kind == "" {
		d.Kind = kind
	} else if d.Kind != kind {
		return Record{}, fmt.Errorf("train: %s:%d: %w: record is %s but earlier ones are %s", d.Path, line, ErrData, kind, d.Kind)
	}
	if len(rec.Tokens) > c.MaxPositions {
		return Record{}, fmt.Errorf("train: %s:%d: %w: %d tokens, longer than the model allows (max_position_embeddings %d)", d.Path, line, ErrData, len(rec.Tokens), c.MaxPositions)
	}
	rec.Line = line
	return rec, nil
}

// cfg is the model config a streamed data set was checked against.
func (d *Dataset) cfg() Config { return d.file.cfg }

// read reads and parses record i from the file.
func (rf *recordFile) read(d *Dataset, i int) (Record, error) {
	end := int64(-1)
	if i+1 < len(rf.off) {
		end = rf.off[i+1]
	}
	var b []byte
	if end >= 0 {
		b = make([]byte, end-rf.off[i])
		if _, err := rf.f.ReadAt(b, rf.off[i]); err != nil {
			return Record{}, fmt.Errorf("train: %s:%d: %w", d.Path, rf.line[i], err)
		}
	} else {
		sr := io.NewSectionReader(rf.f, rf.off[i], 1<<40)
		var err error
		if b, err = bufio.NewReader(sr).ReadBytes('\n'); err != nil && err != io.EOF {
			return Record{}, fmt.Errorf("train: %s:%d: %w", d.Path, rf.line[i], err)
		}
	}
	rec, _, err := parseRecord(bytes.TrimSpace(b), rf.cfg, rf.enc)
	if err != nil {
		// The file changed since it was scanned.
		return Record{}, fmt.Errorf("train: %s:%d: %w: %v", d.Path, rf.line[i], ErrData, err)
	}
	rec.Line = int(rf.line[i])
	return rec, nil
}

// record returns record i: from memory, or from the file (taking it from
// the read-ahead when it was asked for).
func (d *Dataset) record(i int) (Record, error) {
	if d.file == nil {
		return d.Records[i], nil
	}
	rf := d.file
	rf.mu.Lock()
	ch, ok := rf.next[i]
	delete(rf.next, i)
	rf.mu.Unlock()
	if ok {
		s := <-ch
		return s.r, s.err
	}
	return rf.read(d, i)
}

// readAhead starts reading records idx in the background; record takes
// them from there. Order and content do not depend on timing: only when
// they are read.
func (d *Dataset) readAhead(idx []int) {
	if d.file == nil {
		return
	}
	rf := d.file
	chs := make([]chan streamed, len(idx))
	rf.mu.Lock()
	for k, i := range idx {
		if _, ok := rf.next[i]; ok {
			continue
		}
		chs[k] = make(chan streamed, 1)
		rf.next[i] = chs[k]
	}
	rf.mu.Unlock()
	go func() {
		for k, i := range idx {
			if chs[k] == nil {
				continue
			}
			r, err := rf.read(d, i)
			chs[k] <- streamed{r, err}
		}
	}()
}

// numRecords is how many records d has (0 for a text stream).
func (d *Dataset) numRecords() int {
	if d.file != nil {
		return len(d.file.off)
	}
	return len(d.Records)
}

// Close releases the file a streamed data set reads (a no-op for data
// held in memory).
func (d *Dataset) Close() error {
	if d.file == nil {
		return nil
	}
	return d.file.f.Close()
}
