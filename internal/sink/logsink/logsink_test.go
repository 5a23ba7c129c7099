package logsink

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/deployment-tracker/deployment-tracker/internal/owner"
	"github.com/deployment-tracker/deployment-tracker/internal/record"
	"github.com/deployment-tracker/deployment-tracker/internal/rollout"
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

func TestNotifyLine(t *testing.T) {
	cest := time.FixedZone("CEST", 2*60*60)
	web := owner.Workload{Group: "apps", Kind: "Deployment", Namespace: "shop", Name: "web"}
	tests := []struct {
		name string
		n    rollout.Notification
		want string
	}{
		{
			name: "new rollout: times not known yet omitted",
			n: rollout.Notification{Rollout: rollout.Rollout{
				Workload: web, Revision: 3, RevisionKey: "5d4f8c", Phase: rollout.PhaseInProgress,
				Containers: []rollout.Container{{Name: "app", Image: "ghcr.io/octo-org/app:1.2.0"}},
				Started:    time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC),
			}},
			want: `{"rollout":{"workload":{"group":"apps","kind":"Deployment","namespace":"shop","name":"web"},"revision":3,` +
				`"phase":"InProgress","acknowledged":"","containers":[{"name":"app","image":"ghcr.io/octo-org/app:1.2.0","digest":""}],` +
				`"reason":"","message":""}}` + "\n",
		},
		{
			name: "completed: every time in UTC, the acknowledged phase",
			n: rollout.Notification{
				Rollout: rollout.Rollout{
					Workload: web, Revision: 3, Phase: rollout.PhaseCurrent,
					Containers: []rollout.Container{
						{Name: "init", Image: "busybox:1.36", Digest: "sha256:" + strings.Repeat("a", 64)},
						{Name: "app", Image: "ghcr.io/octo-org/app:1.2.0", Digest: "sha256:" + strings.Repeat("b", 64)},
					},
					Reason: "Current", Message: "Deployment is available. Replicas: 3",
					Submitted:    time.Date(2025, 6, 1, 12, 0, 1, 500_000_000, time.UTC),
					FirstRunning: time.Date(2025, 6, 1, 14, 0, 4, 0, cest),
					Completed:    time.Date(2025, 6, 1, 12, 0, 30, 0, time.UTC),
					Finished:     time.Date(2025, 6, 1, 12, 0, 31, 0, time.UTC),
				},
				Acknowledged: rollout.PhaseInProgress,
				State:        map[string]string{"ts": "1717243201.000100"},
			},
			want: `{"rollout":{"workload":{"group":"apps","kind":"Deployment","namespace":"shop","name":"web"},"revision":3,` +
				`"phase":"Current","acknowledged":"InProgress","containers":[` +
				`{"name":"init","image":"busybox:1.36","digest":"sha256:` + strings.Repeat("a", 64) + `"},` +
				`{"name":"app","image":"ghcr.io/octo-org/app:1.2.0","digest":"sha256:` + strings.Repeat("b", 64) + `"}],` +
				`"submitted":"2025-06-01T12:00:01Z","firstRunning":"2025-06-01T12:00:04Z","completed":"2025-06-01T12:00:30Z",` +
				`"finished":"2025-06-01T12:00:31Z","reason":"Current","message":"Deployment is available. Replicas: 3"}}` + "\n",
		},
		{
			name: "bare pod without containers",
			n: rollout.Notification{Rollout: rollout.Rollout{
				Workload: owner.Workload{Kind: "Pod", Namespace: "default", Name: "debug"}, Revision: 1,
				Phase: rollout.PhaseDeleted, Reason: "WorkloadDeleted", Message: "the workload was deleted",
				Finished: time.Date(2025, 6, 1, 12, 5, 0, 0, time.UTC),
			}, Acknowledged: rollout.PhaseCurrent},
			want: `{"rollout":{"workload":{"group":"","kind":"Pod","namespace":"default","name":"debug"},"revision":1,` +
				`"phase":"Deleted","acknowledged":"Current","containers":[],"finished":"2025-06-01T12:05:00Z",` +
				`"reason":"WorkloadDeleted","message":"the workload was deleted"}}` + "\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			state, err := New(&buf).Notify(t.Context(), tt.n)
			if err != nil {
				t.Fatalf("Notify: %v", err)
			}
			if state != nil {
				t.Errorf("Notify returned state %v, want nil (keep the previous state)", state)
			}
			if diff := cmp.Diff(tt.want, buf.String()); diff != "" {
				t.Errorf("line (-want +got):\n%s", diff)
			}
		})
	}
}

// TestNotifyConcurrentLines notifies from many goroutines, interleaved with posts: every line must stay whole.
func TestNotifyConcurrentLines(t *testing.T) {
	var buf bytes.Buffer
	s := New(&buf)
	const n = 50
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			r := rollout.Rollout{
				Workload: owner.Workload{Group: "apps", Kind: "Deployment", Namespace: "shop", Name: "app-" + strconv.Itoa(i)},
				Revision: 1, Phase: rollout.PhaseInProgress,
			}
			if _, err := s.Notify(t.Context(), rollout.Notification{Rollout: r}); err != nil {
				t.Errorf("Notify: %v", err)
			}
			if err := s.Post(t.Context(), rec(i)); err != nil {
				t.Errorf("Post: %v", err)
			}
		})
	}
	wg.Wait()

	rollouts, records := map[string]bool{}, 0
	sc := bufio.NewScanner(&buf)
	for sc.Scan() {
		var line struct {
			Rollout *struct {
				Workload struct{ Name string } `json:"workload"`
			} `json:"rollout"`
			DeploymentName string `json:"deployment_name"`
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("line %q is not JSON: %v", sc.Text(), err)
		}
		switch {
		case line.Rollout != nil:
			rollouts[line.Rollout.Workload.Name] = true
		case line.DeploymentName != "":
			records++
		default:
			t.Errorf("line %q is neither a rollout nor a record", sc.Text())
		}
	}
	if len(rollouts) != n || records != n {
		t.Errorf("%d rollouts and %d records written, want %d of each", len(rollouts), records, n)
	}
}

func TestNotifyErrors(t *testing.T) {
	cancelled, cancel := context.WithCancel(t.Context())
	cancel()
	tests := []struct {
		name string
		ctx  context.Context
		s    *Sink
	}{
		{name: "write error", ctx: t.Context(), s: New(failingWriter{})},
		{name: "cancelled context", ctx: cancelled, s: New(&bytes.Buffer{})},
	}
	n := rollout.Notification{Rollout: rollout.Rollout{Workload: owner.Workload{Kind: "Pod", Namespace: "default", Name: "p"}, Revision: 1}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.s.Notify(tt.ctx, n)
			if err == nil {
				t.Fatal("Notify succeeded, want an error")
			}
			if c := sink.Classify(err); c != sink.ClassRetryable {
				t.Errorf("Classify = %v, want ClassRetryable", c)
			}
		})
	}
}
