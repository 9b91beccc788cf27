package safetensors

import (
	"encoding/binary"
	"fmt"
	"io"
	"os"
)

// OffsetFile is a safetensors file written tensor by tensor at known
// offsets: CreateOffset writes the header and allocates the whole file up
// front, and WriteTensor puts each tensor's bytes at its place with one
// positioned write. Allocating first matters: on ext4 here, extending a file
// write by write ran at 0.4-0.5 GB/s where positioned writes into
// preallocated space ran at 2.3 GB/s, faster than copy_file_range.
//
// WriteTensor may be called in any order and from several goroutines. The
// file is complete only after every tensor was written and Close returned
// nil; a tensor never written reads as zeros.
type OffsetFile struct {
	path  string
	f     *os.File
	off   int64
	infos []TensorInfo
	index map[string]int
}

var _ io.Closer = (*OffsetFile)(nil)

// CreateOffset creates path (which must not exist), writes the header for
// infos and meta (laid out as NewWriter would) and allocates the file.
func CreateOffset(path string, infos []TensorInfo, meta map[string]string) (*OffsetFile, error) {
	plan, header, err := planHeader(path, infos, meta)
	if err != nil {
		return nil, err
	}
	var data int64
	if len(plan) > 0 {
		data = plan[len(plan)-1].End
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	o := &OffsetFile{path: path, f: f, off: 8 + int64(len(header)), infos: plan, index: make(map[string]int, len(plan))}
	for i, ti := range plan {
		o.index[ti.Name] = i
	}
	fail := func(err error) (*OffsetFile, error) {
		_ = f.Close()       // the allocation or header error is the one to report
		_ = os.Remove(path) // best effort: nothing half-written stays behind
		return nil, fmt.Errorf("safetensors: %s: %w", path, err)
	}
	if err := preallocate(f, o.off+data); err != nil {
		return fail(err)
	}
	var prefix [8]byte
	binary.LittleEndian.PutUint64(prefix[:], uint64(len(header)))
	if _, err := f.WriteAt(append(prefix[:], header...), 0); err != nil {
		return fail(fmt.Errorf("write header: %w", err))
	}
	return o, nil
}

// Infos returns the plan with its data_offsets.
func (o *OffsetFile) Infos() []TensorInfo { return o.infos }

// WriteTensor writes tensor name's bytes, which must be exactly its size.
func (o *OffsetFile) WriteTensor(name string, b []byte) error {
	i, ok := o.index[name]
	if !ok {
		return fmt.Errorf("safetensors: %s: tensor %q is not in the plan: %w", o.path, name, ErrNotFound)
	}
	ti := o.infos[i]
	if int64(len(b)) != ti.Len() {
		return fmt.Errorf("safetensors: %s: tensor %q: %d bytes, want %d: %w", o.path, name, len(b), ti.Len(), ErrMismatch)
	}
	if err := o.writeAt(b, o.off+ti.Begin); err != nil {
		return fmt.Errorf("safetensors: %s: tensor %q: %w", o.path, name, err)
	}
	return nil
}

// Close flushes the file to stable storage (fsync) and closes it.
func (o *OffsetFile) Close() error {
	if o.f == nil {
		return nil
	}
	err := o.f.Sync()
	if e := o.f.Close(); err == nil {
		err = e
	}
	o.f = nil
	if err != nil {
		return fmt.Errorf("safetensors: %s: %w", o.path, err)
	}
	return nil
}

// writeAt writes b at off. A large tensor goes down as two positioned
// writes side by side: copying into the page cache is CPU work, and one
// writer could not keep up with the disk here (2 GB merges rose from
// 1.04-1.11 to 1.2-2.1 GB/s).
func (o *OffsetFile) writeAt(b []byte, off int64) error {
	if len(b) < parallelWriteMin {
		_, err := o.f.WriteAt(b, off)
		return err
	}
	half := len(b) / 2 &^ 4095 // split on a page boundary
	errc := make(chan error, 1)
	go func() {
		_, err := o.f.WriteAt(b[half:], off+int64(half))
		errc <- err
	}()
	_, err := o.f.WriteAt(b[:half], off)
	if e := <-errc; err == nil {
		err = e
	}
	return err
}

// parallelWriteMin is the tensor size from which writeAt splits the write.
const parallelWriteMin = 4 << 20
