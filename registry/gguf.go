package registry

import (
	"fmt"
	"sort"

	"github.com/deltactl/deltactl/format/gguf"
)

// ggufChunks plans the blobs of a GGUF file along its own structure: one
// span for the header (metadata and tensor infos up to the aligned data
// section), then one span per tensor (its data and the alignment padding
// after it), each cut at chunkSize. Blobs are content-addressed, so a
// fine-tune's GGUF pushed beside its base's GGUF stores only the header and
// the tensors that changed, as safetensors files do; the file is still a
// plain list of byte ranges, so pull rebuilds it byte for byte. A damaged
// GGUF is refused, naming the file and the rule, rather than stored.
func ggufChunks(path string, size, chunkSize int64) ([]Chunk, error) {
	g, err := gguf.Open(path)
	if err != nil {
		return nil, err
	}
	defer func() { _ = g.Close() }() // read only: the header was parsed and checked
	cuts := []int64{min(g.DataOffset, size)}
	offs := make([]int64, 0, len(g.Tensors))
	for _, ti := range g.Tensors {
		offs = append(offs, g.DataOffset+ti.Offset)
	}
	sort.Slice(offs, func(i, j int) bool { return offs[i] < offs[j] })
	for _, o := range offs {
		if o > cuts[len(cuts)-1] && o < size {
			cuts = append(cuts, o)
		}
	}
	var cs []Chunk
	start := int64(0)
	for _, end := range append(cuts, size) {
		if end < start {
			return nil, fmt.Errorf("%s: GGUF spans out of order at %d", path, end)
		}
		if end > start {
			cs = append(cs, planChunks(end-start, chunkSize)...)
		}
		start = end
	}
	if len(cs) == 0 {
		cs = planChunks(0, chunkSize)
	}
	return cs, nil
}
