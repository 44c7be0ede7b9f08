// Package proc answers one question portably: is a process still running?
// The watchdog asks it about its parent, the CLI about the process a
// registry entry names.
package proc

// Alive reports whether a process with pid exists (on Unix: a signal-0
// probe, where EPERM means it exists under another user). pid <= 0 is never
// alive.
func Alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	return alive(pid)
}
