// Package torchpickle reads legacy PyTorch checkpoints (pytorch_model.bin,
// adapter_model.bin, *.pt written by torch.save) without running anything
// from them.
//
// Two container formats are understood:
//
//   - the zip format of torch >= 1.6: <prefix>/data.pkl holds the object
//     pickle, <prefix>/data/<key> one storage each, and the optional
//     <prefix>/byteorder says "little" or "big";
//   - the older non-zip format: a magic-number pickle, a protocol pickle, a
//     sys_info pickle, the object pickle, a pickled list of storage keys,
//     and then each storage as an int64 element count followed by its raw
//     bytes.
//
// The object pickle is run by a small pickle machine of our own that knows
// only plain containers (dict, OrderedDict, list, tuple, set, scalars,
// strings, bytes) and the few torch callables that rebuild tensors
// (torch._utils._rebuild_tensor_v2, _rebuild_tensor, _rebuild_parameter)
// from typed storages (torch.FloatStorage and friends). Any other global is
// refused with ErrUnsafeGlobal naming it; nothing is imported or called.
//
// Every allocation is charged against a budget proportional to the file
// size (see budget.go), so a hostile file cannot make the reader allocate
// much more memory than the file itself occupies.
package torchpickle
