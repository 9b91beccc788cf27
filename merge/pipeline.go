package merge

import (
	"fmt"
	"sync"

	"github.com/deltactl/deltactl/format"
)

// mergeResult is one merged tensor on its way to the writer.
type mergeResult struct {
	name string
	data []byte
	buf  *[]byte // the pool buffer data lives in; nil when data aliases the input
	err  error
}

// mergePipeline computes merged tensors on its own goroutine, in the order
// the writer needs them, one tensor ahead of it: while the writer copies
// tensor i into the page cache, tensor i+1 is merged (kernels.MergeLoRA
// straight from the input mapping into a pool buffer). Two output buffers
// circulate, so peak memory stays at a few tensors, and a tensor that
// passes through unchanged is handed over as a slice of the mapping with
// no copy at all.
type mergePipeline struct {
	results <-chan mergeResult
	free    chan *[]byte
	quit    chan struct{}
	once    sync.Once
	wg      sync.WaitGroup
}

// pipelineDepth is the number of output buffers in flight.
const pipelineDepth = 2

func startMergePipeline(base *Folder, plans map[string]*tensorPlan, outDT map[string]format.DType, cw *correctionWriter) *mergePipeline {
	res := make(chan mergeResult, pipelineDepth-1)
	p := &mergePipeline{results: res, free: make(chan *[]byte, pipelineDepth), quit: make(chan struct{})}
	for range pipelineDepth {
		p.free <- new([]byte)
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		defer close(res)
		var buf buffers // scratch of the float32 path, owned by this goroutine
		for _, s := range base.shards {
			for _, name := range s.names {
				var ob *[]byte
				select {
				case ob = <-p.free:
				case <-p.quit:
					return
				}
				r := mergeResult{name: name, buf: ob}
				src, err := s.f.Tensor(name)
				if err == nil {
					r.data, err = mergeTensor(src, outDT[name], plans[name], cw, &buf, ob)
				}
				if err != nil {
					r.err = fmt.Errorf("merge: tensor %q: %w", name, err)
				}
				if r.err != nil || (len(r.data) > 0 && len(src.Data) > 0 && &r.data[0] == &src.Data[0]) || len(r.data) == 0 {
					p.free <- ob // not used: cannot block, it was just taken
					r.buf = nil
				}
				select {
				case res <- r:
				case <-p.quit:
					return
				}
				if r.err != nil {
					return
				}
			}
		}
	}()
	return p
}

// release gives a result's buffer back once its bytes are written.
func (p *mergePipeline) release(r mergeResult) {
	if r.buf != nil {
		p.free <- r.buf
	}
}

// stop ends the producer (if still running) and waits for it, so nothing
// touches the correction writer or the mapping afterwards. Idempotent.
func (p *mergePipeline) stop() {
	p.once.Do(func() { close(p.quit) })
	p.wg.Wait()
}
