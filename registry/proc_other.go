//go:build !linux

package registry

// process identifies this process for its locks; outside Linux there is no
// boot id, so dead holders are found by age only.
type process struct {
	bootID string
	start  uint64
}

func thisProcess() process { return process{} }

func processAlive(int) (bool, uint64) { return true, 0 }
