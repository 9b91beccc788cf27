//go:build !linux

package registry

// isMountPoint is not detected off Linux: pull then renames into place as
// usual, and a mount point target fails with an error naming it.
func isMountPoint(string) bool { return false }
