package registry

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/deltactl/deltactl/format/safetensors"
)

// ErrLinkOutside is returned (wrapped, naming the link) when a pushed folder
// holds a symlink to a file outside it and PushOptions.FollowSymlinks is off.
var ErrLinkOutside = errors.New("symlink to a file outside the folder")

// localFile is one regular file of a folder being pushed.
type localFile struct {
	abs  string // absolute path, the hash cache key
	rel  string // slash-separated path inside the folder
	info os.FileInfo
}

// skipDir names folders never pushed: VCS metadata and the download cache
// huggingface_hub keeps inside local_dir downloads.
func skipDir(name string) bool { return name == ".git" || name == ".cache" }

// listFiles returns the regular files under root, sorted by path. A single
// file is returned as a folder holding just that file. root itself may be
// reached through symlinks. Symlinks inside the folder are followed when
// they point to files inside it, or, for a Hugging Face cache snapshot
// (hub/models--X/snapshots/REV), into that repo's blobs/ folder; a link
// anywhere else is refused naming it unless follow is set. Anything else
// that is not a regular file, and any name that is not valid UTF-8 (JSON
// would turn it into U+FFFD, so two names could collide), is refused rather
// than silently dropped or changed.
func listFiles(root string, follow bool) ([]localFile, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return nil, err
	}
	if fi.Mode().IsRegular() {
		rel := filepath.Base(abs)
		if err := checkRelPath(rel); err != nil {
			return nil, fmt.Errorf("%q: %v", abs, err)
		}
		return []localFile{{abs: abs, rel: rel, info: fi}}, nil
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("%s: not a regular file or folder", root)
	}
	// Walk the real folder: WalkDir does not descend into a symlinked root.
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return nil, err
	}
	inside := allowedTargets(real)
	var out []localFile
	err = filepath.WalkDir(real, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(real, p)
		if err != nil {
			return err
		}
		shown := filepath.Join(abs, rel) // as the user named it
		if d.IsDir() {
			if p != real && skipDir(d.Name()) {
				return filepath.SkipDir
			}
			return nil
		}
		rel = filepath.ToSlash(rel)
		if err := checkRelPath(rel); err != nil {
			return fmt.Errorf("%q: %v", shown, err)
		}
		if d.Type()&fs.ModeSymlink != 0 && !follow {
			target, err := filepath.EvalSymlinks(p)
			if err != nil {
				return fmt.Errorf("%s: %w", shown, err)
			}
			if !inside(target) {
				return fmt.Errorf("%s: %w (it points to %s)", shown, ErrLinkOutside, target)
			}
		}
		fi, err := os.Stat(p) // follows symlinks
		if err != nil {
			return err
		}
		if fi.IsDir() {
			return fmt.Errorf("%s: symlink to a folder is not supported", shown)
		}
		if !fi.Mode().IsRegular() {
			return fmt.Errorf("%s: not a regular file (%s)", shown, fi.Mode().Type())
		}
		out = append(out, localFile{abs: shown, rel: rel, info: fi})
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: folder has no files", root)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].rel < out[j].rel })
	return out, nil
}

// allowedTargets returns whether a resolved symlink target may be pushed
// without FollowSymlinks: inside the folder real, or, when real is a
// Hugging Face cache snapshot (.../models--X/snapshots/REV), inside that
// repo's blobs folder, where every snapshot file points.
func allowedTargets(real string) func(string) bool {
	roots := []string{real}
	if snaps := filepath.Dir(real); filepath.Base(snaps) == "snapshots" {
		roots = append(roots, filepath.Join(filepath.Dir(snaps), "blobs"))
	}
	return func(target string) bool {
		for _, r := range roots {
			if rel, err := filepath.Rel(r, target); err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
				return true
			}
		}
		return false
	}
}

// layoutFile describes f without reading its data: a safetensors file gets
// its header blob and tensor spans (digests still empty), a GGUF file byte
// ranges cut at its header and tensor boundaries (ggufChunks), anything else
// a list of byte ranges. Chunks of at most chunkSize bytes are planned; their
// digests are filled in by the push workers.
func layoutFile(f localFile, chunkSize int64) (File, map[string]string, error) {
	out := File{Path: f.rel, Size: f.info.Size(), Mode: uint32(f.info.Mode().Perm())}
	if strings.HasSuffix(f.rel, ".safetensors") {
		st, err := safetensors.Open(f.abs)
		switch {
		case err == nil:
			defer func() { _ = st.Close() }() // read only: the header was parsed and checked
			infos := append([]safetensors.TensorInfo(nil), st.Infos()...)
			sort.Slice(infos, func(i, j int) bool { return infos[i].Begin < infos[j].Begin })
			lay := &Safetensors{HeaderSize: st.DataOffset(), Tensors: make([]Tensor, 0, len(infos))}
			for _, ti := range infos {
				lay.Tensors = append(lay.Tensors, Tensor{
					Name: ti.Name, DType: ti.DType.String(), Shape: append([]int64{}, ti.Shape...),
					Offsets: [2]int64{ti.Begin, ti.End},
					Chunks:  planChunks(ti.End-ti.Begin, chunkSize),
				})
			}
			lay.Header = ""
			out.Safetensors = lay
			return out, st.Metadata(), nil
		default:
			// A damaged weights file (truncated, hostile header) is refused
			// rather than stored: a pull would hand back a model that
			// cannot load, and the error names the file and the rule.
			return File{}, nil, err
		}
	}
	if strings.HasSuffix(f.rel, ".gguf") {
		cs, err := ggufChunks(f.abs, out.Size, chunkSize)
		if err != nil {
			return File{}, nil, err
		}
		out.Chunks = cs
		return out, nil, nil
	}
	out.Chunks = planChunks(out.Size, chunkSize)
	return out, nil, nil
}

// planChunks cuts n bytes into pieces of at most chunkSize; an empty span
// still gets one empty chunk so every tensor names a blob.
func planChunks(n, chunkSize int64) []Chunk {
	if n == 0 {
		return []Chunk{{Size: 0}}
	}
	cs := make([]Chunk, 0, (n+chunkSize-1)/chunkSize)
	for off := int64(0); off < n; off += chunkSize {
		cs = append(cs, Chunk{Size: min(chunkSize, n-off)})
	}
	return cs
}
