package ledger

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/deployment-tracker/deployment-tracker/internal/apis/records/v1alpha1"
	"github.com/deployment-tracker/deployment-tracker/internal/metrics"
	"github.com/deployment-tracker/deployment-tracker/internal/record"
	"github.com/deployment-tracker/deployment-tracker/internal/sink"
)

const week = 7 * 24 * time.Hour

// named is r under the deployment name shop/<name>/app.
func named(r record.Record, name string) record.Record {
	r.DeploymentName = "shop/" + name + "/app"
	return r
}

// deploymentNames are the deployment names of the ledger's records, sorted.
func deploymentNames(t *testing.T, s *apiServer) []string {
	t.Helper()
	var list v1alpha1.DeploymentRecordList
	if err := s.List(t.Context(), &list, client.InNamespace(namespace)); err != nil {
		t.Fatalf("listing the ledger: %v", err)
	}
	var out []string
	for _, dr := range list.Items {
		out = append(out, dr.Spec.DeploymentName)
	}
	slices.Sort(out)
	return out
}

func TestPruneRecords(t *testing.T) {
	m := decidedBy(0, v1alpha1.SourceWebhook)
	errUnavailable := errors.New("post ghcr.io/octo-org/web to github: 503 Service Unavailable")
	errRejected := fmt.Errorf("post ghcr.io/octo-org/web to github: %w", &sink.PermanentError{StatusCode: 422, Message: "invalid"})
	errNotFound := fmt.Errorf("post ghcr.io/octo-org/web to github: %w", &sink.NotFoundError{Message: "no artifacts found"})
	gone := t1.Add(time.Hour) // when the workloads go
	tests := []struct {
		name    string
		history func(r record.Record) []op // r: the record of the test's key, deployed
		at      time.Time                  // of the pass
		deleted bool
	}{
		{
			name:    "decommissioned and delivered more than the retention ago: deleted",
			history: func(r record.Record) []op { return lifecycle(r, m, gone, gone) },
			at:      gone.Add(week + time.Second),
			deleted: true,
		},
		{
			name:    "decommissioned and delivered less than the retention ago: kept",
			history: func(r record.Record) []op { return lifecycle(r, m, gone, gone) },
			at:      gone.Add(week - time.Second),
		},
		{
			name: "the age counts from the delivery of the decommission, not from the deployment",
			history: func(r record.Record) []op {
				return lifecycle(r, m, t1.Add(20*24*time.Hour), t1.Add(20*24*time.Hour))
			},
			at: t1.Add(21 * 24 * time.Hour),
		},
		{
			name: "the age counts from the delivery, not from the decision",
			history: func(r record.Record) []op {
				return lifecycle(r, m, gone, gone.Add(6*24*time.Hour)) // the sink was down for six days
			},
			at: gone.Add(week + time.Hour),
		},
		{
			name: "deployed and delivered long ago: kept",
			history: func(r record.Record) []op {
				return []op{put(t1, r, m), delivered(t1, r)}
			},
			at: t1.Add(365 * 24 * time.Hour),
		},
		{
			name: "decommissioned, not delivered yet: kept",
			history: func(r record.Record) []op {
				return []op{put(t1, r, m), delivered(t1, r), put(gone, decommissioned(r), m)}
			},
			at: gone.Add(30 * 24 * time.Hour),
		},
		{
			name: "decommission failed: kept",
			history: func(r record.Record) []op {
				return []op{put(t1, r, m), delivered(t1, r), put(gone, decommissioned(r), m),
					failed(gone, decommissioned(r), errUnavailable, 1, gone.Add(time.Second))}
			},
			at: gone.Add(30 * 24 * time.Hour),
		},
		{
			name: "decommissioned, then deployed again: kept",
			history: func(r record.Record) []op {
				return append(lifecycle(r, m, gone, gone), put(gone.Add(time.Hour), r, m))
			},
			at: gone.Add(30 * 24 * time.Hour),
		},
		{
			name: "deployed again and decommissioned again: the age counts from the second decommission",
			history: func(r record.Record) []op {
				again := gone.Add(6 * 24 * time.Hour)
				return append(lifecycle(r, m, gone, gone),
					put(again, r, m), delivered(again, r), put(again.Add(time.Hour), decommissioned(r), m),
					delivered(again.Add(time.Hour), decommissioned(r)))
			},
			at: gone.Add(week + time.Hour),
		},
		{
			name: "the deployed record was rejected, nothing delivered: kept",
			history: func(r record.Record) []op {
				return []op{put(t1, r, m), failed(t1, r, errRejected, 1, time.Time{}), put(gone, decommissioned(r), m)}
			},
			at: gone.Add(30 * 24 * time.Hour),
		},
		{
			name: "decommissioned at the digest the sink held (the new one not attested): deleted",
			history: func(r record.Record) []op {
				newer := r
				newer.Digest, newer.Version = dB, "1.5.0"
				return []op{put(t1, r, m), delivered(t1, r), put(t1, newer, decidedBy(time.Minute, v1alpha1.SourceWebhook)),
					failed(t1, newer, errNotFound, 1, t1.Add(time.Hour)),
					put(gone, decommissioned(newer), m), delivered(gone, decommissioned(r))}
			},
			at:      gone.Add(week + time.Second),
			deleted: true,
		},
	}
	for _, generations := range []bool{true, false} {
		for _, tt := range tests {
			t.Run(fmt.Sprintf("%s (generations %t)", tt.name, generations), func(t *testing.T) {
				s := newAPIServer(t, generations)
				c := &clock{}
				l := newLedger(s, c)
				key, other := named(recA, "job-1"), named(recA, "web")
				apply(t, l, c, tt.history(key))
				apply(t, l, c, []op{put(t1, other, m), delivered(t1, other)})
				c.set(tt.at)
				kept, deleted, err := l.PruneRecords(t.Context(), week)
				if err != nil {
					t.Fatalf("PruneRecords() error = %v", err)
				}
				want := []string{key.DeploymentName, other.DeploymentName}
				wantKept, wantDeleted := 2, 0
				if tt.deleted {
					want, wantKept, wantDeleted = want[1:], 1, 1
				}
				if kept != wantKept || deleted != wantDeleted {
					t.Errorf("PruneRecords() = kept %d, deleted %d; want %d, %d", kept, deleted, wantKept, wantDeleted)
				}
				if diff := cmp.Diff(want, deploymentNames(t, s)); diff != "" {
					t.Errorf("records left (-want +got):\n%s", diff)
				}
			})
		}
	}
}

