package torchpickle

import (
	"archive/zip"
	"fmt"
	"io"
	"path"
	"strings"
)

// readZip reads the zip format of torch >= 1.6.
func readZip(r io.ReaderAt, size int64, b *budget) (any, error) {
	zr, err := zip.NewReader(r, size)
	if err != nil {
		return nil, fmt.Errorf("%w: zip: %v", ErrNotTorch, err)
	}
	files := make(map[string]*zip.File, len(zr.File))
	var pkl *zip.File
	for _, f := range zr.File {
		files[f.Name] = f
		// The record lives at <prefix>/data.pkl; prefix is the archive name
		// torch chose (the file's base name at save time).
		if path.Base(f.Name) == "data.pkl" && strings.Count(f.Name, "/") == 1 {
			if pkl != nil {
				return nil, fmt.Errorf("%w: zip holds two records (%s, %s)", ErrCorrupt, pkl.Name, f.Name)
			}
			pkl = f
		}
	}
	if pkl == nil {
		return nil, fmt.Errorf("%w: zip archive without <name>/data.pkl", ErrNotTorch)
	}
	prefix := path.Dir(pkl.Name)

	bigEndian := false
	if f := files[prefix+"/byteorder"]; f != nil {
		bo, err := readEntry(f, b, 16)
		if err != nil {
			return nil, err
		}
		switch strings.TrimSpace(string(bo)) {
		case "little":
		case "big":
			bigEndian = true
		default:
			return nil, fmt.Errorf("%w: byteorder %q", ErrCorrupt, bo)
		}
	}

	pickle, err := readEntry(pkl, b, -1)
	if err != nil {
		return nil, err
	}
	table := newStorageTable(func(s *storage) error {
		name := prefix + "/data/" + s.key
		f := files[name]
		if f == nil {
			return fmt.Errorf("%w: storage %q: no %s in the archive", ErrCorrupt, s.key, name)
		}
		nbytes := s.numel * int64(s.dtype.Size())
		if f.UncompressedSize64 < uint64(nbytes) {
			return fmt.Errorf("%w: storage %q: %s[%d] needs %d bytes, %s has %d", ErrCorrupt, s.key, s.dtype, s.numel, nbytes, name, f.UncompressedSize64)
		}
		data, err := readEntry(f, b, -1)
		if err != nil {
			return err
		}
		s.data = data[:nbytes:nbytes]
		if bigEndian {
			swapBytes(s.data, s.dtype.Size())
		}
		return nil
	})
	m := newMachine(pickle, b, table.persistentLoad)
	obj, err := m.run()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", pkl.Name, err)
	}
	return obj, nil
}

// readEntry reads one zip entry fully, charging its size to the budget.
// max < 0 means no limit beyond the budget.
func readEntry(f *zip.File, b *budget, max int64) ([]byte, error) {
	n := f.UncompressedSize64
	if max >= 0 && n > uint64(max) {
		return nil, fmt.Errorf("%w: %s is %d bytes, at most %d expected", ErrCorrupt, f.Name, n, max)
	}
	if n > 1<<62 {
		return nil, fmt.Errorf("%w: %s: size %d", ErrCorrupt, f.Name, n)
	}
	if err := b.take(int64(n), f.Name); err != nil {
		return nil, err
	}
	rc, err := f.Open()
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrCorrupt, f.Name, err)
	}
	defer rc.Close() // read-only; a bad CRC shows in ReadFull
	buf := make([]byte, n)
	if _, err := io.ReadFull(rc, buf); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrCorrupt, f.Name, err)
	}
	// Reading to EOF makes archive/zip verify the entry's CRC-32.
	var one [1]byte
	if k, err := rc.Read(one[:]); k != 0 || err != io.EOF {
		if err == nil || err == io.EOF {
			err = fmt.Errorf("longer than its declared %d bytes", n)
		}
		return nil, fmt.Errorf("%w: %s: %v", ErrCorrupt, f.Name, err)
	}
	return buf, nil
}
