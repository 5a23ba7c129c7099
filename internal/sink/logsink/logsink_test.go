package logsink

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/deployment-tracker/deployment-tracker/internal/record"
	"github.com/deployment-tracker/deployment-tracker/internal/sink"
)

func rec(i int) record.Record {
	return record.Record{
		Name:               "ghcr.io/octo-org/app",
		Digest:             "sha256:1bb1e949e55dcefc6353e7b36c8897d2a107d8e8dca49d4e3c0ea8493fc0bc72",
		Version:            "1.0." + strconv.Itoa(i),
		Status:             record.StatusDeployed,
		LogicalEnvironment: "production",
		Cluster:            "moda-1",
		DeploymentName:     "default/app-" + strconv.Itoa(i) + "/app",
		Tags:               map[string]string{"team": "platform"},
		RuntimeRisks:       []string{"internet-exposed"},
	}
}

func TestPostWritesOneJSONLinePerRecord(t *testing.T) {
	var buf bytes.Buffer
	s := New(&buf)
	const n = 50
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.Post(t.Context(), rec(i)); err != nil {
				t.Errorf("Post: %v", err)
			}
		}()
	}
	wg.Wait()

	got := map[string]record.Record{}
	sc := bufio.NewScanner(&buf)
	for sc.Scan() {
		var r record.Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("line %q is not a record: %v", sc.Text(), err)
		}
		got[r.DeploymentName] = r
	}
	want := map[string]record.Record{}
	for i := range n {
		want[rec(i).DeploymentName] = rec(i)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("records (-want +got):\n%s", diff)
	}
}

func TestPostFieldNames(t *testing.T) {
	var buf bytes.Buffer
	r := rec(1)
	r.Tags, r.RuntimeRisks = nil, nil
	if err := New(&buf).Post(t.Context(), r); err != nil {
		t.Fatal(err)
	}
	want := `{"name":"ghcr.io/octo-org/app","digest":"sha256:1bb1e949e55dcefc6353e7b36c8897d2a107d8e8dca49d4e3c0ea8493fc0bc72",` +
		`"version":"1.0.1","status":"deployed","logical_environment":"production","cluster":"moda-1","deployment_name":"default/app-1/app"}` + "\n"
	if diff := cmp.Diff(want, buf.String()); diff != "" {
		t.Errorf("line (-want +got):\n%s", diff)
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestPostErrors(t *testing.T) {
	cancelled, cancel := context.WithCancel(t.Context())
	cancel()
	tests := []struct {
		name string
		ctx  context.Context
		w    *Sink
	}{
		{name: "write error", ctx: t.Context(), w: New(failingWriter{})},
		{name: "cancelled context", ctx: cancelled, w: New(&bytes.Buffer{})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.w.Post(tt.ctx, rec(1))
			if err == nil {
				t.Fatal("Post succeeded, want an error")
			}
			if c := sink.Classify(err); c != sink.ClassRetryable {
				t.Errorf("Classify = %v, want ClassRetryable", c)
			}
		})
	}
}