// lifecycle is the history of a key deployed at t1 and delivered, decommissioned at gone and the decommission
// delivered at delivered.
func lifecycle(r record.Record, m Meta, gone, deliveredAt time.Time) []op {
	return []op{put(t1, r, m), delivered(t1, r), put(gone, decommissioned(r), m), delivered(deliveredAt, decommissioned(r))}
}

func TestPruneRecordsRaces(t *testing.T) {
	m := decidedBy(0, v1alpha1.SourceWebhook)
	gone, at := t1.Add(time.Hour), t1.Add(30*24*time.Hour)
	key := named(recA, "job-1")
	t.Run("deployed again since the listing: kept, deployed", func(t *testing.T) {
		s := newAPIServer(t, true)
		c := &clock{}
		l := newLedger(s, c)
		apply(t, l, c, lifecycle(key, m, gone, gone))
		c.set(at)
		s.beforeDelete = func(ctx context.Context, _ client.WithWatch, _ client.Object) {
			s.beforeDelete = nil
			if err := l.Put(ctx, key, m); err != nil {
				t.Errorf("Put() error = %v", err)
			}
		}
		kept, deleted, err := l.PruneRecords(t.Context(), week)
		if err != nil || kept != 1 || deleted != 0 {
			t.Errorf("PruneRecords() = kept %d, deleted %d, %v; want 1, 0, nil", kept, deleted, err)
		}
		if dr := get(t, s, key); dr.Spec.Status != v1alpha1.StatusDeployed {
			t.Errorf("record %s, want deployed", dr.Spec.Status)
		}
	})
	t.Run("recreated since the listing (another UID): kept", func(t *testing.T) {
		s := newAPIServer(t, true)
		c := &clock{}
		l := newLedger(s, c)
		apply(t, l, c, lifecycle(key, m, gone, gone))
		c.set(at)
		s.beforeDelete = func(ctx context.Context, fc client.WithWatch, obj client.Object) {
			s.beforeDelete = nil
			dr := obj.DeepCopyObject().(*v1alpha1.DeploymentRecord)
			if err := fc.Delete(ctx, dr); err != nil {
				t.Errorf("Delete() error = %v", err)
			}
			dr.ResourceVersion, dr.UID = "", "recreated"
			if err := fc.Create(ctx, dr); err != nil {
				t.Errorf("Create() error = %v", err)
			}
			// The fake checks the resourceVersion precondition first: give the new object the old one's.
			if err := fc.Get(ctx, client.ObjectKeyFromObject(dr), dr); err != nil {
				t.Errorf("Get() error = %v", err)
			}
			dr.ResourceVersion = obj.GetResourceVersion()
		}
		_, deleted, err := l.PruneRecords(t.Context(), week)
		if deleted != 0 {
			t.Errorf("PruneRecords() deleted %d (%v), want 0: the UID changed", deleted, err)
		}
		if got := deploymentNames(t, s); len(got) != 1 {
			t.Errorf("records left %v, want the recreated one", got)
		}
	})
	t.Run("deleted since the listing: neither kept nor deleted", func(t *testing.T) {
		s := newAPIServer(t, true)
		c := &clock{}
		l := newLedger(s, c)
		apply(t, l, c, lifecycle(key, m, gone, gone))
		c.set(at)
		s.beforeDelete = func(ctx context.Context, fc client.WithWatch, obj client.Object) {
			s.beforeDelete = nil
			if err := fc.Delete(ctx, obj.DeepCopyObject().(client.Object)); err != nil {
				t.Errorf("Delete() error = %v", err)
			}
		}
		kept, deleted, err := l.PruneRecords(t.Context(), week)
		if err != nil || kept != 0 || deleted != 0 {
			t.Errorf("PruneRecords() = kept %d, deleted %d, %v; want 0, 0, nil", kept, deleted, err)
		}
	})
}

