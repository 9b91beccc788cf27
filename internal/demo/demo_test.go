package demo

import (
	"context"
	"path/filepath"
	"testing"
)

// The demo runs end to end on a fresh registry, and a second run uploads
// nothing: training is deterministic, so the delta has the same digest.
func TestRun(t *testing.T) {
	dir := t.TempDir()
	opt := Options{Registry: filepath.Join(dir, "registry"), Steps: 20, Threads: 2}
	rep, err := Run(context.Background(), opt)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.UnmergeExact {
		t.Error("unmerge was not exact")
	}
	if rep.LossAfter >= rep.LossBefore {
		t.Errorf("held-out loss did not fall: %.3f -> %.3f", rep.LossBefore, rep.LossAfter)
	}
	if d := rep.LossMerged - rep.LossAfter; d > 0.05 || d < -0.05 {
		t.Errorf("merged model loss %.4f far from base+LoRA %.4f", rep.LossMerged, rep.LossAfter)
	}
	if rep.BasePush.UploadedBytes == 0 || rep.DeltaPush.UploadedBytes == 0 {
		t.Errorf("first run uploaded nothing: %+v %+v", rep.BasePush, rep.DeltaPush)
	}
	if rep.Usage.Refs != 2 || rep.Usage.StoredBytes <= 0 {
		t.Errorf("usage %+v", rep.Usage)
	}
	if len(rep.Stages) != 9 {
		t.Errorf("%d stages", len(rep.Stages))
	}

	again, err := Run(context.Background(), opt)
	if err != nil {
		t.Fatal(err)
	}
	if again.BasePush.UploadedBytes != 0 || again.DeltaPush.UploadedBytes != 0 {
		t.Errorf("rerun uploaded base %d, delta %d bytes; want 0", again.BasePush.UploadedBytes, again.DeltaPush.UploadedBytes)
	}
	if again.DeltaPush.Digest != rep.DeltaPush.Digest {
		t.Errorf("rerun delta digest %s, want %s", again.DeltaPush.Digest, rep.DeltaPush.Digest)
	}
}
