package torchpickle

import (
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// opHandler executes one opcode (op, already consumed) on m.
type opHandler func(m *machine, op byte) error

// opcodes maps each supported opcode to its handler; a nil entry is an
// unknown opcode. STOP is handled by step itself. Opcodes that differ only
// in the width of their argument share a handler.
var opcodes = [256]opHandler{
	opProto: (*machine).doProto,
	opFrame: (*machine).doFrame,
	opMark:  (*machine).doMark,
	opPop:   (*machine).doPop,
	opPopMark: func(m *machine, _ byte) error {
		_, err := m.popMark()
		return err
	},
	opDup: (*machine).doDup,

	// Scalars.
	opNone:     (*machine).doConst,
	opNewTrue:  (*machine).doConst,
	opNewFalse: (*machine).doConst,
	opBinInt:   (*machine).doBinInt,
	opBinInt1:  (*machine).doBinInt,
	opBinInt2:  (*machine).doBinInt,
	opLong1:    (*machine).doLongBin,
	opLong4:    (*machine).doLongBin,
	opInt:      (*machine).doIntText,
	opLong:     (*machine).doLongText,
	opFloat:    (*machine).doFloatText,
	opBinFloat: (*machine).doBinFloat,

	// Strings and bytes.
	opBinUnicode:     (*machine).doUnicode,
	opShortBinUni:    (*machine).doUnicode,
	opBinUnicode8:    (*machine).doUnicode,
	opBinString:      (*machine).doBinString,
	opShortBinString: (*machine).doBinString,
	opBinBytes:       (*machine).doBytes,
	opShortBinBytes:  (*machine).doBytes,
	opBinBytes8:      (*machine).doBytes,
	opByteArray8:     (*machine).doBytes,

	// Containers. Sets become lists: torch never pickles a set of weights.
	opEmptyTuple: func(m *machine, _ byte) error { m.push(tuple{}); return nil },
	opTuple:      (*machine).doTuple,
	opTuple1:     (*machine).doTupleN,
	opTuple2:     (*machine).doTupleN,
	opTuple3:     (*machine).doTupleN,
	opEmptyList:  func(m *machine, _ byte) error { m.push(&list{}); return nil },
	opEmptySet:   func(m *machine, _ byte) error { m.push(&list{}); return nil },
	opList:       (*machine).doList,
	opFrozenSet:  (*machine).doList,
	opAppend:     (*machine).doAppend,
	opAppends:    (*machine).doAppends,
	opAddItems:   (*machine).doAppends,
	opEmptyDict:  func(m *machine, _ byte) error { m.push(newDict()); return nil },
	opDict:       (*machine).doDict,
	opSetItem:    (*machine).doSetItem,
	opSetItems:   (*machine).doSetItems,

	// Memo.
	opPut:        (*machine).doMemoPut,
	opBinPut:     (*machine).doMemoPut,
	opLongBinPut: (*machine).doMemoPut,
	opMemoize:    (*machine).doMemoPut,
	opGet:        (*machine).doMemoGet,
	opBinGet:     (*machine).doMemoGet,
	opLongBinGet: (*machine).doMemoGet,

	// Globals and calls, all restricted to the allow-list.
	opGlobal:      (*machine).doGlobal,
	opStackGlobal: (*machine).doStackGlobal,
	opInst:        (*machine).doInst,
	opObj:         (*machine).doObj,
	opReduce:      (*machine).doReduce,
	opNewObj:      (*machine).doReduce,
	opNewObjEx:    (*machine).doNewObjEx,
	opBuild:       (*machine).doBuild,
	opBinPersID:   (*machine).doBinPersID,

	// Refused.
	opPersID:         (*machine).doProtocol0,
	opString:         (*machine).doProtocol0,
	opUnicode:        (*machine).doProtocol0,
	opExt1:           (*machine).doExt,
	opExt2:           (*machine).doExt,
	opExt4:           (*machine).doExt,
	opNextBuffer:     (*machine).doBuffer,
	opReadonlyBuffer: (*machine).doBuffer,
}

func (m *machine) doProto(byte) error {
	b, err := m.read(1)
	if err != nil {
		return err
	}
	if b[0] > 5 {
		return m.corrupt("unsupported pickle protocol %d", b[0])
	}
	return nil
}

// doFrame skips a frame header: a frame is only a buffering hint, its bytes
// are ordinary opcodes.
func (m *machine) doFrame(byte) error {
	_, err := m.readLen(8)
	return err
}

func (m *machine) doMark(byte) error {
	m.marks = append(m.marks, len(m.stack))
	return nil
}

func (m *machine) doPop(byte) error {
	if len(m.stack) > 0 && (len(m.marks) == 0 || len(m.stack) > m.marks[len(m.marks)-1]) {
		m.stack = m.stack[:len(m.stack)-1]
		return nil
	}
	_, err := m.popMark() // POP of a mark pops the mark
	return err
}

func (m *machine) doDup(byte) error {
	return m.pushResult(m.top())
}

// doConst pushes None, True or False.
func (m *machine) doConst(op byte) error {
	switch op {
	case opNone:
		m.push(nil)
	case opNewTrue:
		m.push(true)
	case opNewFalse:
		m.push(false)
	}
	return nil
}

// doBinInt pushes BININT (int32), BININT1 (uint8) or BININT2 (uint16).
func (m *machine) doBinInt(op byte) error {
	w := map[byte]int{opBinInt: 4, opBinInt1: 1, opBinInt2: 2}[op]
	b, err := m.read(w)
	if err != nil {
		return err
	}
	switch op {
	case opBinInt:
		m.push(int64(int32(binary.LittleEndian.Uint32(b))))
	case opBinInt1:
		m.push(int64(b[0]))
	case opBinInt2:
		m.push(int64(binary.LittleEndian.Uint16(b)))
	}
	return nil
}

// doLongBin pushes a LONG1/LONG4 two's-complement integer.
func (m *machine) doLongBin(op byte) error {
	w := 1
	if op == opLong4 {
		w = 4
	}
	n, err := m.readLen(w)
	if err != nil {
		return err
	}
	if n > maxLongBytes {
		return m.corrupt("integer of %d bytes is too long", n)
	}
	b, _ := m.read(n)
	m.push(decodeLong(b))
	return nil
}

// doIntText pushes a protocol-0 INT, where "00" and "01" are the booleans.
func (m *machine) doIntText(byte) error {
	s, err := m.readLine()
	if err != nil {
		return err
	}
	switch s {
	case "00":
		m.push(false)
	case "01":
		m.push(true)
	default:
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return m.corrupt("bad INT %q", s)
		}
		m.push(v)
	}
	return nil
}

