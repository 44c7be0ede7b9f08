//go:build unix

package autostart

import "syscall"

// detached starts relayd in a session of its own: a terminal's Ctrl-C or
// the agent's process group ending does not reach it.
func detached() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setsid: true} }
