package torchpickle

import "fmt"

// budget bounds what one file may make the reader allocate. A file of n
// bytes may allocate at most 4n + 1 MiB of payload (pickle bytes, storage
// bytes, strings, names and materialised non-contiguous tensors). A genuine
// checkpoint needs about n (its storages) plus small change; the slack
// covers legitimate views (an expanded or transposed tensor materialised
// contiguously) and container overhead.
type budget struct {
	left int64
}

const budgetSlack = 1 << 20

func newBudget(fileSize int64) *budget {
	if fileSize < 0 {
		fileSize = 0
	}
	if fileSize > (1<<62)/4 {
		fileSize = (1 << 62) / 4
	}
	return &budget{left: 4*fileSize + budgetSlack}
}

// take charges n bytes for what; it fails once the budget is spent.
func (b *budget) take(n int64, what string) error {
	if n < 0 || n > b.left {
		return fmt.Errorf("%w: %s needs %d bytes, more than the file's size allows", ErrCorrupt, what, n)
	}
	b.left -= n
	return nil
}
