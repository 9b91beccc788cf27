//go:build !unix

package train

import "time"

// procUsage is unknown on this platform: zeros.
func procUsage() (peakRSS int64, cpu time.Duration) { return 0, 0 }

// machineMemory is unknown on this platform: 0.
func machineMemory() int64 { return 0 }
