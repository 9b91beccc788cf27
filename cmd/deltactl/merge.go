package main

import (
	"encoding/json"
	"fmt"

	"github.com/opencontainers/go-digest"
	"github.com/spf13/cobra"

	"github.com/deltactl/deltactl/format"
	"github.com/deltactl/deltactl/merge"
)

func newMergeCmd(g *globals) *cobra.Command {
	var base, out, dtype string
	var deltas []string
	var weights []float64
	var correction, allowMismatch bool
	c := &cobra.Command{
		Use:   "merge --base SRC --delta SRC [--delta SRC ...] [--weight W ...] [--dtype F32|F16|BF16] [--correction] --out DIR",
		Short: "Fold deltas into a base model: W' = W + sum_i w_i * delta_i, rounded once",
		Long: `merge writes a new model folder, sharded like the base, where every updated
weight is computed in float32 and rounded once (nearest even) into its dtype.
LoRA (every scale rule, fan_in_fan_out, lora_B.bias, embeddings), DoRA, IA3 and
modules_to_save are supported; bottleneck adapters are refused. --correction
records what the rounding destroyed so unmerge can restore the base bit for bit.

A delta whose recorded base digest (its registry lineage, or the
NAME:TAG@DIGEST deltactl train writes) differs from --base's is refused unless
--allow-base-mismatch. The merged weights' metadata key ` + mergeMetaKey + ` records the
base, each delta (with digests), its weight and method; the base's own
metadata is kept aside for unmerge.`,
		Example: `  deltactl merge --base ./Llama-3.2-1B --delta ./lora-support --out ./merged
  deltactl merge --base team/llama:base --delta team/llama:support --delta team/llama:sql --weight 0.7 --weight 0.3 --dtype BF16 --correction --out ./merged`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if base == "" || out == "" {
				return usagef("merge needs --base and --out")
			}
			var opt merge.MergeOptions
			opt.Correction = correction
			if dtype != "" {
				dt, err := format.ParseDType(dtype)
				if err != nil || (dt != format.F32 && dt != format.F16 && dt != format.BF16) {
					return usagef("--dtype %q: want F32, F16 or BF16", dtype)
				}
				opt.DType = dt
			}
			ctx := cmd.Context()
			in, srcs, done, err := loadInputSources(ctx, g, deltas, weights)
			if err != nil {
				return err
			}
			defer done()
			m, bs, closeM, err := openModelSource(ctx, g, base)
			if err != nil {
				return err
			}
			defer closeM()
			for _, ds := range srcs {
				if err := checkLineage(bs, ds, allowMismatch); err != nil {
					return err
				}
			}
			if opt.Metadata, err = mergeMetadata(bs, srcs, in, opt); err != nil {
				return err
			}
			rep, err := merge.Merge(ctx, m, in, out, opt)
			if err != nil {
				return err
			}
			if g.json {
				return g.printJSON(rep)
			}
			g.printf("merged %d deltas into %d of %d tensors -> %s (%d shards, %d bytes)\n", len(in), len(rep.Merged), rep.Tensors, rep.Out, rep.Shards, rep.Bytes)
			if rep.Correction != "" {
				g.printf("correction: %s (%d bytes): unmerge will be bit-exact\n", rep.Correction, rep.CorrectionBytes)
			}
			return nil
		},
	}
	f := c.Flags()
	f.StringVar(&base, "base", "", "base model: folder, .safetensors file or registry ref")
	f.StringArrayVar(&deltas, "delta", nil, "delta (PEFT folder or registry ref); repeatable")
	f.Float64SliceVar(&weights, "weight", nil, "weight of each delta, in order (default 1 each)")
	f.StringVar(&dtype, "dtype", "", "output dtype of float tensors: F32, F16 or BF16 (default: keep)")
	f.BoolVar(&correction, "correction", false, "write "+merge.CorrectionFile+" so unmerge is bit-exact")
	f.StringVar(&out, "out", "", "output folder (must not exist)")
	f.BoolVar(&allowMismatch, "allow-base-mismatch", false, "merge a delta even if it records another base digest than --base's")
	return c
}

// mergeMetaKey is the safetensors metadata key of a merged model that says
// what was merged.
const mergeMetaKey = "deltactl.merge"

// mergeRecord is the value of mergeMetaKey.
type mergeRecord struct {
	Base       string        `json:"base"`
	BaseDigest digest.Digest `json:"base_digest,omitempty"`
	Deltas     []mergedDelta `json:"deltas"`
	DType      string        `json:"dtype,omitempty"`
	Correction bool          `json:"correction"`
}

type mergedDelta struct {
	Delta      string        `json:"delta"`
	Digest     digest.Digest `json:"digest,omitempty"`
	BaseDigest digest.Digest `json:"base_digest,omitempty"`
	Method     string        `json:"method"`
	Weight     float64       `json:"weight"`
}

// mergeMetadata is the header metadata of a merged model's weights.
func mergeMetadata(base *source, srcs []*source, in []merge.Input, opt merge.MergeOptions) (map[string]string, error) {
	rec := mergeRecord{Base: base.Pinned(), BaseDigest: base.Digest, Correction: opt.Correction}
	if opt.DType != format.Invalid {
		rec.DType = opt.DType.String()
	}
	for i, s := range srcs {
		bd, err := recordedBase(s)
		if err != nil {
			return nil, err
		}
		rec.Deltas = append(rec.Deltas, mergedDelta{Delta: s.Pinned(), Digest: s.Digest, BaseDigest: bd,
			Method: string(in[i].Delta.Method), Weight: in[i].Weight})
	}
	b, err := json.Marshal(rec)
	if err != nil {
		return nil, fmt.Errorf("merge: metadata: %w", err)
	}
	return map[string]string{"format": "pt", mergeMetaKey: string(b)}, nil
}
