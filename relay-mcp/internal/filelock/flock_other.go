//go:build !unix

package filelock

import "os"

// On systems without flock the lock is advisory only within this process;
// relay-mcp targets macOS and Linux.
func lockFile(*os.File) error { return nil }
func unlockFile(*os.File)     {}
