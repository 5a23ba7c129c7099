// Package logsink is the sink of -dry-run: it writes each record, and each rollout notification, as one JSON
// line instead of posting it.
package logsink

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/deployment-tracker/deployment-tracker/internal/record"
	"github.com/deployment-tracker/deployment-tracker/internal/rollout"
	"github.com/deployment-tracker/deployment-tracker/internal/sink"
)

// Sink writes records to an io.Writer, one JSON object per line, in the request body shape of the GitHub API,
// and rollout notifications as {"rollout": {...}} lines. It is safe for concurrent use: lines never interleave.
type Sink struct {
	mu sync.Mutex
	w  io.Writer
}

var (
	_ sink.Sink        = (*Sink)(nil)
	_ sink.RolloutSink = (*Sink)(nil)
)

// New returns a Sink writing to w (for example os.Stdout).
func New(w io.Writer) *Sink { return &Sink{w: w} }

// Post writes r as one line. A write error is returned as is: retryable.
func (s *Sink) Post(ctx context.Context, r record.Record) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("log record %s: %w", r.DeploymentName, err)
	}
	line, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("log record %s: encode: %w", r.DeploymentName, err)
	}
	if err := s.write(line); err != nil {
		return fmt.Errorf("log record %s: %w", r.DeploymentName, err)
	}
	return nil
}

// Notify writes n as one line {"rollout": {...}} and keeps no state (it returns nil). A write error is
// returned as is: retryable.
func (s *Sink) Notify(ctx context.Context, n rollout.Notification) (map[string]string, error) {
	r := n.Rollout
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("log rollout %s revision %d: %w", r.Workload, r.Revision, err)
	}
	line, err := json.Marshal(notificationLine{Rollout: rolloutOf(n)})
	if err != nil {
		return nil, fmt.Errorf("log rollout %s revision %d: encode: %w", r.Workload, r.Revision, err)
	}
	if err := s.write(line); err != nil {
		return nil, fmt.Errorf("log rollout %s revision %d: %w", r.Workload, r.Revision, err)
	}
	return nil, nil
}

// write writes line and a newline in one call, so that lines of concurrent calls never interleave.
func (s *Sink) write(line []byte) error {
	line = append(line, '\n')
	s.mu.Lock()
	defer s.mu.Unlock()
	_, err := s.w.Write(line)
	return err
}

// notificationLine is the JSON shape of a rollout notification line.
type notificationLine struct {
	Rollout rolloutJSON `json:"rollout"`
}

type rolloutJSON struct {
	Workload     workloadJSON    `json:"workload"`
	Revision     int64           `json:"revision"`
	Phase        rollout.Phase   `json:"phase"`
	Acknowledged rollout.Phase   `json:"acknowledged"`
	Containers   []containerJSON `json:"containers"`
	Submitted    string          `json:"submitted,omitempty"`
	FirstRunning string          `json:"firstRunning,omitempty"`
	Completed    string          `json:"completed,omitempty"`
	Finished     string          `json:"finished,omitempty"`
	Reason       string          `json:"reason"`
	Message      string          `json:"message"`
}

type workloadJSON struct {
	Group     string `json:"group"`
	Kind      string `json:"kind"`
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
}

type containerJSON struct {
	Name   string `json:"name"`
	Image  string `json:"image"`
	Digest string `json:"digest"`
	Init   bool   `json:"init,omitempty"`
}

func rolloutOf(n rollout.Notification) rolloutJSON {
	r := n.Rollout
	out := rolloutJSON{
		Workload:     workloadJSON{Group: r.Workload.Group, Kind: r.Workload.Kind, Namespace: r.Workload.Namespace, Name: r.Workload.Name},
		Revision:     r.Revision,
		Phase:        r.Phase,
		Acknowledged: n.Acknowledged,
		Containers:   make([]containerJSON, 0, len(r.Containers)),
		Submitted:    timestamp(r.Submitted),
		FirstRunning: timestamp(r.FirstRunning),
		Completed:    timestamp(r.Completed),
		Finished:     timestamp(r.Finished),
		Reason:       r.Reason,
		Message:      r.Message,
	}
	for _, c := range r.Containers {
		out.Containers = append(out.Containers, containerJSON(c))
	}
	return out
}

// timestamp formats t in RFC 3339, in UTC, to the second as Kubernetes does; "" (omitted) when t is zero.
func timestamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}
