package torchpickle

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/big"
	"unicode/utf8"
)

// machine is a minimal pickle virtual machine. It implements the opcodes of
// protocols 0-5 that describe data (containers, scalars, strings, memo,
// frames) plus GLOBAL/STACK_GLOBAL/REDUCE/NEWOBJ/BUILD restricted to the
// allow-list in globals.go, and BINPERSID which it hands to persistentLoad.
// It is iterative (no recursion), so nesting depth cannot overflow the Go
// stack, and it charges strings and bytes to the budget.
type machine struct {
	data  []byte
	pos   int
	stack []any
	marks []int
	memo  map[uint64]any
	b     *budget
	// persistentLoad resolves a persistent id (a tuple such as
	// ('storage', FloatStorage, '0', 'cpu', 12)) to a value.
	persistentLoad func(pid any) (any, error)
}

// Opcodes (names as in CPython's pickletools).
const (
	opMark           = '('
	opStop           = '.'
	opPop            = '0'
	opPopMark        = '1'
	opDup            = '2'
	opFloat          = 'F'
	opInt            = 'I'
	opBinInt         = 'J'
	opBinInt1        = 'K'
	opLong           = 'L'
	opBinInt2        = 'M'
	opNone           = 'N'
	opPersID         = 'P'
	opBinPersID      = 'Q'
	opReduce         = 'R'
	opString         = 'S'
	opBinString      = 'T'
	opShortBinString = 'U'
	opUnicode        = 'V'
	opBinUnicode     = 'X'
	opAppend         = 'a'
	opBuild          = 'b'
	opGlobal         = 'c'
	opDict           = 'd'
	opEmptyDict      = '}'
	opAppends        = 'e'
	opGet            = 'g'
	opBinGet         = 'h'
	opInst           = 'i'
	opLongBinGet     = 'j'
	opList           = 'l'
	opEmptyList      = ']'
	opObj            = 'o'
	opPut            = 'p'
	opBinPut         = 'q'
	opLongBinPut     = 'r'
	opSetItem        = 's'
	opTuple          = 't'
	opEmptyTuple     = ')'
	opSetItems       = 'u'
	opBinFloat       = 'G'
	opProto          = 0x80
	opNewObj         = 0x81
	opExt1           = 0x82
	opExt2           = 0x83
	opExt4           = 0x84
	opTuple1         = 0x85
	opTuple2         = 0x86
	opTuple3         = 0x87
	opNewTrue        = 0x88
	opNewFalse       = 0x89
	opLong1          = 0x8a
	opLong4          = 0x8b
	opBinBytes       = 'B'
	opShortBinBytes  = 'C'
	opShortBinUni    = 0x8c
	opBinUnicode8    = 0x8d
	opBinBytes8      = 0x8e
	opEmptySet       = 0x8f
	opAddItems       = 0x90
	opFrozenSet      = 0x91
	opNewObjEx       = 0x92
	opStackGlobal    = 0x93
	opMemoize        = 0x94
	opFrame          = 0x95
	opByteArray8     = 0x96
	opNextBuffer     = 0x97
	opReadonlyBuffer = 0x98
)

// maxLongBytes bounds LONG1/LONG4 integers: torch only pickles small ints
// and the 10-byte legacy magic number.
const maxLongBytes = 64

func newMachine(data []byte, b *budget, pl func(any) (any, error)) *machine {
	return &machine{data: data, memo: map[uint64]any{}, b: b, persistentLoad: pl}
}

// run executes one pickle starting at m.pos and returns its value; m.pos is
// left just after the STOP opcode.
func (m *machine) run() (any, error) {
	m.stack = m.stack[:0]
	m.marks = m.marks[:0]
	clear(m.memo)
	for {
		at := m.pos
		if m.pos >= len(m.data) {
			return nil, fmt.Errorf("%w: pickle truncated at offset %d (no STOP)", ErrCorrupt, at)
		}
		op := m.data[m.pos]
		m.pos++
		done, err := m.step(op)
		if err != nil {
			return nil, fmt.Errorf("pickle offset %d (opcode 0x%02x): %w", at, op, err)
		}
		if done {
			v, err := m.pop()
			if err != nil {
				return nil, fmt.Errorf("pickle offset %d (STOP): %w", at, err)
			}
			return v, nil
		}
	}
}

func (m *machine) corrupt(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrCorrupt}, args...)...)
}

func (m *machine) read(n int) ([]byte, error) {
	if n < 0 || n > len(m.data)-m.pos {
		return nil, m.corrupt("needs %d bytes, only %d left", n, len(m.data)-m.pos)
	}
	b := m.data[m.pos : m.pos+n]
	m.pos += n
	return b, nil
}

func (m *machine) readLen(width int) (int, error) {
	b, err := m.read(width)
	if err != nil {
		return 0, err
	}
	var n uint64
	switch width {
	case 1:
		n = uint64(b[0])
	case 4:
		n = uint64(binary.LittleEndian.Uint32(b))
	case 8:
		n = binary.LittleEndian.Uint64(b)
	}
	if n > uint64(len(m.data)-m.pos) {
		return 0, m.corrupt("length %d exceeds the %d bytes left", n, len(m.data)-m.pos)
	}
	return int(n), nil
}

