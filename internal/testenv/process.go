package testenv

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// tailLines is how many of a process's last output lines an error carries.
const tailLines = 40

// logSink serializes the output of every process into one writer, one prefixed line at a time.
type logSink struct {
	mu sync.Mutex
	w  io.Writer
}

// lineWriter is one process's stdout and stderr: it prefixes complete lines with the process name, writes them
// to the shared sink and remembers the last tailLines of them for error messages.
type lineWriter struct {
	name string
	sink *logSink

	mu      sync.Mutex
	partial []byte
	tail    []string
}

// note writes a line of this package's own progress.
func (s *logSink) note(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, _ = fmt.Fprintf(s.w, "testenv | "+format+"\n", args...)
}

func (s *logSink) writer(name string) *lineWriter {
	return &lineWriter{name: name, sink: s}
}

func (l *lineWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.partial = append(l.partial, p...)
	for {
		i := bytes.IndexByte(l.partial, '\n')
		if i < 0 {
			break
		}
		l.emit(string(l.partial[:i]))
		l.partial = l.partial[i+1:]
	}
	return len(p), nil
}

// emit writes one line; the caller holds l.mu. Errors writing the log are ignored: the log is a diagnostic aid
// and must never make a control plane process block or fail.
func (l *lineWriter) emit(line string) {
	if len(l.tail) == tailLines {
		l.tail = append(l.tail[:0], l.tail[1:]...)
	}
	l.tail = append(l.tail, line)
	l.sink.mu.Lock()
	_, _ = fmt.Fprintf(l.sink.w, "%s | %s\n", l.name, line)
	l.sink.mu.Unlock()
}

// Tail returns the last lines the process wrote, including an unterminated last line.
func (l *lineWriter) Tail() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	lines := append([]string(nil), l.tail...)
	if len(l.partial) > 0 {
		lines = append(lines, string(l.partial))
	}
	return strings.Join(lines, "\n")
}

// child is a control plane process started by this package, in its own process group.
type child struct {
	name string
	cmd  *exec.Cmd
	out  *lineWriter

	done    chan struct{} // closed when the process has exited
	waitErr error         // set before done is closed
}

// startChild starts path with args in a new process group (see sysProcAttr).
func startChild(name, path string, args []string, sink *logSink) (*child, error) {
	out := sink.writer(name)
	cmd := exec.Command(path, args...)
	cmd.Stdout = out
	cmd.Stderr = out
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	c := &child{name: name, cmd: cmd, out: out, done: make(chan struct{})}
	go func() {
		c.waitErr = cmd.Wait()
		close(c.done)
	}()
	return c, nil
}

// exitError describes a process that exited on its own, with the tail of its output.
func (c *child) exitError() error {
	err := c.waitErr
	if err == nil {
		err = errors.New("exit status 0")
	}
	return fmt.Errorf("%s exited unexpectedly: %w; last output:\n%s", c.name, err, c.out.Tail())
}

// exited reports whether the process has exited.
func (c *child) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// stop terminates the process group: SIGTERM, then SIGKILL after grace. It returns once the process is reaped.
func (c *child) stop(grace time.Duration) error {
	if c.exited() {
		return nil
	}
	pgid := c.cmd.Process.Pid
	// The group id is the pid (Setpgid). ESRCH means the group is already gone.
	if err := syscall.Kill(-pgid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("terminate %s: %w", c.name, err)
	}
	select {
	case <-c.done:
		return nil
	case <-time.After(grace):
	}
	if err := syscall.Kill(-pgid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("kill %s: %w", c.name, err)
	}
	<-c.done
	return nil
}

// ChildProcAttr is the SysProcAttr for a process a test starts itself (a binary under test): its own process
// group, and SIGKILLed by the kernel should the test binary die without stopping it.
func ChildProcAttr() *syscall.SysProcAttr { return sysProcAttr() }
