package torchpickle

import "github.com/deltactl/deltactl/format"

// globalKind says what an allowed global does when called (REDUCE) or what
// it stands for.
type globalKind uint8

const (
	gOrderedDict     globalKind = iota + 1 // collections.OrderedDict
	gRebuildTensorV2                       // torch._utils._rebuild_tensor_v2
	gRebuildTensor                         // torch._utils._rebuild_tensor (pre-1.0 files)
	gRebuildParam                          // torch._utils._rebuild_parameter
	gStorageType                           // torch.FloatStorage and friends
	gCodecsEncode                          // _codecs.encode (bytes in protocol-2 pickles)
	gDType                                 // torch.float32 etc. (only carried, never called)
)

// storageTypes maps torch's typed-storage class names to our dtypes.
var storageTypes = map[string]format.DType{
	"FloatStorage":         format.F32,
	"HalfStorage":          format.F16,
	"BFloat16Storage":      format.BF16,
	"DoubleStorage":        format.F64,
	"LongStorage":          format.I64,
	"IntStorage":           format.I32,
	"ShortStorage":         format.I16,
	"CharStorage":          format.I8,
	"ByteStorage":          format.U8,
	"BoolStorage":          format.BOOL,
	"UInt16Storage":        format.U16,
	"UInt32Storage":        format.U32,
	"UInt64Storage":        format.U64,
	"Float8_e4m3fnStorage": format.F8E4M3,
	"Float8_e5m2Storage":   format.F8E5M2,
	"UntypedStorage":       format.U8,
}

// dtypeObjects maps torch dtype objects (torch.float32, ...) that may appear
// as plain values in newer pickles.
var dtypeObjects = map[string]format.DType{
	"float32": format.F32, "float": format.F32,
	"float16": format.F16, "half": format.F16,
	"bfloat16": format.BF16,
	"float64":  format.F64, "double": format.F64,
	"int64": format.I64, "long": format.I64,
	"int32": format.I32, "int": format.I32,
	"int16": format.I16, "short": format.I16,
	"int8":  format.I8,
	"uint8": format.U8,
	"bool":  format.BOOL,
}

// lookupGlobal resolves module.name against the allow-list. It never
// imports or evaluates anything: an unknown name is simply refused.
func lookupGlobal(module, name string) (global, bool) {
	g := global{module: module, name: name}
	switch module {
	case "collections":
		if name == "OrderedDict" {
			g.kind = gOrderedDict
			return g, true
		}
	case "torch._utils":
		switch name {
		case "_rebuild_tensor_v2":
			g.kind = gRebuildTensorV2
			return g, true
		case "_rebuild_tensor":
			g.kind = gRebuildTensor
			return g, true
		case "_rebuild_parameter":
			g.kind = gRebuildParam
			return g, true
		}
	case "torch":
		if dt, ok := storageTypes[name]; ok {
			g.kind, g.dtype = gStorageType, dt
			return g, true
		}
		if dt, ok := dtypeObjects[name]; ok {
			g.kind, g.dtype = gDType, dt
			return g, true
		}
	case "torch.storage":
		if name == "UntypedStorage" {
			g.kind, g.dtype = gStorageType, format.U8
			return g, true
		}
	case "_codecs":
		if name == "encode" {
			g.kind = gCodecsEncode
			return g, true
		}
	}
	return global{}, false
}
