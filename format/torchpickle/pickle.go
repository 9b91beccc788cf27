package torchpickle

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
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

func (m *machine) memoGet(i uint64) error {
	v, ok := m.memo[i]
	if !ok {
		return m.corrupt("memo key %d not found", i)
	}
	m.push(v)
	return nil
}

func (m *machine) memoPut(i uint64) error {
	v, err := m.top()
	if err != nil {
		return err
	}
	m.memo[i] = v
	return nil
}

func (m *machine) global(module, name string) error {
	g, ok := lookupGlobal(module, name)
	if !ok {
		return fmt.Errorf("%w %q", ErrUnsafeGlobal, module+"."+name)
	}
	m.push(g)
	return nil
}

// step executes one opcode; it reports true at STOP.
func (m *machine) step(op byte) (bool, error) {
	switch op {
	case opProto:
		b, err := m.read(1)
		if err != nil {
			return false, err
		}
		if b[0] > 5 {
			return false, m.corrupt("unsupported pickle protocol %d", b[0])
		}
	case opFrame:
		// A frame is only a buffering hint; its bytes are ordinary opcodes.
		if _, err := m.readLen(8); err != nil {
			return false, err
		}
	case opStop:
		return true, nil
	case opMark:
		m.marks = append(m.marks, len(m.stack))
	case opPop:
		if len(m.stack) > 0 && (len(m.marks) == 0 || len(m.stack) > m.marks[len(m.marks)-1]) {
			m.stack = m.stack[:len(m.stack)-1]
		} else if _, err := m.popMark(); err != nil { // POP of a mark pops the mark
			return false, err
		}
	case opPopMark:
		if _, err := m.popMark(); err != nil {
			return false, err
		}
	case opDup:
		v, err := m.top()
		if err != nil {
			return false, err
		}
		m.push(v)

	// Scalars.
	case opNone:
		m.push(nil)
	case opNewTrue:
		m.push(true)
	case opNewFalse:
		m.push(false)
	case opBinInt:
		b, err := m.read(4)
		if err != nil {
			return false, err
		}
		m.push(int64(int32(binary.LittleEndian.Uint32(b))))
	case opBinInt1:
		b, err := m.read(1)
		if err != nil {
			return false, err
		}
		m.push(int64(b[0]))
	case opBinInt2:
		b, err := m.read(2)
		if err != nil {
			return false, err
		}
		m.push(int64(binary.LittleEndian.Uint16(b)))
	case opLong1, opLong4:
		w := 1
		if op == opLong4 {
			w = 4
		}
		n, err := m.readLen(w)
		if err != nil {
			return false, err
		}
		if n > maxLongBytes {
			return false, m.corrupt("integer of %d bytes is too long", n)
		}
		b, _ := m.read(n)
		m.push(decodeLong(b))
	case opInt:
		s, err := m.readLine()
		if err != nil {
			return false, err
		}
		switch s {
		case "00":
			m.push(false)
		case "01":
			m.push(true)
		default:
			v, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				return false, m.corrupt("bad INT %q", s)
			}
			m.push(v)
		}
	case opLong:
		s, err := m.readLine()
		if err != nil {
			return false, err
		}
		v, err := strconv.ParseInt(strings.TrimSuffix(s, "L"), 10, 64)
		if err != nil {
			return false, m.corrupt("bad LONG %q", s)
		}
		m.push(v)
	case opFloat:
		s, err := m.readLine()
		if err != nil {
			return false, err
		}
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return false, m.corrupt("bad FLOAT %q", s)
		}
		m.push(v)
	case opBinFloat:
		b, err := m.read(8)
		if err != nil {
			return false, err
		}
		m.push(math.Float64frombits(binary.BigEndian.Uint64(b)))

	// Strings and bytes.
	case opBinUnicode, opShortBinUni, opBinUnicode8:
		w := map[byte]int{opBinUnicode: 4, opShortBinUni: 1, opBinUnicode8: 8}[op]
		n, err := m.readLen(w)
		if err != nil {
			return false, err
		}
		b, _ := m.read(n)
		if !utf8.Valid(b) {
			return false, m.corrupt("string is not valid UTF-8")
		}
		s, err := m.str(b)
		if err != nil {
			return false, err
		}
		m.push(s)
	case opBinString, opShortBinString:
		// Python 2 str: torch's legacy files use it for keys; decode as
		// Latin-1 like torch.load(encoding="latin1") would only when needed,
		// here bytes are kept as a string when valid UTF-8.
		w := 4
		if op == opShortBinString {
			w = 1
		}
		n, err := m.readLen(w)
		if err != nil {
			return false, err
		}
		b, _ := m.read(n)
		if !utf8.Valid(b) {
			b = latin1ToUTF8(b)
		}
		s, err := m.str(b)
		if err != nil {
			return false, err
		}
		m.push(s)
	case opBinBytes, opShortBinBytes, opBinBytes8, opByteArray8:
		w := map[byte]int{opBinBytes: 4, opShortBinBytes: 1, opBinBytes8: 8, opByteArray8: 8}[op]
		n, err := m.readLen(w)
		if err != nil {
			return false, err
		}
		b, _ := m.read(n)
		v, err := m.bytesVal(b)
		if err != nil {
			return false, err
		}
		m.push(v)

	// Containers.
	case opEmptyTuple:
		m.push(tuple{})
	case opTuple:
		items, err := m.popMark()
		if err != nil {
			return false, err
		}
		m.push(tuple(items))
	case opTuple1, opTuple2, opTuple3:
		n := int(op-opTuple1) + 1
		t := make(tuple, n)
		for i := n - 1; i >= 0; i-- {
			v, err := m.pop()
			if err != nil {
				return false, err
			}
			t[i] = v
		}
		m.push(t)
	case opEmptyList:
		m.push(&list{})
	case opList:
		items, err := m.popMark()
		if err != nil {
			return false, err
		}
		m.push(&list{items: items})
	case opAppend:
		v, err := m.pop()
		if err != nil {
			return false, err
		}
		if err := m.appendTo([]any{v}); err != nil {
			return false, err
		}
	case opAppends:
		items, err := m.popMark()
		if err != nil {
			return false, err
		}
		if err := m.appendTo(items); err != nil {
			return false, err
		}
	case opEmptyDict:
		m.push(newDict())
	case opDict:
		items, err := m.popMark()
		if err != nil {
			return false, err
		}
		d := newDict()
		if err := setItems(d, items); err != nil {
			return false, err
		}
		m.push(d)
	case opSetItem:
		v, err := m.pop()
		if err != nil {
			return false, err
		}
		k, err := m.pop()
		if err != nil {
			return false, err
		}
		if err := m.setInto([]any{k, v}); err != nil {
			return false, err
		}
	case opSetItems:
		items, err := m.popMark()
		if err != nil {
			return false, err
		}
		if err := m.setInto(items); err != nil {
			return false, err
		}
	case opEmptySet:
		m.push(&list{})
	case opAddItems:
		items, err := m.popMark()
		if err != nil {
			return false, err
		}
		if err := m.appendTo(items); err != nil {
			return false, err
		}
	case opFrozenSet:
		items, err := m.popMark()
		if err != nil {
			return false, err
		}
		m.push(&list{items: items})

	// Memo.
	case opBinPut:
		b, err := m.read(1)
		if err != nil {
			return false, err
		}
		return false, m.memoPut(uint64(b[0]))
	case opLongBinPut:
		b, err := m.read(4)
		if err != nil {
			return false, err
		}
		return false, m.memoPut(uint64(binary.LittleEndian.Uint32(b)))
	case opMemoize:
		return false, m.memoPut(uint64(len(m.memo)))
	case opPut:
		s, err := m.readLine()
		if err != nil {
			return false, err
		}
		i, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return false, m.corrupt("bad PUT index %q", s)
		}
		return false, m.memoPut(i)
	case opBinGet:
		b, err := m.read(1)
		if err != nil {
			return false, err
		}
		return false, m.memoGet(uint64(b[0]))
	case opLongBinGet:
		b, err := m.read(4)
		if err != nil {
			return false, err
		}
		return false, m.memoGet(uint64(binary.LittleEndian.Uint32(b)))
	case opGet:
		s, err := m.readLine()
		if err != nil {
			return false, err
		}
		i, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return false, m.corrupt("bad GET index %q", s)
		}
		return false, m.memoGet(i)

	// Globals and calls, all restricted to the allow-list.
	case opGlobal:
		module, err := m.readLine()
		if err != nil {
			return false, err
		}
		name, err := m.readLine()
		if err != nil {
			return false, err
		}
		return false, m.global(module, name)
	case opStackGlobal:
		n, err := m.pop()
		if err != nil {
			return false, err
		}
		mod, err := m.pop()
		if err != nil {
			return false, err
		}
		ms, ok1 := mod.(string)
		ns, ok2 := n.(string)
		if !ok1 || !ok2 {
			return false, m.corrupt("STACK_GLOBAL needs two strings")
		}
		return false, m.global(ms, ns)
	case opInst:
		module, err := m.readLine()
		if err != nil {
			return false, err
		}
		name, err := m.readLine()
		if err != nil {
			return false, err
		}
		g, ok := lookupGlobal(module, name)
		if !ok {
			return false, fmt.Errorf("%w %q", ErrUnsafeGlobal, module+"."+name)
		}
		args, err := m.popMark()
		if err != nil {
			return false, err
		}
		v, err := call(g, tuple(args))
		if err != nil {
			return false, err
		}
		m.push(v)
	case opObj:
		items, err := m.popMark()
		if err != nil {
			return false, err
		}
		if len(items) == 0 {
			return false, m.corrupt("OBJ without a class")
		}
		v, err := callValue(items[0], tuple(items[1:]))
		if err != nil {
			return false, err
		}
		m.push(v)
	case opReduce, opNewObj:
		args, err := m.pop()
		if err != nil {
			return false, err
		}
		fn, err := m.pop()
		if err != nil {
			return false, err
		}
		t, ok := args.(tuple)
		if !ok {
			return false, m.corrupt("call arguments are not a tuple")
		}
		v, err := callValue(fn, t)
		if err != nil {
			return false, err
		}
		m.push(v)
	case opNewObjEx:
		kwargs, err := m.pop()
		if err != nil {
			return false, err
		}
		args, err := m.pop()
		if err != nil {
			return false, err
		}
		fn, err := m.pop()
		if err != nil {
			return false, err
		}
		t, ok := args.(tuple)
		if kw, isDict := kwargs.(*dict); !ok || !isDict || len(kw.keys) != 0 {
			return false, m.corrupt("NEWOBJ_EX with keyword arguments is not supported")
		}
		v, err := callValue(fn, t)
		if err != nil {
			return false, err
		}
		m.push(v)
	case opBuild:
		// BUILD sets an object's attributes (an OrderedDict's _metadata, a
		// Parameter's hooks). None of them matter for the weights, and our
		// objects are data, so the state is dropped.
		if _, err := m.pop(); err != nil {
			return false, err
		}
		if _, err := m.top(); err != nil {
			return false, err
		}
	case opBinPersID:
		pid, err := m.pop()
		if err != nil {
			return false, err
		}
		if m.persistentLoad == nil {
			return false, m.corrupt("persistent id in a pickle that allows none")
		}
		v, err := m.persistentLoad(pid)
		if err != nil {
			return false, err
		}
		m.push(v)

	case opPersID, opString, opUnicode:
		return false, m.corrupt("protocol-0 opcode %q is not used by torch and not supported", op)
	case opExt1, opExt2, opExt4:
		return false, fmt.Errorf("%w: extension registry code (EXT opcode)", ErrUnsafeGlobal)
	case opNextBuffer, opReadonlyBuffer:
		return false, m.corrupt("out-of-band buffers are not supported")
	default:
		return false, m.corrupt("unknown opcode")
	}
	return false, nil
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
