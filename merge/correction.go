package merge

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"io"
	"math"

	"github.com/klauspost/compress/zstd"

	"github.com/deltactl/deltactl/format"
)

// CorrectionFile is the name of the side file merge --correction writes
// into the merged model folder.
//
// Format (version 1). The file is one zstd stream (so `zstd -d` opens it);
// the decompressed bytes are a sequence of records, each
//
//	uint32 little-endian n | n bytes of JSON (a correctionRecord) | payload
//
// with the payload length given by the JSON. The first record has kind
// "header" and carries the fingerprint of the deltas and weights merged;
// then one "tensor" record per base tensor whose bytes the merge changed,
// in the order the merged model was written; the last has kind "end" and
// the tensor count. A tensor record's payload is
//
//	xor_bytes bytes:  original bits XOR the bits of inverse(merged), in the
//	                  original dtype, little-endian (mostly zero)
//	8·Σnorm_lens:     the row/column norms DoRA divided by, float64 LE
//
// where inverse(merged) is the float32 unmerge of the merged tensor
// (apply.go: every update undone in reverse order with deltas from
// kernels.LoRADelta, which is bit-identical on every kernel path), rounded
// once to nearest even into the original dtype. Unmerge recomputes it and
// XORs the correction back, giving the original bit for bit; CRC-32C of
// the merged input and of the restored output are checked against the
// record.
const CorrectionFile = "deltactl-correction.zst"

const correctionVersion = 1

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// recordKind is the kind of one correction record (its JSON "kind").
type recordKind string

// The record kinds, in file order: one header, tensors, one end.
const (
	recordHeader recordKind = "header"
	recordTensor recordKind = "tensor"
	recordEnd    recordKind = "end"
)

// fingerprintReplace tags a modules_to_save tensor in the fingerprint
// (the other update kinds are tagged with their format.Method).
const fingerprintReplace = "replace"

// correctionRecord is the JSON of one record.
type correctionRecord struct {
	Kind    recordKind `json:"kind"`
	Version int        `json:"version,omitempty"`
	// header
	Deltas string `json:"deltas,omitempty"`
	// tensor
	Name        string       `json:"name,omitempty"`
	DType       format.DType `json:"dtype,omitempty"`
	MergedDType format.DType `json:"merged_dtype,omitempty"`
	Shape       []int64      `json:"shape,omitempty"`
	CRCOrig     uint32       `json:"crc32c_orig,omitempty"`
	CRCMerged   uint32       `json:"crc32c_merged,omitempty"`
	XORBytes    int64        `json:"xor_bytes,omitempty"`
	NormLens    []int        `json:"norm_lens,omitempty"`
	// end
	Tensors int `json:"tensors,omitempty"`
}

func (r *correctionRecord) payloadLen() int64 {
	n := r.XORBytes
	for _, l := range r.NormLens {
		n += 8 * int64(l)
	}
	return n
}

