// Package hf reads and writes Hugging Face model folders: config.json, the
// weights as one model.safetensors or as shards listed by
// model.safetensors.index.json (weight_map, metadata.total_size), and any
// other files (tokenizer, generation config, ...) carried along untouched.
//
// Opening a folder reads only the safetensors headers; tensors are
// memory-mapped and paged in when touched. The index is cross-checked
// against the shard headers, so a folder whose index and shards disagree is
// refused with an error naming the tensor and the files involved.
//
// Writing streams tensors in plan order into shards no larger than a given
// size, named as transformers names them (model-00001-of-00003.safetensors),
// inside a temporary folder beside the destination that is renamed into
// place on Commit: the output folder appears complete or not at all.
package hf
