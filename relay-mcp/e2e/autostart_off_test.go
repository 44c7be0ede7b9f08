package e2e

import "os"

// A relay a test stops stays stopped: no relay-mcp spawned by these tests
// starts a relayd of its own.
func init() { os.Setenv("RELAY_AUTOSTART", "off") }
