//go:build !linux

package testenv

import "syscall"

// sysProcAttr puts a child in its own process group, so Stop can signal it with everything it started.
// Outside Linux there is no parent-death signal: a test binary that dies without Stop relies on the reaper.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
