package delivery

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/deployment-tracker/deployment-tracker/internal/delivery"
	"github.com/deployment-tracker/deployment-tracker/internal/metrics"
	"github.com/deployment-tracker/deployment-tracker/internal/owner"
	"github.com/deployment-tracker/deployment-tracker/internal/rollout"
	"github.com/deployment-tracker/deployment-tracker/internal/sink"
)

// t0 is the fake clock's start; the rollouts of the tests happen after it.
var t0 = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

var web = owner.Workload{Group: "apps", Kind: "Deployment", Namespace: "shop", Name: "web"}

// at is t0 plus m minutes.
func at(m float64) time.Time { return t0.Add(time.Duration(m * float64(time.Minute))) }

// clock is a fake clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// exporter keeps what it is told.
type exporter struct {
	mu      sync.Mutex
	obs     []delivery.Observation
	without []string
	// before, if set, runs before each observation is kept (to check what the ledger holds by then).
	before func(o delivery.Observation)
}

func (e *exporter) Record(_ context.Context, o delivery.Observation) {
	if e.before != nil {
		e.before(o)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.obs = append(e.obs, o)
}

func (e *exporter) RecordWithoutCommit(_ context.Context, _ delivery.Rollout, reason string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.without = append(e.without, reason)
}

// kinds are the kinds recorded, in order, and forgets them.
func (e *exporter) kinds() []delivery.Kind {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []delivery.Kind
	for _, o := range e.obs {
		out = append(out, o.Kind)
	}
	e.obs = nil
	return out
}

func (e *exporter) last(k delivery.Kind) (delivery.Observation, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for i := len(e.obs) - 1; i >= 0; i-- {
		if e.obs[i].Kind == k {
			return e.obs[i], true
		}
	}
	return delivery.Observation{}, false
}

// states is a StateRecorder keeping the last state per revision.
type states struct {
	mu   sync.Mutex
	got  map[int64]map[string]string
	fail error
}

func (s *states) RolloutDelivered(_ context.Context, r rollout.Rollout, sinkName string, st map[string]string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return s.fail
	}
	if sinkName != Name {
		return errors.New("unexpected sink " + sinkName)
	}
	if s.got == nil {
		s.got = map[int64]map[string]string{}
	}
	s.got[r.Revision] = maps.Clone(st)
	return nil
}

func (s *states) of(rev int64) map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.got[rev]
}

// annotated are the annotations of every workload.
type annotated Annotations

func (a annotated) Annotations(context.Context, owner.Workload) (Annotations, bool, error) {
	return Annotations(a), true, nil
}

// commitTimeOf annotates workloads with a commit time.
func commitTimeOf(t time.Time) WorkloadReader {
	return annotated{Workload: map[string]string{AnnotationCommitTime: t.Format(time.RFC3339), AnnotationCommit: "v1"}}
}

