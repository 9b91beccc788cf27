package registry

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"

	"github.com/deltactl/deltactl/internal/atomicfile"
)

// hashCache remembers, per local file, the layout and blob digests computed
// the last time it was pushed, so re-pushing an unchanged multi-gigabyte
// model costs a stat per file instead of a full read and hash.
//
// An entry is keyed by the file's absolute path and is valid only while the
// file's size, mtime, ctime and inode are unchanged and the chunk size is the
// same. ctime cannot be set by tools like `touch -d` or rsync, so a rewrite
// that restores the old mtime still invalidates the entry. Each entry is its
// own small file, written atomically, so concurrent pushes never corrupt the
// cache; a damaged entry is simply a miss.
type hashCache struct {
	dir string // "" disables the cache
}

// fileStamp identifies one version of a local file.
type fileStamp struct {
	Size      int64  `json:"size"`
	MtimeNano int64  `json:"mtime_ns"`
	CtimeNano int64  `json:"ctime_ns"`
	Inode     uint64 `json:"inode"`
	ChunkSize int64  `json:"chunk_size"`
}

type cacheEntry struct {
	Path  string    `json:"path"`
	Stamp fileStamp `json:"stamp"`
	File  File      `json:"file"`
	// Meta is a safetensors file's __metadata__ (delta provenance).
	Meta map[string]string `json:"meta,omitempty"`
}

func stampOf(fi os.FileInfo, chunkSize int64) fileStamp {
	ino, ctime := fileIdentity(fi)
	return fileStamp{Size: fi.Size(), MtimeNano: fi.ModTime().UnixNano(), CtimeNano: ctime, Inode: ino, ChunkSize: chunkSize}
}

func (c hashCache) entryPath(abs string) string {
	h := sha256.Sum256([]byte(abs))
	return filepath.Join(c.dir, "hashes", hex.EncodeToString(h[:2]), hex.EncodeToString(h[:])+".json")
}

// get returns the cached File for abs if its stamp still matches, and the
// entry's bytes as stored (for put's unchanged check).
func (c hashCache) get(abs string, st fileStamp) (cacheEntry, []byte, bool) {
	if c.dir == "" {
		return cacheEntry{}, nil, false
	}
	data, err := os.ReadFile(c.entryPath(abs))
	if err != nil {
		return cacheEntry{}, nil, false
	}
	var e cacheEntry
	if json.Unmarshal(data, &e) != nil || e.Path != abs || e.Stamp != st {
		return cacheEntry{}, nil, false
	}
	return e, data, true
}

// put records e. prev is the entry's stored bytes from get (nil if none); an
// entry that would be written unchanged is not rewritten, sparing an fsync
// per file on every re-push. Failures are ignored: the cache only saves time.
func (c hashCache) put(e cacheEntry, prev []byte) {
	if c.dir == "" {
		return
	}
	abs := e.Path
	data, err := json.Marshal(e)
	if err != nil || bytes.Equal(data, prev) {
		return
	}
	p := c.entryPath(abs)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return
	}
	_ = atomicfile.WriteBytes(p, 0o644, data) // a failed write is a later cache miss, not an error
}
