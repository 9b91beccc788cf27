// Package registry is deltactl's content-addressed store of base models and
// their deltas. It sits on a store.Backend (a folder or
// an S3 bucket) and keeps three kinds of objects:
//
//   - blobs: the bytes of one tensor or tensor chunk, one safetensors header
//     or one non-tensor file, addressed by the sha256 of those decoded bytes and
//     stored as a codec frame under blobs/sha256/<2 hex>/<64 hex>;
//   - manifests: canonical JSON describing a model folder or a delta, addressed
//     by the sha256 of their bytes, under manifests/sha256/<64 hex>;
//   - refs: refs/<name>/_tags/<tag>, holding one manifest digest; the only
//     mutable objects, moved by compare-and-swap.
//
// The "_tags" level is there because names nest ("team/gpt2"): with a plain
// refs/<name>/<tag> the ref "a:b" (file refs/a/b) and any tag of the name
// "a/b" (folder refs/a/b/) would need the same path as a file and as a
// folder. A name component cannot start with '_', so "_tags" never collides
// with a name, and each name's tags sit in a folder of their own.
//
// A fourth kind, locks/<random>, holds short-lived JSON lock objects: push,
// tag and copy write one before their first existence check and gc writes
// an exclusive one before it lists anything, so gc never sweeps a blob that
// a push found present and is about to reference (lock.go has the protocol).
//
// A fifth kind, logs/<name>/_tags/<tag>/<time>-<random>, holds the ref log:
// one create-only JSON object per move of a tag (history.go), so the log
// needs neither appends nor locks and concurrent moves never lose entries.
//
// Pushes write blobs, then the manifest, then the ref, so a crash leaves only
// unreferenced objects that gc collects once they are older than its grace
// period. Pulls re-hash every byte they write and rename a finished folder
// into place, so a pulled folder is either complete and verified or absent
// (an empty mount point, which cannot be renamed over, is filled in place).
//
// Nothing read from storage is trusted before it is checked: refs and
// manifests are read with a size cap, manifests are parsed strictly (one
// JSON object, no repeated key, safe UTF-8 paths, tensors that tile their
// file, every chunk within MaxChunkSize, sizes that add up) before pull
// creates or allocates anything, a frame is decoded only to the size its
// manifest claims, and an XOR base named by many chunks is decoded once and
// shared (basecache.go). FuzzPullManifest drives show, pull, verify and gc
// over mutated manifests and frames under an allocation bound.
//
// Transfers are pipelined across chunks (32 MiB by default, see
// DefaultChunkSize): Workers+GOMAXPROCS chunks are in flight, hashing,
// encoding and decoding hold one of GOMAXPROCS CPU tokens, so CPU work on
// some chunks overlaps the network I/O of others. Push picks a chunk's
// encoding on a small sample and stores incompressible chunks raw without
// compressing them; raw frames travel without being copied. Pull writes each
// chunk at its offset in the final file (pwrite), starts its write-back at
// once, and fsyncs each file once, when its last chunk is written; a file is
// open only while a chunk is written to it. BENCHMARKS.md has the numbers.
package registry
