package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat: 100 on every Linux architecture Go
// supports.
const clockTicks = 100

// benchCPU returns the CPU time (user and system) that each process of the control plane and this test
// process (the suite's tracker, its webhook and the benchmark's clients) have used so far, by its name in
// benchCPUProcesses.
// Processes it cannot read are left out.
func benchCPU() map[string]time.Duration {
	out := map[string]time.Duration{}
	self := os.Getpid()
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, dir := range dirs {
		pid, err := strconv.Atoi(filepath.Base(dir))
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid …: comm may hold spaces, so the fields are counted from its closing parenthesis.
		open, end := strings.IndexByte(string(b), '('), strings.LastIndexByte(string(b), ')')
		if open < 0 || end < open {
			continue
		}
		name := benchCPUProcess(string(b[open+1 : end]))
		if pid == self {
			name = "e2e.test"
		} else if name == "" || name == "e2e.test" {
			continue
		}
		f := strings.Fields(string(b[end+1:]))
		if len(f) < 13 { // state is f[0]; utime and stime are fields 14 and 15 of stat, f[11] and f[12]
			continue
		}
		ut, err1 := strconv.ParseInt(f[11], 10, 64)
		st, err2 := strconv.ParseInt(f[12], 10, 64)
		if err1 != nil || err2 != nil {
			continue
		}
		out[name] += time.Duration(ut+st) * time.Second / clockTicks
	}
	return out
}

// benchCPUProcess is the name in benchCPUProcesses that comm (cut at 15 bytes) starts with, "" for none.
func benchCPUProcess(comm string) string {
	for _, p := range benchCPUProcesses {
		if strings.HasPrefix(comm, p) {
			return p
		}
	}
	return ""
}

// benchCPUDelta adds the CPU used between before and after to sum.
func benchCPUDelta(sum, before, after map[string]time.Duration) {
	for name, t := range after {
		sum[name] += t - before[name]
	}
}

// benchCPUProcesses are the processes benchCPU tells apart, in the order they are reported; e2e.test is this
// process: the suite's tracker (its webhook) and the benchmark's clients.
var benchCPUProcesses = []string{"kube-apiserver", "etcd", "e2e.test", "kube-controller", "kube-scheduler", "kwok"}

// benchCPUPerPod is the CPU time per pod of each of benchCPUProcesses and of them all ("total"), in ms.
func benchCPUPerPod(cpu map[string]time.Duration, pods int) map[string]float64 {
	out := map[string]float64{}
	for name, t := range cpu {
		ms := benchMS(t) / float64(pods)
		out[name] += ms
		out["total"] += ms
	}
	return out
}

// benchCPUSummary formats benchCPUPerPod.
func benchCPUSummary(perPod map[string]float64) string {
	parts := []string{fmt.Sprintf("total=%.2f", perPod["total"])}
	for _, name := range benchCPUProcesses {
		parts = append(parts, fmt.Sprintf("%s=%.2f", name, perPod[name]))
	}
	return strings.Join(parts, " ")
}
