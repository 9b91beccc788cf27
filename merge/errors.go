package merge

import (
	"errors"

	"github.com/deltactl/deltactl/format"
)

// errShape is format.ErrShape: every shape mismatch wraps it.
var errShape = format.ErrShape

// ErrNotMergeable is returned (wrapped) for a delta that cannot be folded
// into base weights: bottleneck adapters add layers and non-linearities.
var ErrNotMergeable = errors.New("cannot be merged into base weights")

// ErrNoTarget is returned (wrapped) when a delta names a tensor the base
// does not have.
var ErrNoTarget = errors.New("target tensor not in base")

// ErrCorrection is returned (wrapped) when a correction file is unreadable
// or does not belong to the merged model and deltas given.
var ErrCorrection = errors.New("merge correction")