// fingerprint identifies the deltas and weights of a merge, so a correction
// is never applied with different ones.
func fingerprint(inputs []Input) string {
	h := sha256.New()
	put := func(b []byte) {
		var n [8]byte
		binary.LittleEndian.PutUint64(n[:], uint64(len(b)))
		h.Write(n[:])
		h.Write(b)
	}
	f64 := func(v float64) {
		var n [8]byte
		binary.LittleEndian.PutUint64(n[:], math.Float64bits(v))
		h.Write(n[:])
	}
	tensor := func(t *format.Tensor) {
		if t == nil {
			put(nil)
			return
		}
		put([]byte(t.Name + "|" + t.DType.String() + "|" + shapeStr(t.Shape)))
		put(t.Data)
	}
	for _, in := range inputs {
		f64(in.Weight)
		d := in.Delta
		for _, l := range d.LoRA {
			put([]byte(fmt.Sprintf("%s|%s|%v|%v", format.MethodLoRA, l.Target, l.FanInFanOut, l.Embedding)))
			f64(l.Scale)
			tensor(l.A)
			tensor(l.B)
			tensor(l.Bias)
			tensor(l.Magnitude)
		}
		for _, v := range d.IA3 {
			put([]byte(fmt.Sprintf("%s|%s|%v", format.MethodIA3, v.Target, v.FeedForward)))
			tensor(v.Vector)
		}
		for _, t := range d.Replace {
			put([]byte(fingerprintReplace))
			tensor(t)
		}
		for _, t := range d.Full {
			put([]byte(format.MethodFull))
			tensor(t)
		}
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

// correctionWriter streams records into a zstd stream.
type correctionWriter struct {
	zw    *zstd.Encoder
	bw    *bufio.Writer
	count int
}

func newCorrectionWriter(w io.Writer, deltas string) (*correctionWriter, error) {
	zw, err := zstd.NewWriter(w, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1))
	if err != nil {
		return nil, err
	}
	cw := &correctionWriter{zw: zw, bw: bufio.NewWriterSize(zw, 1<<20)}
	return cw, cw.record(&correctionRecord{Kind: recordHeader, Version: correctionVersion, Deltas: deltas}, nil, nil)
}

func (cw *correctionWriter) record(r *correctionRecord, xor []byte, norms [][]float64) error {
	js, err := json.Marshal(r)
	if err != nil {
		return err
	}
	var n [4]byte
	binary.LittleEndian.PutUint32(n[:], uint32(len(js)))
	cw.bw.Write(n[:])
	cw.bw.Write(js)
	cw.bw.Write(xor)
	var b [8]byte
	for _, v := range norms {
		for _, x := range v {
			binary.LittleEndian.PutUint64(b[:], math.Float64bits(x))
			cw.bw.Write(b[:])
		}
	}
	return nil
}

// tensor records one corrected tensor: orig and restored are the original
// bytes and inverse(merged) rounded into the original dtype (same length).
func (cw *correctionWriter) tensor(name string, dt, mergedDT format.DType, shape []int64, orig, restored, merged []byte, norms [][]float64) error {
	xor := make([]byte, len(orig))
	for i := range orig {
		xor[i] = orig[i] ^ restored[i]
	}
	r := &correctionRecord{Kind: recordTensor, Name: name, DType: dt, MergedDType: mergedDT, Shape: shape,
		CRCOrig: crc32.Checksum(orig, castagnoli), CRCMerged: crc32.Checksum(merged, castagnoli), XORBytes: int64(len(xor))}
	for _, v := range norms {
		r.NormLens = append(r.NormLens, len(v))
	}
	cw.count++
	return cw.record(r, xor, norms)
}

func (cw *correctionWriter) close() error {
	if err := cw.record(&correctionRecord{Kind: recordEnd, Tensors: cw.count}, nil, nil); err != nil {
		return err
	}
	if err := cw.bw.Flush(); err != nil {
		return err
	}
	return cw.zw.Close()
}

// correctionEntry is one tensor record read back.
type correctionEntry struct {
	rec   correctionRecord
	xor   []byte
	norms [][]float64
}

// correctionReader reads records in order; entries asked for out of order
// are found by reading ahead and keeping what was skipped.
type correctionReader struct {
	path    string
	zr      *zstd.Decoder
	br      *bufio.Reader
	deltas  string
	stash   map[string]*correctionEntry
	done    bool
	count   int
	total   int
	maxSize int64
	// stashed counts the payload bytes held for records read ahead; a
	// file written by merge is read in order, so only a hostile or
	// mismatched one comes near stashLimit.
	stashed int64
}

// stashLimit bounds what a correction reader keeps of records read ahead.
func (cr *correctionReader) stashLimit() int64 { return 4*cr.maxSize + 64<<20 }

func newCorrectionReader(r io.Reader, path string, maxTensorBytes int64) (*correctionReader, error) {
	zr, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(1<<40))
	if err != nil {
		return nil, fmt.Errorf("%s: %w: %v", path, ErrCorrection, err)
	}
	cr := &correctionReader{path: path, zr: zr, br: bufio.NewReaderSize(zr, 1<<20), stash: map[string]*correctionEntry{}, maxSize: maxTensorBytes}
	e, err := cr.next()
	if err != nil {
		zr.Close()
		return nil, err
	}
	if e.rec.Kind != recordHeader || e.rec.Version != correctionVersion {
		zr.Close()
		return nil, fmt.Errorf("%s: %w: not a version %d correction file (first record %q v%d)", path, ErrCorrection, correctionVersion, e.rec.Kind, e.rec.Version)
	}
	cr.deltas = e.rec.Deltas
	return cr, nil
}

func (cr *correctionReader) fail(format string, args ...any) error {
	return fmt.Errorf("%s: %w: "+format, append([]any{cr.path, ErrCorrection}, args...)...)
}

