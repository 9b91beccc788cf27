package torchpickle

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/deltactl/deltactl/format"
)

// StateDict is what a torch checkpoint holds, flattened.
type StateDict struct {
	// Tensors in pickle order. Nested dicts, lists and tuples are
	// flattened with "." ("layer1.weight", "state.0.exp_avg"); a lone
	// top-level tensor is named "tensor". Contiguous tensors alias the
	// bytes read from the file; tensors sharing a storage share bytes.
	Tensors []*format.Tensor
	// Metadata holds scalar leaves (str, int, float, bool) under their
	// flattened names, e.g. "epoch" -> "42"; nil when there are none.
	Metadata map[string]string
}

// Load reads the torch checkpoint at path.
func Load(path string) (*StateDict, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("torchpickle: %w", err)
	}
	defer f.Close() // read-only
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("torchpickle: %w", err)
	}
	return Read(f, st.Size(), path)
}

// Read reads a torch checkpoint of size bytes from r; name is used in
// errors. It never executes code from the file: see the package doc for
// the allow-list and the resource bounds.
func Read(r io.ReaderAt, size int64, name string) (*StateDict, error) {
	sd, err := read(r, size)
	if err != nil {
		return nil, fmt.Errorf("torchpickle: %s: %w", name, err)
	}
	return sd, nil
}

func read(r io.ReaderAt, size int64) (*StateDict, error) {
	var head [4]byte
	if size < int64(len(head)) {
		return nil, fmt.Errorf("%w: only %d bytes", ErrNotTorch, size)
	}
	if _, err := r.ReadAt(head[:], 0); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("read: %w", err)
	}
	b := newBudget(size)
	var (
		obj any
		err error
	)
	switch {
	case bytes.Equal(head[:], []byte("PK\x03\x04")), bytes.Equal(head[:], []byte("PK\x05\x06")):
		obj, err = readZip(r, size, b)
	case head[0] == opProto:
		obj, err = readLegacy(r, size, b)
	default:
		return nil, fmt.Errorf("%w: starts with % x, neither a zip archive nor a pickle", ErrNotTorch, head)
	}
	if err != nil {
		return nil, err
	}
	f := &flattener{b: b, metadata: map[string]string{}, seen: map[string]bool{}}
	if err := f.walk("", obj, 0); err != nil {
		return nil, err
	}
	sd := &StateDict{Tensors: make([]*format.Tensor, 0, len(f.refs))}
	for _, nr := range f.refs {
		t, err := materialize(nr.name, nr.ref, b)
		if err != nil {
			return nil, err
		}
		sd.Tensors = append(sd.Tensors, t)
	}
	if len(f.metadata) > 0 {
		sd.Metadata = f.metadata
	}
	return sd, nil
}
