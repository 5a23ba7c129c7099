package testenv

import "syscall"

// sysProcAttr puts a child in its own process group, so Stop can signal it with everything it started, and
// has the kernel SIGKILL it should the test binary die without calling Stop (a test timeout, a crash).
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
