package torchpickle

import (
	"encoding/binary"
	"fmt"
	"io"
	"math/big"
)

// legacyMagic is torch's MAGIC_NUMBER, the first pickle of a non-zip file.
var legacyMagic, _ = new(big.Int).SetString("1950a86a20f9469cfc6c", 16)

// legacyProtocol is torch's PROTOCOL_VERSION of the non-zip format.
const legacyProtocol = 1001

// readLegacy reads the non-zip format of torch < 1.6 (and of
// torch.save(..., _use_new_zipfile_serialization=False)):
//
//	pickle(MAGIC_NUMBER) pickle(1001) pickle(sys_info) pickle(obj)
//	pickle(storage keys) then per key: int64 numel, numel*elem_size bytes
//
// torch always writes the counts and the storage bytes little-endian in
// this format (THPStorage_writeFileRaw converts on big-endian hosts), so no
// byte swap is needed whatever sys_info says.
func readLegacy(r io.ReaderAt, size int64, b *budget) (any, error) {
	if err := b.take(size, "file"); err != nil {
		return nil, err
	}
	data := make([]byte, size)
	if _, err := r.ReadAt(data, 0); err != nil && err != io.EOF {
		return nil, fmt.Errorf("read: %w", err)
	}
	m := newMachine(data, b, nil)

	magic, err := m.run()
	if err != nil {
		return nil, fmt.Errorf("%w: magic number: %v", ErrNotTorch, err)
	}
	if v, ok := magic.(*big.Int); !ok || v.Cmp(legacyMagic) != 0 {
		return nil, fmt.Errorf("%w: pickle without torch's magic number", ErrNotTorch)
	}
	proto, err := m.run()
	if err != nil {
		return nil, fmt.Errorf("protocol version: %w", err)
	}
	if v, ok := proto.(int64); !ok || v != legacyProtocol {
		return nil, fmt.Errorf("%w: legacy protocol version %v, want %d", ErrCorrupt, proto, legacyProtocol)
	}
	if _, err := m.run(); err != nil { // sys_info: byte order and C type sizes
		return nil, fmt.Errorf("sys_info: %w", err)
	}

	table := newStorageTable(nil)
	m.persistentLoad = table.persistentLoad
	obj, err := m.run()
	if err != nil {
		return nil, fmt.Errorf("object: %w", err)
	}
	m.persistentLoad = nil
	keysV, err := m.run()
	if err != nil {
		return nil, fmt.Errorf("storage keys: %w", err)
	}
	keys, ok := asSeq(keysV)
	if !ok {
		return nil, fmt.Errorf("%w: storage keys are a %s, not a list", ErrCorrupt, typeName(keysV))
	}
	pos := int64(m.pos)
	for _, kv := range keys {
		key, ok := keyString(kv)
		if !ok {
			return nil, fmt.Errorf("%w: storage key is a %s", ErrCorrupt, typeName(kv))
		}
		s := table.byKey[key]
		if s == nil {
			return nil, fmt.Errorf("%w: storage %q is listed but no tensor uses it", ErrCorrupt, key)
		}
		if s.data != nil {
			return nil, fmt.Errorf("%w: storage %q listed twice", ErrCorrupt, key)
		}
		if size-pos < 8 {
			return nil, fmt.Errorf("%w: storage %q: truncated at offset %d", ErrCorrupt, key, pos)
		}
		n := int64(binary.LittleEndian.Uint64(data[pos:]))
		pos += 8
		if n != s.numel {
			return nil, fmt.Errorf("%w: storage %q has %d elements, the pickle says %d", ErrCorrupt, key, n, s.numel)
		}
		nbytes := n * int64(s.dtype.Size())
		if nbytes > size-pos {
			return nil, fmt.Errorf("%w: storage %q: %d bytes at offset %d run past the end of the file (%d bytes)", ErrCorrupt, key, nbytes, pos, size)
		}
		s.data = data[pos : pos+nbytes : pos+nbytes]
		pos += nbytes
	}
	return obj, nil
}