func (m *machine) doLongText(byte) error {
	s, err := m.readLine()
	if err != nil {
		return err
	}
	v, err := strconv.ParseInt(strings.TrimSuffix(s, "L"), 10, 64)
	if err != nil {
		return m.corrupt("bad LONG %q", s)
	}
	m.push(v)
	return nil
}

func (m *machine) doFloatText(byte) error {
	s, err := m.readLine()
	if err != nil {
		return err
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return m.corrupt("bad FLOAT %q", s)
	}
	m.push(v)
	return nil
}

func (m *machine) doBinFloat(byte) error {
	b, err := m.read(8)
	if err != nil {
		return err
	}
	m.push(math.Float64frombits(binary.BigEndian.Uint64(b)))
	return nil
}

// doUnicode pushes a BINUNICODE, SHORT_BINUNICODE or BINUNICODE8 string.
func (m *machine) doUnicode(op byte) error {
	w := map[byte]int{opBinUnicode: 4, opShortBinUni: 1, opBinUnicode8: 8}[op]
	n, err := m.readLen(w)
	if err != nil {
		return err
	}
	b, _ := m.read(n)
	if !utf8.Valid(b) {
		return m.corrupt("string is not valid UTF-8")
	}
	return m.pushResult(m.str(b))
}

// doBinString pushes a Python 2 str (BINSTRING, SHORT_BINSTRING): torch's
// legacy files use it for keys. The bytes are kept as a string when valid
// UTF-8 and otherwise decoded as Latin-1, as torch.load(encoding="latin1")
// would.
func (m *machine) doBinString(op byte) error {
	w := 4
	if op == opShortBinString {
		w = 1
	}
	n, err := m.readLen(w)
	if err != nil {
		return err
	}
	b, _ := m.read(n)
	if !utf8.Valid(b) {
		b = latin1ToUTF8(b)
	}
	return m.pushResult(m.str(b))
}

