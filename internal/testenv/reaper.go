package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// reaperScript waits for the test binary ($1) to go away without calling Stop (a test timeout panics and
// exits, ^C, a crash), then terminates the given process groups and removes the given directories. The
// processes this package starts itself die with the test binary anyway (Pdeathsig), but etcd and
// kube-apiserver are started by envtest, which cannot set that: without the reaper a timed-out test leaves
// them running. The log file is not removed: after a timeout it is the evidence.
const reaperScript = `
parent=$1 groups=$2; shift 2
while kill -0 "$parent" 2>/dev/null; do sleep 1; done
for g in $groups; do kill -s TERM -- "-$g" 2>/dev/null; done
sleep 5
for g in $groups; do kill -s KILL -- "-$g" 2>/dev/null; done
rm -rf -- "$@"
`

// startReaper starts the reaper for the given process groups and directories, in a process group of its own so
// that a ^C to the test does not reach it. Stop kills it before stopping anything.
func startReaper(pgids []int, dirs []string) (*exec.Cmd, error) {
	groups := make([]string, len(pgids))
	for i, g := range pgids {
		groups[i] = strconv.Itoa(g)
	}
	args := append([]string{"-c", reaperScript, "testenv-reaper", strconv.Itoa(os.Getpid()), strings.Join(groups, " ")}, dirs...)
	cmd := exec.Command("/bin/sh", args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start reaper: %w", err)
	}
	go func() { _ = cmd.Wait() }()
	return cmd, nil
}

// childPIDs returns the pids of this process's children running one of the given executables, read from
// /proc: envtest does not expose the pids of etcd and kube-apiserver. envtest starts each in its own process
// group (Setpgid), so the pid is also the group id.
func childPIDs(executables ...string) []int {
	want := map[string]bool{}
	for _, exe := range executables {
		if resolved, err := filepath.EvalSymlinks(exe); err == nil {
			exe = resolved
		}
		want[exe] = true
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	self := os.Getpid()
	var pids []int
	for _, ent := range entries {
		pid, err := strconv.Atoi(ent.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", ent.Name(), "stat"))
		if err != nil {
			continue
		}
		// "pid (comm) state ppid ...": comm may contain spaces and parentheses, so split after the last ')'.
		i := strings.LastIndexByte(string(stat), ')')
		if i < 0 {
			continue
		}
		fields := strings.Fields(string(stat[i+1:]))
		if len(fields) < 2 || fields[1] != strconv.Itoa(self) {
			continue
		}
		exe, err := os.Readlink(filepath.Join("/proc", ent.Name(), "exe"))
		if err == nil && want[exe] {
			pids = append(pids, pid)
		}
	}
	return pids
}