func (m *machine) readLine() (string, error) {
	i := bytes.IndexByte(m.data[m.pos:min(len(m.data), m.pos+4096)], '\n')
	if i < 0 {
		return "", m.corrupt("unterminated text argument")
	}
	s := string(m.data[m.pos : m.pos+i])
	m.pos += i + 1
	return s, nil
}

func (m *machine) push(v any) { m.stack = append(m.stack, v) }

func (m *machine) pop() (any, error) {
	if len(m.stack) == 0 || (len(m.marks) > 0 && len(m.stack) <= m.marks[len(m.marks)-1]) {
		return nil, m.corrupt("stack underflow")
	}
	v := m.stack[len(m.stack)-1]
	m.stack = m.stack[:len(m.stack)-1]
	return v, nil
}

func (m *machine) top() (any, error) {
	if len(m.stack) == 0 || (len(m.marks) > 0 && len(m.stack) <= m.marks[len(m.marks)-1]) {
		return nil, m.corrupt("stack underflow")
	}
	return m.stack[len(m.stack)-1], nil
}

// popMark returns the items pushed since the last MARK and removes them and
// the mark. The returned slice is a copy the caller may keep.
func (m *machine) popMark() ([]any, error) {
	if len(m.marks) == 0 {
		return nil, m.corrupt("no MARK on the stack")
	}
	k := m.marks[len(m.marks)-1]
	m.marks = m.marks[:len(m.marks)-1]
	items := append([]any(nil), m.stack[k:]...)
	m.stack = m.stack[:k]
	return items, nil
}

func (m *machine) str(b []byte) (string, error) {
	if err := m.b.take(int64(len(b)), "pickle string"); err != nil {
		return "", err
	}
	return string(b), nil
}

func (m *machine) bytesVal(b []byte) ([]byte, error) {
	if err := m.b.take(int64(len(b)), "pickle bytes"); err != nil {
		return nil, err
	}
	return append([]byte(nil), b...), nil
}

// step executes one opcode; it reports true at STOP.
func (m *machine) step(op byte) (bool, error) {
	if op == opStop {
		return true, nil
	}
	h := opcodes[op]
	if h == nil {
		return false, m.corrupt("unknown opcode")
	}
	return false, h(m, op)
}

func (m *machine) appendTo(items []any) error {
	t, err := m.top()
	if err != nil {
		return err
	}
	l, ok := t.(*list)
	if !ok {
		return m.corrupt("APPEND to a %s", typeName(t))
	}
	l.items = append(l.items, items...)
	return nil
}

func (m *machine) setInto(items []any) error {
	t, err := m.top()
	if err != nil {
		return err
	}
	d, ok := t.(*dict)
	if !ok {
		return m.corrupt("SETITEM on a %s", typeName(t))
	}
	return setItems(d, items)
}

func setItems(d *dict, items []any) error {
	if len(items)%2 != 0 {
		return fmt.Errorf("%w: odd number of items for a dict", ErrCorrupt)
	}
	for i := 0; i < len(items); i += 2 {
		d.set(items[i], items[i+1])
	}
	return nil
}

// decodeLong decodes a little-endian two's-complement integer.
func decodeLong(b []byte) any {
	if len(b) == 0 {
		return int64(0)
	}
	if len(b) <= 8 {
		var u uint64
		for i := len(b) - 1; i >= 0; i-- {
			u = u<<8 | uint64(b[i])
		}
		shift := uint(64 - 8*len(b))
		return int64(u<<shift) >> shift // sign-extend
	}
	be := make([]byte, len(b))
	for i := range b {
		be[len(b)-1-i] = b[i]
	}
	v := new(big.Int).SetBytes(be)
	if b[len(b)-1]&0x80 != 0 {
		v.Sub(v, new(big.Int).Lsh(big.NewInt(1), uint(8*len(b))))
	}
	return v
}

func latin1ToUTF8(b []byte) []byte {
	out := make([]byte, 0, len(b)*2)
	for _, c := range b {
		out = utf8.AppendRune(out, rune(c))
	}
	return out
}

// typeName names a value's Python type for error messages (never its value:
// values may be huge or cyclic).
func typeName(v any) string {
	switch v := v.(type) {
	case nil:
		return "None"
	case bool:
		return "bool"
	case int64, *big.Int:
		return "int"
	case float64:
		return "float"
	case string:
		return "str"
	case []byte:
		return "bytes"
	case tuple:
		return "tuple"
	case *list:
		return "list"
	case *dict:
		return "dict"
	case global:
		return "global " + v.module + "." + v.name
	case *storage:
		return "storage"
	case *tensorRef:
		return "tensor"
	}
	return fmt.Sprintf("%T", v)
}