// doBytes pushes BINBYTES, SHORT_BINBYTES, BINBYTES8 or BYTEARRAY8.
func (m *machine) doBytes(op byte) error {
	w := map[byte]int{opBinBytes: 4, opShortBinBytes: 1, opBinBytes8: 8, opByteArray8: 8}[op]
	n, err := m.readLen(w)
	if err != nil {
		return err
	}
	b, _ := m.read(n)
	return m.pushResult(m.bytesVal(b))
}

func (m *machine) doTuple(byte) error {
	items, err := m.popMark()
	if err != nil {
		return err
	}
	m.push(tuple(items))
	return nil
}

// doTupleN builds TUPLE1, TUPLE2 or TUPLE3 from the top of the stack.
func (m *machine) doTupleN(op byte) error {
	t, err := m.popN(int(op-opTuple1) + 1)
	if err != nil {
		return err
	}
	m.push(tuple(t))
	return nil
}

// doList builds a LIST (or FROZENSET) from the items above the last mark.
func (m *machine) doList(byte) error {
	items, err := m.popMark()
	if err != nil {
		return err
	}
	m.push(&list{items: items})
	return nil
}

func (m *machine) doAppend(byte) error {
	v, err := m.pop()
	if err != nil {
		return err
	}
	return m.appendTo([]any{v})
}

// doAppends appends the items above the last mark (APPENDS, ADDITEMS).
func (m *machine) doAppends(byte) error {
	items, err := m.popMark()
	if err != nil {
		return err
	}
	return m.appendTo(items)
}

func (m *machine) doDict(byte) error {
	items, err := m.popMark()
	if err != nil {
		return err
	}
	d := newDict()
	if err := setItems(d, items); err != nil {
		return err
	}
	m.push(d)
	return nil
}

func (m *machine) doSetItem(byte) error {
	kv, err := m.popN(2)
	if err != nil {
		return err
	}
	return m.setInto(kv)
}

func (m *machine) doSetItems(byte) error {
	items, err := m.popMark()
	if err != nil {
		return err
	}
	return m.setInto(items)
}

// memoKey reads the memo key of a GET or PUT opcode: one byte (BINGET,
// BINPUT), four (LONG_BINGET, LONG_BINPUT), a decimal line (GET, PUT), or
// none for MEMOIZE, whose key is the memo's size.
func (m *machine) memoKey(op byte) (uint64, error) {
	switch op {
	case opMemoize:
		return uint64(len(m.memo)), nil
	case opBinGet, opBinPut:
		b, err := m.read(1)
		if err != nil {
			return 0, err
		}
		return uint64(b[0]), nil
	case opLongBinGet, opLongBinPut:
		b, err := m.read(4)
		if err != nil {
			return 0, err
		}
		return uint64(binary.LittleEndian.Uint32(b)), nil
	}
	s, err := m.readLine()
	if err != nil {
		return 0, err
	}
	i, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		name := "GET"
		if op == opPut {
			name = "PUT"
		}
		return 0, m.corrupt("bad %s index %q", name, s)
	}
	return i, nil
}

// doMemoPut stores the top of the stack in the memo.
func (m *machine) doMemoPut(op byte) error {
	i, err := m.memoKey(op)
	if err != nil {
		return err
	}
	v, err := m.top()
	if err != nil {
		return err
	}
	m.memo[i] = v
	return nil
}

// doMemoGet pushes a memoized value.
func (m *machine) doMemoGet(op byte) error {
	i, err := m.memoKey(op)
	if err != nil {
		return err
	}
	v, ok := m.memo[i]
	if !ok {
		return m.corrupt("memo key %d not found", i)
	}
	m.push(v)
	return nil
}

// readGlobal reads the "module\nname\n" argument of GLOBAL and INST and
// looks it up in the allow-list.
func (m *machine) readGlobal() (global, error) {
	module, err := m.readLine()
	if err != nil {
		return global{}, err
	}
	name, err := m.readLine()
	if err != nil {
		return global{}, err
	}
	return m.lookup(module, name)
}

