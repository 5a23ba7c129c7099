// Package logsink is the sink of -dry-run: it writes each record as one JSON line instead of posting it.
package logsink

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sync"

	"github.com/deployment-tracker/deployment-tracker/internal/record"
	"github.com/deployment-tracker/deployment-tracker/internal/sink"
)

// Sink writes records to an io.Writer, one JSON object per line, in the request body shape of the GitHub API.
// It is safe for concurrent use: lines never interleave.
type Sink struct {
	mu sync.Mutex
	w  io.Writer
}

var _ sink.Sink = (*Sink)(nil)

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
	line = append(line, '\n')
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.w.Write(line); err != nil {
		return fmt.Errorf("log record %s: %w", r.DeploymentName, err)
	}
	return nil
}
