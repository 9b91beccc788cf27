package safetensors

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
)

// ErrNoMapping is returned by CreateMapped where writable memory maps are
// unavailable; callers then write through a Writer instead.
var ErrNoMapping = errors.New("writable mapping unavailable")

// MappedFile is a safetensors file written in place: CreateMapped writes the
// header and sizes the file, and every tensor's bytes are a slice of a
// shared, writable mapping of the file that the caller fills directly. Compared
// with a Writer this saves one copy of every byte (no write() from a user
// buffer into the page cache), which is what bounds a streaming merge.
//
// A MappedFile is not safe for concurrent Close; different tensors' slices
// may be filled concurrently. The file is complete only after Close returns
// nil; a tensor never filled reads as zeros.
type MappedFile struct {
	path  string
	f     *os.File
	m     []byte
	off   int64
	infos []TensorInfo
	index map[string]int
}

// CreateMapped creates path (which must not exist), writes the header for
// infos and meta (laid out as NewWriter would) and maps the file writable.
func CreateMapped(path string, infos []TensorInfo, meta map[string]string) (*MappedFile, error) {
	plan, header, err := planHeader(path, infos, meta)
	if err != nil {
		return nil, err
	}
	var data int64
	if len(plan) > 0 {
		data = plan[len(plan)-1].End
	}
	total := 8 + int64(len(header)) + data
	if int64(int(total)) != total {
		return nil, fmt.Errorf("safetensors: %s: %d bytes cannot be mapped: %w", path, total, ErrNoMapping)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	mf := &MappedFile{path: path, f: f, off: 8 + int64(len(header)), infos: plan, index: make(map[string]int, len(plan))}
	for i, ti := range plan {
		mf.index[ti.Name] = i
	}
	fail := func(err error) (*MappedFile, error) {
		f.Close()
		os.Remove(path)
		return nil, err
	}
	var prefix [8]byte
	binary.LittleEndian.PutUint64(prefix[:], uint64(len(header)))
	if _, err := f.Write(append(prefix[:], header...)); err != nil {
		return fail(fmt.Errorf("safetensors: %s: write header: %w", path, err))
	}
	if err := preallocate(f, total); err != nil {
		return fail(fmt.Errorf("safetensors: %s: %w", path, err))
	}
	if data > 0 {
		if mf.m, err = mmapWritable(f, total); err != nil {
			return fail(fmt.Errorf("safetensors: %s: %w", path, err))
		}
	}
	return mf, nil
}

// Infos returns the plan with its data_offsets.
func (m *MappedFile) Infos() []TensorInfo { return m.infos }

// Data returns the writable bytes of tensor name.
func (m *MappedFile) Data(name string) ([]byte, error) {
	i, ok := m.index[name]
	if !ok {
		return nil, fmt.Errorf("safetensors: %s: tensor %q is not in the plan: %w", m.path, name, ErrNotFound)
	}
	ti := m.infos[i]
	if ti.Len() == 0 {
		return nil, nil
	}
	return m.m[m.off+ti.Begin : m.off+ti.End : m.off+ti.End], nil
}

// Close unmaps the file, flushes it to stable storage (fsync) and closes it.
// The slices returned by Data must not be used afterwards.
func (m *MappedFile) Close() error {
	var err error
	if m.m != nil {
		err = munmap(m.m)
		m.m = nil
	}
	if m.f == nil {
		return err
	}
	if e := m.f.Sync(); err == nil {
		err = e
	}
	if e := m.f.Close(); err == nil {
		err = e
	}
	m.f = nil
	if err != nil {
		return fmt.Errorf("safetensors: %s: %w", m.path, err)
	}
	return nil
}