func newTestSink(t *testing.T, cfg Config) (*Sink, *exporter) {
	t.Helper()
	e := &exporter{}
	if cfg.Exporters == nil {
		cfg.Exporters = []delivery.Exporter{e}
	}
	if cfg.LogicalEnvironment == "" {
		cfg.LogicalEnvironment, cfg.Cluster = "production", "eu-1"
	}
	if cfg.Now == nil {
		cfg.Now = (&clock{now: t0}).Now
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s, e
}

// ro is revision rev of web, started at t0 + rev minutes, as the controller decides it.
func ro(rev int64, phase rollout.Phase, f ...func(*rollout.Rollout)) rollout.Rollout {
	r := rollout.Rollout{
		Workload: web, Revision: rev, RevisionKey: "hash" + string(rune('a'+rev)), Phase: phase,
		Containers: []rollout.Container{{Name: "app", Image: "ghcr.io/octo-org/web:v1.0.0"}},
		Started:    at(float64(rev)),
	}
	for _, ff := range f {
		ff(&r)
	}
	return r
}

// submitted, running, completed and finished set the timeline at t0 + m minutes.
func submitted(m float64) func(*rollout.Rollout) {
	return func(r *rollout.Rollout) { r.Submitted = at(m) }
}
func running(m float64) func(*rollout.Rollout) {
	return func(r *rollout.Rollout) { r.FirstRunning = at(m) }
}
func completed(m float64) func(*rollout.Rollout) {
	return func(r *rollout.Rollout) { r.Completed = at(m) }
}
func finished(m float64) func(*rollout.Rollout) {
	return func(r *rollout.Rollout) { r.Finished = at(m) }
}

// notifier threads what the dispatcher threads between notifications of one rollout: the phase acknowledged
// and the state returned.
type notifier struct {
	acked map[int64]rollout.Phase
	state map[int64]map[string]string
}

func newNotifier() *notifier {
	return &notifier{acked: map[int64]rollout.Phase{}, state: map[int64]map[string]string{}}
}

func (n *notifier) notify(t *testing.T, s *Sink, r rollout.Rollout) {
	t.Helper()
	st, err := s.Notify(t.Context(), rollout.Notification{Rollout: r, Acknowledged: n.acked[r.Revision], State: n.state[r.Revision]})
	if err != nil {
		t.Fatalf("Notify(revision %d %s) error = %v", r.Revision, r.Phase, err)
	}
	n.acked[r.Revision], n.state[r.Revision] = r.Phase, st
}

// TestNotifyObservesEachKindOnce: every notification makes the observations its rollout calls for that were
// not made before, whatever phases the dispatcher skipped, and never one twice.
func TestNotifyObservesEachKindOnce(t *testing.T) {
	type step struct {
		r    rollout.Rollout
		want []delivery.Kind
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{
			name: "in progress, running, current, superseded",
			steps: []step{
				{r: ro(1, rollout.PhaseInProgress, submitted(1))},
				{r: ro(1, rollout.PhaseInProgress, submitted(1), running(2)), want: []delivery.Kind{delivery.KindRunning}},
				{r: ro(1, rollout.PhaseCurrent, submitted(1), running(2), completed(3)), want: []delivery.Kind{delivery.KindComplete}},
				{r: ro(1, rollout.PhaseSuperseded, submitted(1), running(2), completed(3), finished(9))},
				{r: ro(1, rollout.PhaseDeleted, submitted(1), running(2), completed(3), finished(10))},
			},
		},
		{
			name: "complete before the first notification: running and complete at once",
			steps: []step{
				{r: ro(1, rollout.PhaseCurrent, running(2), completed(3)), want: []delivery.Kind{delivery.KindRunning, delivery.KindComplete}},
				{r: ro(1, rollout.PhaseCurrent, running(2), completed(3))},
			},
		},
		{
			name: "superseded before its Current was delivered: it completed all the same",
			steps: []step{
				{r: ro(1, rollout.PhaseSuperseded, running(2), completed(3), finished(4)), want: []delivery.Kind{delivery.KindRunning, delivery.KindComplete}},
			},
		},
		{
			name: "failed then rolled back: one failed change",
			steps: []step{
				{r: ro(2, rollout.PhaseInProgress, running(3)), want: []delivery.Kind{delivery.KindRunning}},
				{r: ro(2, rollout.PhaseFailed, running(3), finished(8)), want: []delivery.Kind{delivery.KindFailed}},
				{r: ro(2, rollout.PhaseRolledBack, running(3), finished(12))},
			},
		},
		{
			name: "rolled back before it completed",
			steps: []step{
				{r: ro(2, rollout.PhaseInProgress)},
				{r: ro(2, rollout.PhaseRolledBack, finished(5)), want: []delivery.Kind{delivery.KindRolledBack}},
			},
		},
		{
			name: "completed, then rolled back",
			steps: []step{
				{r: ro(2, rollout.PhaseCurrent, running(3), completed(4)), want: []delivery.Kind{delivery.KindRunning, delivery.KindComplete}},
				{r: ro(2, rollout.PhaseRolledBack, running(3), completed(4), finished(30)), want: []delivery.Kind{delivery.KindRolledBack}},
			},
		},
		{
			name: "failed, then recovered",
			steps: []step{
				{r: ro(2, rollout.PhaseFailed, finished(8)), want: []delivery.Kind{delivery.KindFailed}},
				{r: ro(2, rollout.PhaseCurrent, running(9), completed(10)), want: []delivery.Kind{delivery.KindRunning, delivery.KindComplete}},
			},
		},
		{
			name: "never ran, superseded",
			steps: []step{
				{r: ro(2, rollout.PhaseInProgress)},
				{r: ro(2, rollout.PhaseSuperseded, finished(3))},
			},
		},
		{
			name: "adopted: never observed",
			steps: []step{
				{r: ro(1, rollout.PhaseCurrent, running(2), completed(3), func(r *rollout.Rollout) { r.Adopted = true })},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, e := newTestSink(t, Config{Workloads: commitTimeOf(t0)})
			n := newNotifier()
			for i, st := range tt.steps {
				n.notify(t, s, st.r)
				if diff := cmp.Diff(st.want, e.kinds()); diff != "" {
					t.Errorf("step %d (%s): observations (-want +got):\n%s", i, st.r.Phase, diff)
				}
			}
		})
	}
}

// TestNotifyOnceAcrossRestarts: the state the ledger kept is all a new sink (a restarted tracker, a new leader)
// needs: nothing observed before is observed again, what is new is.
func TestNotifyOnceAcrossRestarts(t *testing.T) {
	led := &states{}
	first, e1 := newTestSink(t, Config{Workloads: commitTimeOf(t0), Ledger: led})
	n := newNotifier()
	n.notify(t, first, ro(1, rollout.PhaseInProgress, running(2)))
	n.notify(t, first, ro(1, rollout.PhaseCurrent, running(2), completed(3)))
	if got := e1.kinds(); !slices.Equal(got, []delivery.Kind{delivery.KindRunning, delivery.KindComplete}) {
		t.Fatalf("first sink observed %v", got)
	}
	if diff := cmp.Diff(n.state[1], led.of(1)); diff != "" {
		t.Errorf("the ledger keeps another state than the one returned (-returned +kept):\n%s", diff)
	}

	// A restart: the dispatcher seeds what the ledger kept, and a rollout not acknowledged as it is now is
	// notified again.
	second, e2 := newTestSink(t, Config{Workloads: commitTimeOf(t0), Ledger: led})
	restarted := &notifier{acked: maps.Clone(n.acked), state: map[int64]map[string]string{1: led.of(1)}}
	restarted.notify(t, second, ro(1, rollout.PhaseCurrent, running(2), completed(3)))
	restarted.notify(t, second, ro(1, rollout.PhaseSuperseded, running(2), completed(3), finished(20)))
	if got := e2.kinds(); len(got) != 0 {
		t.Errorf("after the restart, observed %v again", got)
	}
	restarted.notify(t, second, ro(2, rollout.PhaseCurrent, running(21), completed(22)))
	if got := e2.kinds(); !slices.Equal(got, []delivery.Kind{delivery.KindRunning, delivery.KindComplete}) {
		t.Errorf("after the restart, the next rollout observed %v", got)
	}
}

// TestNotifyKeepsStateBeforeRecording: the state listing an observation is in the ledger before the exporters
// record it; when the ledger cannot keep it, nothing is recorded and the error is retryable.
func TestNotifyKeepsStateBeforeRecording(t *testing.T) {
	led := &states{}
	e := &exporter{}
	e.before = func(o delivery.Observation) {
		if got := kindsOf(led.of(o.Rollout.Revision)[StateObserved]); !slices.Contains(got, string(o.Kind)) {
			t.Errorf("%s recorded while the ledger lists %v", o.Kind, got)
		}
	}
	s, _ := newTestSink(t, Config{Workloads: commitTimeOf(t0), Ledger: led, Exporters: []delivery.Exporter{e}})
	n := newNotifier()
	n.notify(t, s, ro(1, rollout.PhaseCurrent, running(2), completed(3)))
	if len(e.obs) != 2 {
		t.Fatalf("recorded %d observations, want 2", len(e.obs))
	}

	led.fail = errors.New("etcdserver: request timed out")
	r := ro(2, rollout.PhaseCurrent, running(5), completed(6))
	st, err := s.Notify(t.Context(), rollout.Notification{Rollout: r})
	if err == nil || sink.Classify(err) != sink.ClassRetryable || st != nil {
		t.Fatalf("Notify() = %v, %v; want a retryable error and no state", st, err)
	}
	if len(e.obs) != 2 {
		t.Errorf("recorded %d observations after the ledger failed, want still 2", len(e.obs))
	}
	led.fail = nil
	n.notify(t, s, r)
	if len(e.obs) != 4 {
		t.Errorf("recorded %d observations after the retry, want 4", len(e.obs))
	}
}

// TestNotifyCatchUp: rollouts the sink was never told of whose events are older than CatchUp when it started
// (history from before delivery metrics were enabled) are marked observed, not recorded; recent ones and those
// it was told of are recorded.
func TestNotifyCatchUp(t *testing.T) {
	clk := &clock{now: at(24 * 60)} // a day after t0
	tests := []struct {
		name  string
		r     rollout.Rollout
		acked rollout.Phase
		state map[string]string
		want  []delivery.Kind
	}{
		{name: "a day old, never told: marked", r: ro(1, rollout.PhaseCurrent, running(2), completed(3))},
		{name: "a day old, never told, failed: marked", r: ro(1, rollout.PhaseFailed, finished(8))},
		{
			name: "ran long ago, completed recently",
			r:    ro(1, rollout.PhaseCurrent, running(2), completed(24*60-30)),
			want: []delivery.Kind{delivery.KindComplete},
		},
		{
			name:  "a day old, told before (the ledger had its state)",
			r:     ro(1, rollout.PhaseCurrent, running(2), completed(3)),
			acked: rollout.PhaseInProgress, state: map[string]string{StateObserved: "running"},
			want: []delivery.Kind{delivery.KindComplete},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, e := newTestSink(t, Config{Workloads: commitTimeOf(t0), Now: clk.Now})
			st, err := s.Notify(t.Context(), rollout.Notification{Rollout: tt.r, Acknowledged: tt.acked, State: tt.state})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, e.kinds()); diff != "" {
				t.Errorf("recorded (-want +got):\n%s", diff)
			}
			if got := dueKinds(tt.r, kindsOf(st[StateObserved])); len(got) != 0 {
				t.Errorf("after the notification, %v are still due", got)
			}
		})
	}
}