// lookup finds module.name in the allow-list (globals.go).
func (m *machine) lookup(module, name string) (global, error) {
	g, ok := lookupGlobal(module, name)
	if !ok {
		return global{}, fmt.Errorf("%w %q", ErrUnsafeGlobal, module+"."+name)
	}
	return g, nil
}

func (m *machine) doGlobal(byte) error {
	return m.pushResult(m.readGlobal())
}

func (m *machine) doStackGlobal(byte) error {
	mn, err := m.popN(2)
	if err != nil {
		return err
	}
	ms, ok1 := mn[0].(string)
	ns, ok2 := mn[1].(string)
	if !ok1 || !ok2 {
		return m.corrupt("STACK_GLOBAL needs two strings")
	}
	return m.pushResult(m.lookup(ms, ns))
}

// doInst calls an allow-listed global named inline on the items above the
// last mark.
func (m *machine) doInst(byte) error {
	g, err := m.readGlobal()
	if err != nil {
		return err
	}
	args, err := m.popMark()
	if err != nil {
		return err
	}
	return m.pushCall(g, tuple(args))
}

// doObj calls the first item above the last mark on the others.
func (m *machine) doObj(byte) error {
	items, err := m.popMark()
	if err != nil {
		return err
	}
	if len(items) == 0 {
		return m.corrupt("OBJ without a class")
	}
	return m.pushCall(items[0], tuple(items[1:]))
}

// doReduce calls fn(*args) for REDUCE and NEWOBJ (cls.__new__(cls, *args)
// is the same call for the allow-listed classes).
func (m *machine) doReduce(byte) error {
	fa, err := m.popN(2)
	if err != nil {
		return err
	}
	t, ok := fa[1].(tuple)
	if !ok {
		return m.corrupt("call arguments are not a tuple")
	}
	return m.pushCall(fa[0], t)
}

// doNewObjEx is NEWOBJ with an empty keyword dict; keywords are refused.
func (m *machine) doNewObjEx(byte) error {
	fak, err := m.popN(3)
	if err != nil {
		return err
	}
	t, ok := fak[1].(tuple)
	if kw, isDict := fak[2].(*dict); !ok || !isDict || len(kw.keys) != 0 {
		return m.corrupt("NEWOBJ_EX with keyword arguments is not supported")
	}
	return m.pushCall(fak[0], t)
}

// doBuild drops the state BUILD would set on an object (an OrderedDict's
// _metadata, a Parameter's hooks): none of it matters for the weights, and
// our objects are data.
func (m *machine) doBuild(byte) error {
	if _, err := m.pop(); err != nil {
		return err
	}
	_, err := m.top()
	return err
}

func (m *machine) doBinPersID(byte) error {
	pid, err := m.pop()
	if err != nil {
		return err
	}
	if m.persistentLoad == nil {
		return m.corrupt("persistent id in a pickle that allows none")
	}
	return m.pushResult(m.persistentLoad(pid))
}

func (m *machine) doProtocol0(op byte) error {
	return m.corrupt("protocol-0 opcode %q is not used by torch and not supported", op)
}

func (m *machine) doExt(byte) error {
	return fmt.Errorf("%w: extension registry code (EXT opcode)", ErrUnsafeGlobal)
}

func (m *machine) doBuffer(byte) error {
	return m.corrupt("out-of-band buffers are not supported")
}

// popN pops the top n items, returned in stack order (the deepest first).
func (m *machine) popN(n int) ([]any, error) {
	items := make([]any, n)
	for i := n - 1; i >= 0; i-- {
		v, err := m.pop()
		if err != nil {
			return nil, err
		}
		items[i] = v
	}
	return items, nil
}

// pushCall calls fn (an allow-listed global) on args and pushes the result.
func (m *machine) pushCall(fn any, args tuple) error {
	return m.pushResult(callValue(fn, args))
}

// pushResult pushes v unless err is set.
func (m *machine) pushResult(v any, err error) error {
	if err != nil {
		return err
	}
	m.push(v)
	return nil
}
