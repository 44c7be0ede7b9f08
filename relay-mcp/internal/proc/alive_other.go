//go:build !unix && !windows

package proc

// Elsewhere (plan9, wasm) there is no cheap probe: assume it runs.
func alive(int) bool { return true }