// TestNotifyObservation: what an observation carries: the environment, cluster, the rollout's timeline and
// its commit, and for a rollback no commit.
func TestNotifyObservation(t *testing.T) {
	s, e := newTestSink(t, Config{Workloads: commitTimeOf(at(-60))})
	n := newNotifier()
	n.notify(t, s, ro(1, rollout.PhaseCurrent, submitted(1), running(2), completed(3)))
	got, _ := e.last(delivery.KindComplete)
	want := delivery.Observation{Kind: delivery.KindComplete, Rollout: delivery.Rollout{
		Workload: web, Environment: "production", Cluster: "eu-1", Revision: 1, Commit: "v1", CommitTime: at(-60),
		Submitted: at(1), FirstRunning: at(2), Completed: at(3),
	}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("observation (-want +got):\n%s", diff)
	}
	if d, ok := got.LeadTime(); !ok || d != 63*time.Minute {
		t.Errorf("lead time %s, %t; want 63m", d, ok)
	}
	if st := n.state[1]; st[StateCommit] != "v1" || st[StateCommitTime] != at(-60).Format(time.RFC3339Nano) {
		t.Errorf("state %v: want the commit and its time", st)
	}

	n.notify(t, s, ro(3, rollout.PhaseCurrent, running(5), completed(6), func(r *rollout.Rollout) { r.Restores = 1 }))
	got, _ = e.last(delivery.KindComplete)
	if _, ok := got.LeadTime(); ok || got.Rollout.Commit != "" {
		t.Errorf("a rollback has commit %q and a lead time; want neither", got.Rollout.Commit)
	}
	if len(e.without) != 0 {
		t.Errorf("counted %v without commit; want none (a rollback, and a rollout with its commit time)", e.without)
	}
}

// TestNewValidates: New reports every problem of the configuration.
func TestNewValidates(t *testing.T) {
	_, err := New(Config{Exporters: []delivery.Exporter{nil}, Timeout: -time.Second})
	if err == nil {
		t.Fatal("New() accepted an invalid configuration")
	}
	for _, want := range []string{"LogicalEnvironment", "nil", "negative"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("New() error %q does not mention %s", err, want)
		}
	}
	if _, err := New(Config{LogicalEnvironment: "production"}); err == nil {
		t.Error("New() accepted no exporter")
	}
	s, err := New(Config{LogicalEnvironment: "production", Exporters: []delivery.Exporter{NewPrometheus(metrics.New(prometheus.NewRegistry()).Delivery)}})
	if err != nil || s.cfg.Name != Name || s.cfg.Timeout != DefaultTimeout || s.cfg.CatchUp != DefaultCatchUp {
		t.Errorf("New() = %+v, %v; want the defaults", s, err)
	}
}
