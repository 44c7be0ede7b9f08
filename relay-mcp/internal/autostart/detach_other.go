//go:build !unix && !windows

package autostart

import "syscall"

func detached() *syscall.SysProcAttr { return nil }