func TestPruneRecordsPages(t *testing.T) {
	m := decidedBy(0, v1alpha1.SourceWebhook)
	gone := t1.Add(time.Hour)
	s := newAPIServer(t, true)
	c := &clock{}
	l := newLedger(s, c)
	var want []string
	for i := range 7 {
		r := named(recA, fmt.Sprintf("job-%d", i))
		if i%3 == 0 {
			apply(t, l, c, []op{put(t1, r, m), delivered(t1, r)}) // still deployed
			want = append(want, r.DeploymentName)
			continue
		}
		apply(t, l, c, lifecycle(r, m, gone, gone))
	}
	l.pageSize = 2
	s.pager.pages()
	c.set(gone.Add(week + time.Second))
	kept, deleted, err := l.PruneRecords(t.Context(), week)
	if err != nil || kept != 3 || deleted != 4 {
		t.Errorf("PruneRecords() = kept %d, deleted %d, %v; want 3, 4, nil", kept, deleted, err)
	}
	if got := s.pager.pages(); len(got) != 4 {
		t.Errorf("%d pages read, want 4 (7 records, 2 a page)", len(got))
	}
	// The deletes of a page do not shift the next one: every record was decided on.
	if diff := cmp.Diff(want, deploymentNames(t, s)); diff != "" {
		t.Errorf("records left (-want +got):\n%s", diff)
	}
}

