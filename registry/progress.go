package registry

import (
	"sync"
	"sync/atomic"
)

// Stage names a phase of a long operation in Progress reports.
type Stage string

// Stages reported through Progress.
const (
	StageHash     Stage = "hash"
	StageUpload   Stage = "upload"
	StageDownload Stage = "download"
	StageVerify   Stage = "verify"
	StageCopy     Stage = "copy"
)

// Progress is one report of a long transfer. Done and Total count bytes of
// the current stage (decoded bytes for push and pull, stored bytes for copy).
// The callback is called from several goroutines, but never concurrently
// with itself; it must return quickly.
type Progress struct {
	Stage Stage
	Done  int64
	Total int64
}

// meter accumulates bytes and forwards them to the callback, serialised.
type meter struct {
	fn    func(Progress)
	stage Stage
	total int64
	done  atomic.Int64
	mu    sync.Mutex
}

func newMeter(fn func(Progress), stage Stage, total int64) *meter {
	m := &meter{fn: fn, stage: stage, total: total}
	m.report()
	return m
}

func (m *meter) add(n int64) {
	if m == nil {
		return
	}
	m.done.Add(n)
	m.report()
}

func (m *meter) report() {
	if m == nil || m.fn == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.fn(Progress{Stage: m.stage, Done: m.done.Load(), Total: m.total})
}