func (cr *correctionReader) next() (*correctionEntry, error) {
	var n [4]byte
	if _, err := io.ReadFull(cr.br, n[:]); err != nil {
		return nil, cr.fail("truncated: %v", err)
	}
	ln := binary.LittleEndian.Uint32(n[:])
	if ln > 1<<20 {
		return nil, cr.fail("record header of %d bytes", ln)
	}
	js := make([]byte, ln)
	if _, err := io.ReadFull(cr.br, js); err != nil {
		return nil, cr.fail("truncated: %v", err)
	}
	e := &correctionEntry{}
	if err := json.Unmarshal(js, &e.rec); err != nil {
		return nil, cr.fail("bad record: %v", err)
	}
	// Check every length before summing them (a hostile count must not
	// overflow the total) and before allocating anything.
	if e.rec.XORBytes < 0 || e.rec.XORBytes > cr.maxSize {
		return nil, cr.fail("record %q: %d correction bytes is larger than any tensor", e.rec.Name, e.rec.XORBytes)
	}
	for _, l := range e.rec.NormLens {
		if l < 0 || int64(l) > cr.maxSize/8 {
			return nil, cr.fail("record %q: norm count %d out of range", e.rec.Name, l)
		}
	}
	if e.rec.payloadLen() > cr.maxSize {
		return nil, cr.fail("record %q: payload of %d bytes is larger than any tensor", e.rec.Name, e.rec.payloadLen())
	}
	// Read in bounded steps so a truncated file claiming a huge payload
	// costs only what it holds.
	var err error
	if e.xor, err = readN(cr.br, e.rec.XORBytes); err != nil {
		return nil, cr.fail("record %q truncated: %v", e.rec.Name, err)
	}
	for _, l := range e.rec.NormLens {
		b, err := readN(cr.br, 8*int64(l))
		if err != nil {
			return nil, cr.fail("record %q truncated: %v", e.rec.Name, err)
		}
		v := make([]float64, l)
		for i := range v {
			v[i] = math.Float64frombits(binary.LittleEndian.Uint64(b[8*i:]))
		}
		e.norms = append(e.norms, v)
	}
	return e, nil
}

// readN reads exactly n bytes, growing the buffer as data arrives.
func readN(r io.Reader, n int64) ([]byte, error) {
	const step = 1 << 20
	if n <= step {
		b := make([]byte, n)
		_, err := io.ReadFull(r, b)
		return b, err
	}
	var buf bytes.Buffer
	got, err := io.CopyN(&buf, r, n)
	if err == io.EOF && got < n {
		err = io.ErrUnexpectedEOF
	}
	return buf.Bytes(), err
}

// get returns the record of tensor name, or nil when the merge recorded
// none (the tensor was copied unchanged).
func (cr *correctionReader) get(name string) (*correctionEntry, error) {
	if e, ok := cr.stash[name]; ok {
		delete(cr.stash, name)
		cr.stashed -= e.rec.payloadLen()
		return e, nil
	}
	for !cr.done {
		e, err := cr.next()
		if err != nil {
			return nil, err
		}
		switch e.rec.Kind {
		case recordEnd:
			cr.done = true
			cr.total = e.rec.Tensors
			if cr.total != cr.count {
				return nil, cr.fail("end record counts %d tensors, file has %d", cr.total, cr.count)
			}
		case recordTensor:
			cr.count++
			if e.rec.Name == name {
				return e, nil
			}
			if _, dup := cr.stash[e.rec.Name]; dup {
				return nil, cr.fail("two records for tensor %q", e.rec.Name)
			}
			cr.stashed += e.rec.payloadLen()
			if cr.stashed > cr.stashLimit() {
				return nil, cr.fail("records out of order beyond %d bytes (not written by merge for this model?)", cr.stashLimit())
			}
			cr.stash[e.rec.Name] = e
		default:
			return nil, cr.fail("unexpected record kind %q", e.rec.Kind)
		}
	}
	return nil, nil
}

// finish reads to the end and reports records never asked for (tensors the
// correction knows that the merged model does not have).
func (cr *correctionReader) finish() error {
	if _, err := cr.get("\x00"); err != nil {
		return err
	}
	for name := range cr.stash {
		return cr.fail("correction for tensor %q, which the merged model does not have", name)
	}
	return nil
}

func (cr *correctionReader) close() { cr.zr.Close() }