func TestPruneRecordsErrors(t *testing.T) {
	m := decidedBy(0, v1alpha1.SourceWebhook)
	gone := t1.Add(time.Hour)
	forbidden := apierrors.NewForbidden(gr, "x", errors.New("no delete verb"))
	down := errors.New("connection refused")
	tests := []struct {
		name      string
		fail      map[string][]error
		wantErr   func(error) bool
		wantCount int // deletes done before the error
	}{
		{name: "delete refused: the pass ends", fail: map[string][]error{"delete": {forbidden}}, wantErr: apierrors.IsForbidden},
		{name: "second delete fails: the first stays done", fail: map[string][]error{"delete": {nil, forbidden}}, wantErr: apierrors.IsForbidden, wantCount: 1},
		{name: "list fails", fail: map[string][]error{"list": {down}}, wantErr: func(err error) bool { return errors.Is(err, down) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newAPIServer(t, true)
			c := &clock{}
			l := newLedger(s, c)
			for i := range 3 {
				apply(t, l, c, lifecycle(named(recA, fmt.Sprintf("job-%d", i)), m, gone, gone))
			}
			for op, errs := range tt.fail {
				s.failNext(op, errs...)
			}
			c.set(gone.Add(30 * 24 * time.Hour))
			_, deleted, err := l.PruneRecords(t.Context(), week)
			if !tt.wantErr(err) {
				t.Errorf("PruneRecords() error = %v", err)
			}
			if deleted != tt.wantCount {
				t.Errorf("PruneRecords() deleted %d, want %d", deleted, tt.wantCount)
			}
			if got := len(deploymentNames(t, s)); got != 3-tt.wantCount {
				t.Errorf("%d records left, want %d", got, 3-tt.wantCount)
			}
		})
	}
}

func TestNewRetention(t *testing.T) {
	l := &Ledger{}
	tests := []struct {
		name    string
		cfg     RetentionConfig
		wantErr bool
	}{
		{name: "no ledger", cfg: RetentionConfig{Age: week}, wantErr: true},
		{name: "no age", cfg: RetentionConfig{Ledger: l}, wantErr: true},
		{name: "negative age", cfg: RetentionConfig{Ledger: l, Age: -time.Hour}, wantErr: true},
		{name: "defaults", cfg: RetentionConfig{Ledger: l, Age: week}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := NewRetention(tt.cfg)
			if (err != nil) != tt.wantErr {
				t.Fatalf("NewRetention() error = %v, want error %t", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if r.cfg.Interval != time.Hour {
				t.Errorf("interval %s, want 1h", r.cfg.Interval)
			}
			if r.cfg.Delay < 2*time.Minute || r.cfg.Delay >= 5*time.Minute {
				t.Errorf("first pass after %s, want 2 to 5 minutes", r.cfg.Delay)
			}
			if !r.NeedLeaderElection() {
				t.Error("the retention must run on the leader only")
			}
		})
	}
}

// TestRetentionRuns: the runnable passes after its delay and at every interval, counting deletions and the
// ledger's size, until its context ends.
func TestRetentionRuns(t *testing.T) {
	m := decidedBy(0, v1alpha1.SourceWebhook)
	gone := t1.Add(time.Hour)
	s := newAPIServer(t, true)
	c := &clock{}
	l := newLedger(s, c)
	apply(t, l, c, lifecycle(named(recA, "job-1"), m, gone, gone))
	apply(t, l, c, []op{put(t1, named(recA, "web"), m), delivered(t1, named(recA, "web"))})
	c.set(gone.Add(week + time.Second))
	mx := metrics.New(prometheus.NewPedanticRegistry())
	r, err := NewRetention(RetentionConfig{Ledger: l, Age: week, Interval: time.Millisecond, Delay: time.Millisecond, Metrics: mx})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- r.Start(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for testutil.ToFloat64(mx.Ledger.Records) != 1 || testutil.ToFloat64(mx.Ledger.RecordsDeleted) != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("the retention did not run: deleted %v, records %v", testutil.ToFloat64(mx.Ledger.RecordsDeleted), testutil.ToFloat64(mx.Ledger.Records))
		}
		time.Sleep(time.Millisecond)
	}
	// A later decommission goes at a later pass.
	apply(t, l, c, []op{put(gone, decommissioned(named(recA, "web")), m), delivered(gone, decommissioned(named(recA, "web")))})
	c.set(gone.Add(2*week + time.Second))
	for testutil.ToFloat64(mx.Ledger.Records) != 0 || testutil.ToFloat64(mx.Ledger.RecordsDeleted) != 2 {
		if time.Now().After(deadline) {
			t.Fatalf("the second pass did not run: deleted %v, records %v", testutil.ToFloat64(mx.Ledger.RecordsDeleted), testutil.ToFloat64(mx.Ledger.Records))
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Start() = %v", err)
	}
	if got := deploymentNames(t, s); len(got) != 0 {
		t.Errorf("records left %v, want none", got)
	}
}
