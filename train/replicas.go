package train

import (
	"context"
	"fmt"
	"sync"
)

// replicas trains one batch as several data-parallel slices: with T
// threads and B rows, min(T, B) networks of about B/T rows each run their
// forward and backward passes side by side, each on its own thread with
// its own activations and gradients, sharing the parameter values. Batch
// rows are independent in a decoder (norms, attention and the loss are per
// row or per sequence), so the only coupling is the gradient sum, done once
// per step in a fixed order.
//
// On a few cores this beats splitting every matrix product and
// elementwise pass over the threads: a step has hundreds of such passes,
// each a fork and join, and many of them (the LoRA products a few columns
// wide, the per-head attention products) are too small to split well.
// Results depend on the thread count (the split changes the summation
// order), never on scheduling: the same seed and thread count give the
// same bytes.
type replicas struct {
	nets    []*net[float32] // nets[0] owns the parameter values and the summed gradients
	rows    []int           // batch rows of each replica
	threads int             // the run's thread count (eval uses them all on nets[0])
	sums    []float64       // per-replica loss sums of the last step
	counts  []int
}

// newReplicas builds the replicas for a run of o on m. With one thread or
// one batch row it is a single network using o.Threads threads.
func newReplicas(m *Model, o *Options) (*replicas, error) {
	k := max(1, min(o.Threads, o.Batch))
	r := &replicas{threads: o.Threads, sums: make([]float64, k), counts: make([]int, k)}
	per := max(1, o.Threads/k)
	for i := 0; i < k; i++ {
		oi := *o
		oi.Batch = o.Batch*(i+1)/k - o.Batch*i/k
		oi.Threads = per
		nt, err := buildTrainNet(m, &oi)
		if err != nil {
			return nil, err
		}
		if i > 0 {
			if err := nt.shareParams(r.nets[0]); err != nil {
				return nil, err
			}
		}
		r.nets = append(r.nets, nt)
		r.rows = append(r.rows, oi.Batch)
	}
	return r, nil
}

// shareParams makes nt use src's parameter values (nt keeps its own
// gradients). Base weights are already shared through the model; LoRA and
// adapter factors are re-pointed.
func (nt *net[F]) shareParams(src *net[F]) error {
	if len(nt.params) != len(src.params) {
		return fmt.Errorf("train: replica has %d parameters, want %d", len(nt.params), len(src.params))
	}
	for li, b := range nt.blocks {
		sb := src.blocks[li]
		for _, t := range LoRATargets {
			l, sl := b.linearByTarget(t), sb.linearByTarget(t)
			if l.lora != nil && sl.lora != nil {
				l.lora.a, l.lora.b = sl.lora.a, sl.lora.b
			}
		}
		for _, pair := range [][2]*adapterMod[F]{{b.ad1, sb.ad1}, {b.ad2, sb.ad2}} {
			if ad, sa := pair[0], pair[1]; ad != nil && sa != nil {
				ad.down, ad.bd, ad.up, ad.bu = sa.down, sa.bd, sa.up, sa.bu
			}
		}
	}
	for i := range nt.params {
		p, sp := &nt.params[i], &src.params[i]
		if p.name != sp.name || len(p.w) != len(sp.w) {
			return fmt.Errorf("train: replica parameter %d is %q, want %q", i, p.name, sp.name)
		}
		if &p.w[0] != &sp.w[0] {
			p.w = sp.w
		}
	}
	return nil
}

// params are the trainable parameters (values and summed gradients).
func (r *replicas) params() []param[float32] { return r.nets[0].params }

// zeroGrads clears every replica's gradients.
func (r *replicas) zeroGrads() {
	for _, nt := range r.nets {
		nt.zeroGrads()
	}
}

// step runs forward, loss and backward for one micro-batch (tokens and
// targets of all rows, row-major) on every replica, adding into their
// gradients, with gscale the loss gradient's scale. It returns the summed
// loss and the number of targets, combined in replica order.
func (r *replicas) step(tokens, targets []int32, gscale float64, dropKey uint64) (sum float64, count int) {
	T := r.nets[0].spec.T
	run := func(i, off int) {
		nt := r.nets[i]
		n := nt.n
		tok, tgt := tokens[off*T:off*T+n], targets[off*T:off*T+n]
		// Each replica's dropout masks are indexed from its own first
		// row, so each gets its own key.
		nt.forwardHidden(tok, true, dropKey^splitmix64(uint64(i))<<1)
		r.sums[i], r.counts[i] = nt.headLoss(tgt, gscale, nil)
		nt.backward(tok)
	}
	var wg sync.WaitGroup
	off := 0
	for i := range r.nets {
		if i == len(r.nets)-1 {
			run(i, off)
			break
		}
		wg.Add(1)
		go func(i, off int) {
			defer wg.Done()
			run(i, off)
		}(i, off)
		off += r.rows[i]
	}
	wg.Wait()
	for i := range r.nets {
		sum += r.sums[i]
		count += r.counts[i]
	}
	return sum, count
}

// reduceGrads adds every other replica's gradients into nets[0]'s, in
// replica order, split over the threads by element ranges.
func (r *replicas) reduceGrads() {
	if len(r.nets) == 1 {
		return
	}
	for pi, p := range r.nets[0].params {
		g := p.g
		th := r.threads
		if len(g) < 1<<15 {
			th = 1 // a LoRA factor: not worth waking a thread
		}
		parallelRange(th, len(g), func(lo, hi int) {
			for _, nt := range r.nets[1:] {
				src := nt.params[pi].g[lo:hi]
				dst := g[lo:hi]
				for j, v := range src {
					dst[j] += v
				}
			}
		})
	}
}

// evalNet evaluates nets[0] on d with all the run's threads.
func (r *replicas) evalNet(ctx context.Context, d *Dataset, maxBatches int) (EvalResult, error) {
	nt := r.nets[0]
	saved := nt.spec.threads
	nt.spec.threads = r.threads
	defer func() { nt.spec.threads = saved }()
	return evalNet(ctx, nt, d, maxBatches)
}
