package dispatch

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"reflect"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/deployment-tracker/deployment-tracker/internal/metrics"
	"github.com/deployment-tracker/deployment-tracker/internal/owner"
	"github.com/deployment-tracker/deployment-tracker/internal/rollout"
	"github.com/deployment-tracker/deployment-tracker/internal/sink"
)

// --- rollouts ---

var (
	t0  = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	web = owner.Workload{Group: "apps", Kind: "Deployment", Namespace: "shop", Name: "web"}
	api = owner.Workload{Group: "apps", Kind: "StatefulSet", Namespace: "shop", Name: "api"}
)

// ro returns revision rev of w's rollout in phase, with the timeline a rollout in that phase has.
func ro(w owner.Workload, rev int64, phase rollout.Phase) rollout.Rollout {
	r := rollout.Rollout{
		Workload:    w,
		Revision:    rev,
		RevisionKey: fmt.Sprintf("hash-%d", rev),
		Containers:  []rollout.Container{{Name: "app", Image: fmt.Sprintf("ghcr.io/octo-org/app:1.%d.0", rev)}},
		Phase:       phase,
		Reason:      string(phase),
		Started:     t0,
		Submitted:   t0.Add(time.Second),
		SubmittedBy: "webhook",
		Desired:     3,
	}
	if phase != rollout.PhaseInProgress {
		r.FirstRunning = t0.Add(5 * time.Second)
		r.Containers[0].Digest = digest(int(rev))
	}
	switch phase {
	case rollout.PhaseCurrent, rollout.PhaseSuperseded, rollout.PhaseRolledBack:
		r.Completed, r.Ready = t0.Add(30*time.Second), 3
	}
	if phase == rollout.PhaseFailed || phase.Final() {
		r.Finished = t0.Add(time.Minute)
	}
	return r
}

var (
	ipWeb  = ro(web, 1, rollout.PhaseInProgress)
	curWeb = ro(web, 1, rollout.PhaseCurrent)
	supWeb = ro(web, 1, rollout.PhaseSuperseded)
	ipAPI  = ro(api, 4, rollout.PhaseInProgress)
)

// --- fake rollout sink ---

// notifyCall is one Notify the fake rollout sink received, and its outcome.
type notifyCall struct {
	N     rollout.Notification
	State map[string]string
	Err   error
}

// result is a scripted outcome of one notification.
type result struct {
	state map[string]string
	err   error
}

// notifyGate holds back the notifications it matches until it is opened.
type notifyGate struct {
	match func(rollout.Notification) bool
	open  chan struct{}
}

type roKey struct {
	w   owner.Workload
	rev int64
}

// fakeRolloutSink behaves like a chat sink: it validates the notification (422), answers with the scripted
// outcomes in order and then accepts everything, honours the context, wraps its errors like a real sink, and
// fails the test if one rollout is ever notified by two workers at once.
type fakeRolloutSink struct {
	t testing.TB

	mu        sync.Mutex
	calls     []notifyCall
	script    []result
	onNotify  func(n int, nt rollout.Notification) result // optional, after the script: the outcome of the n-th call
	notifying map[roKey]bool
	gates     []*notifyGate
	waiting   int
}

var _ sink.RolloutSink = (*fakeRolloutSink)(nil)

func newFakeRolloutSink(t testing.TB, script ...result) *fakeRolloutSink {
	return &fakeRolloutSink{t: t, script: script, notifying: map[roKey]bool{}}
}

func (s *fakeRolloutSink) Notify(ctx context.Context, n rollout.Notification) (map[string]string, error) {
	k := roKey{n.Rollout.Workload, n.Rollout.Revision}
	s.mu.Lock()
	if s.notifying[k] {
		s.t.Errorf("rollout %s revision %d notified by two workers at once", k.w, k.rev)
	}
	s.notifying[k] = true
	s.calls = append(s.calls, notifyCall{N: n})
	i := len(s.calls)
	var g *notifyGate
	for _, gg := range s.gates {
		if gg.match(n) {
			g = gg
			break
		}
	}
	if g != nil {
		s.waiting++
	}
	s.mu.Unlock()

	if g != nil {
		select {
		case <-g.open:
		case <-ctx.Done():
		}
		s.mu.Lock()
		s.waiting--
		s.mu.Unlock()
	}
	runtime.Gosched() // give other workers a chance to run into this rollout while it is being notified
	res := s.answer(ctx, i, n)

	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls[i-1].State, s.calls[i-1].Err = res.state, res.err
	s.notifying[k] = false
	if res.err != nil {
		return nil, fmt.Errorf("notify %s revision %d: %w", k.w, k.rev, res.err)
	}
	return maps.Clone(res.state), nil
}

func (s *fakeRolloutSink) answer(ctx context.Context, i int, n rollout.Notification) result {
	if err := ctx.Err(); err != nil {
		return result{err: err}
	}
	s.mu.Lock()
	var res *result
	if len(s.script) > 0 {
		res = &s.script[0]
		s.script = s.script[1:]
	}
	onNotify := s.onNotify
	s.mu.Unlock()
	if res != nil {
		return *res
	}
	if err := validateNotification(n); err != nil {
		return result{err: &sink.PermanentError{StatusCode: 422, Message: err.Error()}}
	}
	if onNotify != nil {
		return onNotify(i, n)
	}
	return result{}
}

// validateNotification checks what a sink needs to write a message.
func validateNotification(n rollout.Notification) error {
	var errs []error
	r := n.Rollout
	if r.Workload.Kind == "" || r.Workload.Namespace == "" || r.Workload.Name == "" {
		errs = append(errs, fmt.Errorf("workload %+v is incomplete", r.Workload))
	}
	if r.Revision <= 0 {
		errs = append(errs, fmt.Errorf("revision %d is not positive", r.Revision))
	}
	valid := []rollout.Phase{rollout.PhaseInProgress, rollout.PhaseCurrent, rollout.PhaseFailed, rollout.PhaseRolledBack, rollout.PhaseSuperseded, rollout.PhaseDeleted}
	if !slices.Contains(valid, r.Phase) {
		errs = append(errs, fmt.Errorf("phase %q is unknown", r.Phase))
	}
	if n.Acknowledged != "" && !slices.Contains(valid, n.Acknowledged) {
		errs = append(errs, fmt.Errorf("acknowledged phase %q is unknown", n.Acknowledged))
	}
	return errors.Join(errs...)
}

// hold holds back the notifications matching match until the returned function is called.
func (s *fakeRolloutSink) hold(match func(rollout.Notification) bool) (release func()) {
	g := &notifyGate{match: match, open: make(chan struct{})}
	s.mu.Lock()
	s.gates = append(s.gates, g)
	s.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			s.gates = slices.DeleteFunc(s.gates, func(x *notifyGate) bool { return x == g })
			s.mu.Unlock()
			close(g.open)
		})
	}
}

// held is the number of notifications waiting at a gate.
func (s *fakeRolloutSink) held() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.waiting
}

func (s *fakeRolloutSink) callList() []notifyCall {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

// notifications returns what the sink was handed, in order.
func (s *fakeRolloutSink) notifications() []rollout.Notification {
	var out []rollout.Notification
	for _, c := range s.callList() {
		out = append(out, c.N)
	}
	return out
}

func forWorkload(w owner.Workload) func(rollout.Notification) bool {
	return func(n rollout.Notification) bool { return n.Rollout.Workload == w }
}

// --- fake reporter ---

// report is one call of the reporter; Retry tells whether a next attempt was announced.
type report struct {
	Delivered bool
	Rollout   rollout.Rollout
	State     map[string]string
	Err       string
	Attempts  int
	Retry     bool
	Next      time.Time // compared apart: a backoff's next attempt is on the real clock
}

var ignoreNext = cmpopts.IgnoreFields(report{}, "Next")

type fakeRolloutReporter struct {
	mu      sync.Mutex
	reports map[string][]report // by sink
}

var _ RolloutReporter = (*fakeRolloutReporter)(nil)

func (f *fakeRolloutReporter) RolloutDelivered(_ context.Context, r rollout.Rollout, sinkName string, state map[string]string) {
	f.add(sinkName, report{Delivered: true, Rollout: r, State: state})
}

func (f *fakeRolloutReporter) RolloutFailed(_ context.Context, r rollout.Rollout, sinkName string, err error, attempts int, next time.Time) {
	f.add(sinkName, report{Rollout: r, Err: err.Error(), Attempts: attempts, Retry: !next.IsZero(), Next: next})
}

func (f *fakeRolloutReporter) add(sinkName string, r report) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.reports == nil {
		f.reports = map[string][]report{}
	}
	f.reports[sinkName] = append(f.reports[sinkName], r)
}

// all returns the reports by sink; nil when there are none.
func (f *fakeRolloutReporter) all() map[string][]report {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.reports) == 0 {
		return nil
	}
	out := map[string][]report{}
	for k, v := range f.reports {
		out[k] = slices.Clone(v)
	}
	return out
}

// --- harness ---

// rolloutHarness is a Rollouts dispatcher wired to fake sinks, a fake reporter, a fresh metrics registry and,
// optionally, a fake clock.
type rolloutHarness struct {
	t        testing.TB
	d        *Rollouts
	sinks    map[string]*fakeRolloutSink
	reporter *fakeRolloutReporter
	reg      *prometheus.Registry

	cancel context.CancelFunc
	done   chan error
}

func newRolloutHarness(t testing.TB, cfg RolloutsConfig, sinks map[string]*fakeRolloutSink, clock *fakeClock) *rolloutHarness {
	t.Helper()
	h := &rolloutHarness{t: t, sinks: sinks, reporter: &fakeRolloutReporter{}, reg: prometheus.NewPedanticRegistry()}
	cfg.Sinks = map[string]sink.RolloutSink{}
	for name, s := range sinks {
		cfg.Sinks[name] = s
	}
	cfg.Reporter = h.reporter
	cfg.Metrics = metrics.New(h.reg)
	if clock != nil {
		cfg.Now = clock.Now
	}
	d, err := NewRollouts(cfg)
	if err != nil {
		t.Fatalf("NewRollouts: %v", err)
	}
	if clock != nil {
		// Timers on the fake clock: a key waiting for a pause is a sleeper until the test advances the clock.
		d.sleep = clock.Sleep
		ctx, cancel := context.WithCancel(context.Background())
		t.Cleanup(cancel)
		d.after = func(k rolloutKey, dur time.Duration) {
			go func() {
				if clock.Sleep(ctx, dur) == nil {
					d.queue.Add(k)
				}
			}()
		}
	}
	h.d = d
	t.Cleanup(func() {
		if h.done == nil {
			d.queue.ShutDown()
			return
		}
		h.cancel()
		select {
		case <-h.done:
		case <-time.After(waitTimeout):
			t.Errorf("Start did not return")
		}
	})
	return h
}

func (h *rolloutHarness) start() {
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	h.done = make(chan error, 1)
	go func() { h.done <- h.d.Start(ctx) }()
}

// stop cancels Start's context and waits for Start to return.
func (h *rolloutHarness) stop() {
	h.t.Helper()
	h.cancel()
	select {
	case err := <-h.done:
		if err != nil {
			h.t.Errorf("Start: %v", err)
		}
		h.done = nil
	case <-time.After(waitTimeout):
		h.t.Fatalf("Start did not return")
	}
}

func (h *rolloutHarness) waitIdle() {
	h.t.Helper()
	eventually(h.t, "the rollout dispatcher is idle", h.d.Idle)
}

// counts returns deptracker_rollout_notifications_total as "sink/outcome" → value (nil when none), and the
// pending gauge.
func (h *rolloutHarness) counts() (map[string]float64, float64) {
	h.t.Helper()
	mfs, err := h.reg.Gather()
	if err != nil {
		h.t.Fatalf("gather metrics: %v", err)
	}
	var out map[string]float64
	var pending float64
	for _, mf := range mfs {
		switch mf.GetName() {
		case "deptracker_rollout_notifications_total":
			for _, m := range mf.GetMetric() {
				labels := map[string]string{}
				for _, l := range m.GetLabel() {
					labels[l.GetName()] = l.GetValue()
				}
				if out == nil {
					out = map[string]float64{}
				}
				out[labels["sink"]+"/"+labels["outcome"]] = m.GetCounter().GetValue()
			}
		case "deptracker_rollout_notifications_pending":
			pending = mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	return out, pending
}

// --- tests ---

func TestNewRollouts(t *testing.T) {
	fake := newFakeRolloutSink(t)
	type settings struct {
		Workers                           int
		BaseDelay, MaxDelay, DrainTimeout time.Duration
		CredentialsBase, CredentialsMax   time.Duration
	}
	tests := []struct {
		name    string
		cfg     RolloutsConfig
		wantErr bool
		want    settings
	}{
		{name: "nil sink", cfg: RolloutsConfig{Sinks: map[string]sink.RolloutSink{"slack": nil}}, wantErr: true},
		{name: "sink without a name", cfg: RolloutsConfig{Sinks: map[string]sink.RolloutSink{"": fake}}, wantErr: true},
		{
			name: "no sinks",
			cfg:  RolloutsConfig{},
			want: settings{Workers: 2, BaseDelay: time.Second, MaxDelay: 5 * time.Minute, DrainTimeout: 20 * time.Second, CredentialsBase: 30 * time.Second, CredentialsMax: 10 * time.Minute},
		},
		{
			name: "defaults",
			cfg:  RolloutsConfig{Sinks: map[string]sink.RolloutSink{"slack": fake}},
			want: settings{Workers: 2, BaseDelay: time.Second, MaxDelay: 5 * time.Minute, DrainTimeout: 20 * time.Second, CredentialsBase: 30 * time.Second, CredentialsMax: 10 * time.Minute},
		},
		{
			name: "explicit values kept",
			cfg:  RolloutsConfig{Sinks: map[string]sink.RolloutSink{"slack": fake}, Workers: 7, BaseDelay: time.Millisecond, MaxDelay: time.Second, DrainTimeout: time.Second},
			want: settings{Workers: 7, BaseDelay: time.Millisecond, MaxDelay: time.Second, DrainTimeout: time.Second, CredentialsBase: 30 * time.Second, CredentialsMax: 10 * time.Minute},
		},
		{
			name: "credentials pause kept, its cap raised to its base",
			cfg:  RolloutsConfig{Sinks: map[string]sink.RolloutSink{"slack": fake}, CredentialsBaseDelay: time.Hour, CredentialsMaxDelay: time.Minute},
			want: settings{Workers: 2, BaseDelay: time.Second, MaxDelay: 5 * time.Minute, DrainTimeout: 20 * time.Second,
				CredentialsBase: time.Hour, CredentialsMax: time.Hour},
		},
		{
			name: "max delay raised to base delay",
			cfg:  RolloutsConfig{Sinks: map[string]sink.RolloutSink{"slack": fake}, BaseDelay: time.Minute, MaxDelay: time.Second},
			want: settings{Workers: 2, BaseDelay: time.Minute, MaxDelay: time.Minute, DrainTimeout: 20 * time.Second, CredentialsBase: 30 * time.Second, CredentialsMax: 10 * time.Minute},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := NewRollouts(tt.cfg)
			if (err != nil) != tt.wantErr {
				t.Fatalf("NewRollouts() error = %v, want error: %t", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			defer d.queue.ShutDown()
			got := settings{d.cfg.Workers, d.cfg.BaseDelay, d.cfg.MaxDelay, d.cfg.DrainTimeout, d.cfg.CredentialsBaseDelay, d.cfg.CredentialsMaxDelay}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("settings (-want +got):\n%s", diff)
			}
			if d.cfg.Now == nil {
				t.Errorf("clock not defaulted")
			}
			if !d.NeedLeaderElection() {
				t.Errorf("NeedLeaderElection() = false, want true: only the leader notifies")
			}
		})
	}
}

// notifyOp and seedOp are what a test does to the dispatcher before its workers start.
func notifyOp(r rollout.Rollout) func(*Rollouts) { return func(d *Rollouts) { d.Notify(r) } }

func seedOp(sinkName string, r rollout.Rollout, ack rollout.Phase, state map[string]string, synced bool) func(*Rollouts) {
	return func(d *Rollouts) { d.Seed(sinkName, r, ack, state, synced) }
}

func st(kv ...string) map[string]string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

// TestRolloutDelivery drives one sink (or two) through notifications and checks what each sink is handed,
// what the reporter is told and what is counted.
func TestRolloutDelivery(t *testing.T) {
	failedWeb := ro(web, 1, rollout.PhaseFailed)
	rateLimited := &sink.RetryAfterError{StatusCode: 429, At: time.Unix(0, 0), Message: "slow down"}
	rejected := &sink.PermanentError{StatusCode: 400, Message: "channel_not_found"}
	invalid := ipWeb
	invalid.Phase = "Unknown"
	tests := []struct {
		name    string
		sinks   []string            // default: slack
		script  map[string][]result // scripted outcomes, by sink
		before  []func(*Rollouts)   // before the workers start
		steps   [][]rollout.Rollout // notified in turn once the workers run, each until idle
		want    map[string][]rollout.Notification
		reports map[string][]report
		counts  map[string]float64
	}{
		{
			name:    "delivered once",
			steps:   [][]rollout.Rollout{{ipWeb}},
			want:    map[string][]rollout.Notification{"slack": {{Rollout: ipWeb}}},
			reports: map[string][]report{"slack": {{Delivered: true, Rollout: ipWeb}}},
			counts:  map[string]float64{"slack/delivered": 1},
		},
		{
			name:  "every sink is notified",
			sinks: []string{"slack", "github"},
			steps: [][]rollout.Rollout{{ipWeb}},
			want:  map[string][]rollout.Notification{"slack": {{Rollout: ipWeb}}, "github": {{Rollout: ipWeb}}},
			reports: map[string][]report{
				"slack":  {{Delivered: true, Rollout: ipWeb}},
				"github": {{Delivered: true, Rollout: ipWeb}},
			},
			counts: map[string]float64{"slack/delivered": 1, "github/delivered": 1},
		},
		{
			name:    "newer snapshot replaces a pending one",
			before:  []func(*Rollouts){notifyOp(ipWeb), notifyOp(curWeb)},
			want:    map[string][]rollout.Notification{"slack": {{Rollout: curWeb}}},
			reports: map[string][]report{"slack": {{Delivered: true, Rollout: curWeb}}},
			counts:  map[string]float64{"slack/delivered": 1},
		},
		{
			name:    "equal snapshot not re-sent",
			steps:   [][]rollout.Rollout{{ipWeb}, {ipWeb}, {ro(web, 1, rollout.PhaseInProgress), ipWeb}},
			want:    map[string][]rollout.Notification{"slack": {{Rollout: ipWeb}}},
			reports: map[string][]report{"slack": {{Delivered: true, Rollout: ipWeb}}},
			counts:  map[string]float64{"slack/delivered": 1},
		},
		{
			name:   "rollouts of other workloads and revisions are separate",
			steps:  [][]rollout.Rollout{{ipWeb}, {ipAPI}, {ro(web, 2, rollout.PhaseInProgress)}},
			want:   map[string][]rollout.Notification{"slack": {{Rollout: ipWeb}, {Rollout: ipAPI}, {Rollout: ro(web, 2, rollout.PhaseInProgress)}}},
			counts: map[string]float64{"slack/delivered": 3},
			reports: map[string][]report{"slack": {
				{Delivered: true, Rollout: ipWeb}, {Delivered: true, Rollout: ipAPI}, {Delivered: true, Rollout: ro(web, 2, rollout.PhaseInProgress)},
			}},
		},
		{
			name:   "the acknowledged phase and the state are handed to the next notification",
			script: map[string][]result{"slack": {{state: st("ts", "1")}, {}, {state: st("ts", "2")}, {}}},
			steps:  [][]rollout.Rollout{{ipWeb}, {failedWeb}, {curWeb}, {supWeb}},
			want: map[string][]rollout.Notification{"slack": {
				{Rollout: ipWeb},
				{Rollout: failedWeb, Acknowledged: rollout.PhaseInProgress, State: st("ts", "1")},
				{Rollout: curWeb, Acknowledged: rollout.PhaseFailed, State: st("ts", "1")}, // nil state: kept
				{Rollout: supWeb, Acknowledged: rollout.PhaseCurrent, State: st("ts", "2")},
			}},
			reports: map[string][]report{"slack": {
				{Delivered: true, Rollout: ipWeb, State: st("ts", "1")},
				{Delivered: true, Rollout: failedWeb},
				{Delivered: true, Rollout: curWeb, State: st("ts", "2")},
				{Delivered: true, Rollout: supWeb},
			}},
			counts: map[string]float64{"slack/delivered": 4},
		},
		{
			name:   "an empty state replaces the previous one",
			script: map[string][]result{"slack": {{state: st("ts", "1")}, {state: map[string]string{}}, {}}},
			steps:  [][]rollout.Rollout{{ipWeb}, {curWeb}, {supWeb}},
			want: map[string][]rollout.Notification{"slack": {
				{Rollout: ipWeb},
				{Rollout: curWeb, Acknowledged: rollout.PhaseInProgress, State: st("ts", "1")},
				{Rollout: supWeb, Acknowledged: rollout.PhaseCurrent, State: map[string]string{}},
			}},
			reports: map[string][]report{"slack": {
				{Delivered: true, Rollout: ipWeb, State: st("ts", "1")},
				{Delivered: true, Rollout: curWeb, State: map[string]string{}},
				{Delivered: true, Rollout: supWeb},
			}},
			counts: map[string]float64{"slack/delivered": 3},
		},
		{
			name:   "seed synced: nothing sent",
			before: []func(*Rollouts){seedOp("slack", curWeb, rollout.PhaseCurrent, st("ts", "1"), true)},
			steps:  [][]rollout.Rollout{{curWeb}},
		},
		{
			name:    "seed synced, then a newer phase: sent with the acknowledged phase and state",
			before:  []func(*Rollouts){seedOp("slack", curWeb, rollout.PhaseCurrent, st("ts", "1"), true)},
			steps:   [][]rollout.Rollout{{curWeb}, {supWeb}},
			want:    map[string][]rollout.Notification{"slack": {{Rollout: supWeb, Acknowledged: rollout.PhaseCurrent, State: st("ts", "1")}}},
			reports: map[string][]report{"slack": {{Delivered: true, Rollout: supWeb}}},
			counts:  map[string]float64{"slack/delivered": 1},
		},
		{
			name:    "seed unsynced: sent with the acknowledged phase and state",
			before:  []func(*Rollouts){seedOp("slack", curWeb, rollout.PhaseInProgress, st("ts", "1"), false)},
			steps:   [][]rollout.Rollout{{curWeb}},
			want:    map[string][]rollout.Notification{"slack": {{Rollout: curWeb, Acknowledged: rollout.PhaseInProgress, State: st("ts", "1")}}},
			reports: map[string][]report{"slack": {{Delivered: true, Rollout: curWeb}}},
			counts:  map[string]float64{"slack/delivered": 1},
		},
		{
			name:    "seed unsynced of a rollout never acknowledged",
			before:  []func(*Rollouts){seedOp("slack", ipWeb, "", nil, false)},
			want:    map[string][]rollout.Notification{"slack": {{Rollout: ipWeb}}},
			reports: map[string][]report{"slack": {{Delivered: true, Rollout: ipWeb}}},
			counts:  map[string]float64{"slack/delivered": 1},
		},
		{
			name:  "seed of one sink leaves the others",
			sinks: []string{"slack", "github"},
			before: []func(*Rollouts){
				seedOp("slack", curWeb, rollout.PhaseCurrent, st("ts", "1"), true),
				seedOp("teams", curWeb, rollout.PhaseInProgress, nil, false), // a sink no longer configured
			},
			steps:   [][]rollout.Rollout{{curWeb}},
			want:    map[string][]rollout.Notification{"github": {{Rollout: curWeb}}},
			reports: map[string][]report{"github": {{Delivered: true, Rollout: curWeb}}},
			counts:  map[string]float64{"github/delivered": 1},
		},
		{
			name:   "seed after a notification: the acknowledgement is kept",
			before: []func(*Rollouts){notifyOp(curWeb), seedOp("slack", curWeb, rollout.PhaseCurrent, st("ts", "1"), true), notifyOp(supWeb)},
			want:   map[string][]rollout.Notification{"slack": {{Rollout: supWeb, Acknowledged: rollout.PhaseCurrent, State: st("ts", "1")}}},
			reports: map[string][]report{"slack": {
				{Delivered: true, Rollout: supWeb},
			}},
			counts: map[string]float64{"slack/delivered": 1},
		},
		{
			name:   "pending snapshot dropped when the rollout is back to the acknowledged one",
			before: []func(*Rollouts){seedOp("slack", curWeb, rollout.PhaseCurrent, nil, true), notifyOp(failedWeb), notifyOp(curWeb)},
		},
		{
			name: "retryable errors retried, then delivered",
			script: map[string][]result{"slack": {
				{err: errors.New("status 503: Service Unavailable")},
				{err: fmt.Errorf("do request: %w", os.ErrDeadlineExceeded)},
				{state: st("ts", "1")},
			}},
			steps: [][]rollout.Rollout{{ipWeb}},
			want:  map[string][]rollout.Notification{"slack": {{Rollout: ipWeb}, {Rollout: ipWeb}, {Rollout: ipWeb}}},
			reports: map[string][]report{"slack": {
				{Rollout: ipWeb, Err: "notify Deployment.apps/shop/web revision 1: status 503: Service Unavailable", Attempts: 1, Retry: true},
				{Rollout: ipWeb, Err: "notify Deployment.apps/shop/web revision 1: do request: i/o timeout", Attempts: 2, Retry: true},
				{Delivered: true, Rollout: ipWeb, State: st("ts", "1")},
			}},
			counts: map[string]float64{"slack/retried": 2, "slack/delivered": 1},
		},
		{
			name:   "rate limit without a usable Retry-After: backed off",
			script: map[string][]result{"slack": {{err: rateLimited}}},
			steps:  [][]rollout.Rollout{{ipWeb}},
			want:   map[string][]rollout.Notification{"slack": {{Rollout: ipWeb}, {Rollout: ipWeb}}},
			reports: map[string][]report{"slack": {
				{Rollout: ipWeb, Err: "notify Deployment.apps/shop/web revision 1: " + rateLimited.Error(), Attempts: 1, Retry: true},
				{Delivered: true, Rollout: ipWeb},
			}},
			counts: map[string]float64{"slack/rate_limited": 1, "slack/delivered": 1},
		},
		{
			name:   "permanent error: dropped, reported, not re-sent; the next phase is",
			script: map[string][]result{"slack": {{err: rejected}}},
			steps:  [][]rollout.Rollout{{ipWeb}, {ipWeb}, {curWeb}},
			want:   map[string][]rollout.Notification{"slack": {{Rollout: ipWeb}, {Rollout: curWeb}}},
			reports: map[string][]report{"slack": {
				{Rollout: ipWeb, Err: "notify Deployment.apps/shop/web revision 1: " + rejected.Error(), Attempts: 1},
				{Delivered: true, Rollout: curWeb},
			}},
			counts: map[string]float64{"slack/rejected": 1, "slack/delivered": 1},
		},
		{
			name:   "not found: dropped like a permanent error",
			script: map[string][]result{"slack": {{err: &sink.NotFoundError{Message: "no deployment 42"}}}},
			steps:  [][]rollout.Rollout{{ipWeb}, {ipWeb}},
			want:   map[string][]rollout.Notification{"slack": {{Rollout: ipWeb}}},
			reports: map[string][]report{"slack": {
				{Rollout: ipWeb, Err: "notify Deployment.apps/shop/web revision 1: artifact not found: no deployment 42", Attempts: 1},
			}},
			counts: map[string]float64{"slack/rejected": 1},
		},
		{
			name:  "rejected by the sink's validation",
			steps: [][]rollout.Rollout{{invalid}},
			want:  map[string][]rollout.Notification{"slack": {{Rollout: invalid}}},
			reports: map[string][]report{"slack": {
				{Rollout: invalid, Err: `notify Deployment.apps/shop/web revision 1: permanent failure: status 422: phase "Unknown" is unknown`, Attempts: 1},
			}},
			counts: map[string]float64{"slack/rejected": 1},
		},
		{
			name:   "one sink failing does not hold back another",
			sinks:  []string{"slack", "github"},
			script: map[string][]result{"github": {{err: rejected}}},
			steps:  [][]rollout.Rollout{{ipWeb}, {curWeb}},
			want: map[string][]rollout.Notification{
				"slack":  {{Rollout: ipWeb}, {Rollout: curWeb, Acknowledged: rollout.PhaseInProgress}},
				"github": {{Rollout: ipWeb}, {Rollout: curWeb}},
			},
			reports: map[string][]report{
				"slack": {{Delivered: true, Rollout: ipWeb}, {Delivered: true, Rollout: curWeb}},
				"github": {
					{Rollout: ipWeb, Err: "notify Deployment.apps/shop/web revision 1: " + rejected.Error(), Attempts: 1},
					{Delivered: true, Rollout: curWeb},
				},
			},
			counts: map[string]float64{"slack/delivered": 2, "github/rejected": 1, "github/delivered": 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			names := tt.sinks
			if names == nil {
				names = []string{"slack"}
			}
			fakes := map[string]*fakeRolloutSink{}
			for _, n := range names {
				fakes[n] = newFakeRolloutSink(t, tt.script[n]...)
			}
			h := newRolloutHarness(t, RolloutsConfig{Workers: 2, BaseDelay: fastBase, MaxDelay: fastMax}, fakes, nil)
			for _, op := range tt.before {
				op(h.d)
			}
			h.start()
			h.waitIdle()
			for _, step := range tt.steps {
				for _, r := range step {
					h.d.Notify(r)
				}
				h.waitIdle()
			}
			h.stop()

			var got map[string][]rollout.Notification
			for n, f := range fakes {
				if ns := f.notifications(); len(ns) > 0 {
					if got == nil {
						got = map[string][]rollout.Notification{}
					}
					got[n] = ns
				}
			}
			// Nil and empty states stay apart: a nil state keeps the previous one, an empty one replaces it.
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("notifications (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.reports, h.reporter.all(), ignoreNext); diff != "" {
				t.Errorf("reports (-want +got):\n%s", diff)
			}
			counts, pending := h.counts()
			if diff := cmp.Diff(tt.counts, counts); diff != "" {
				t.Errorf("deptracker_rollout_notifications_total (-want +got):\n%s", diff)
			}
			if pending != 0 {
				t.Errorf("deptracker_rollout_notifications_pending = %v after the drain, want 0", pending)
			}
		})
	}
}

// TestRolloutSnapshotFields changes each field of a rollout in turn: a changed snapshot is a new one to
// deliver, so that a field added to rollout.Rollout and forgotten by rollout.Equal shows here.
func TestRolloutSnapshotFields(t *testing.T) {
	base := curWeb
	changes := map[string]func(*rollout.Rollout){
		"Workload":     func(r *rollout.Rollout) { r.Workload.Name = "web2" },
		"Revision":     func(r *rollout.Rollout) { r.Revision = 2 },
		"RevisionKey":  func(r *rollout.Rollout) { r.RevisionKey = "other" },
		"Containers":   func(r *rollout.Rollout) { r.Containers = []rollout.Container{{Name: "app", Image: "other"}} },
		"Phase":        func(r *rollout.Rollout) { r.Phase = rollout.PhaseFailed },
		"Reason":       func(r *rollout.Rollout) { r.Reason = "other" },
		"Message":      func(r *rollout.Rollout) { r.Message = "other" },
		"Restores":     func(r *rollout.Rollout) { r.Restores = 7 },
		"Adopted":      func(r *rollout.Rollout) { r.Adopted = true },
		"Started":      func(r *rollout.Rollout) { r.Started = r.Started.Add(time.Second) },
		"Submitted":    func(r *rollout.Rollout) { r.Submitted = r.Submitted.Add(time.Second) },
		"SubmittedBy":  func(r *rollout.Rollout) { r.SubmittedBy = "informer" },
		"FirstRunning": func(r *rollout.Rollout) { r.FirstRunning = r.FirstRunning.Add(time.Second) },
		"Completed":    func(r *rollout.Rollout) { r.Completed = r.Completed.Add(time.Second) },
		"Finished":     func(r *rollout.Rollout) { r.Finished = t0 },
		"Ready":        func(r *rollout.Rollout) { r.Ready = 1 },
		"Desired":      func(r *rollout.Rollout) { r.Desired = 1 },
	}
	for f := range reflect.TypeFor[rollout.Rollout]().Fields() {
		if _, ok := changes[f.Name]; !ok {
			t.Errorf("field %s of rollout.Rollout: teach this test (and rollout.Equal) about it", f.Name)
		}
	}
	for name, change := range changes {
		t.Run(name, func(t *testing.T) {
			h := newRolloutHarness(t, RolloutsConfig{}, map[string]*fakeRolloutSink{"slack": newFakeRolloutSink(t)}, nil)
			h.d.Seed("slack", base, base.Phase, nil, true)
			other := base
			other.Containers = slices.Clone(base.Containers)
			change(&other)
			h.d.Notify(other)
			if h.d.Idle() {
				t.Errorf("a rollout differing in %s is not pending", name)
			}
		})
	}
}

// TestRolloutNotifyWhileNotifying notifies newer snapshots while one is in flight: the rollout is not notified
// twice at once, and the latest snapshot follows, with the phase of the one in flight as acknowledged.
func TestRolloutNotifyWhileNotifying(t *testing.T) {
	fake := newFakeRolloutSink(t)
	h := newRolloutHarness(t, RolloutsConfig{Workers: 4, BaseDelay: fastBase, MaxDelay: fastMax}, map[string]*fakeRolloutSink{"slack": fake}, nil)
	release := fake.hold(func(n rollout.Notification) bool { return rollout.Equal(n.Rollout, ipWeb) })
	h.start()
	h.d.Notify(ipWeb)
	eventually(t, "web is in flight", func() bool { return fake.held() == 1 })
	h.d.Notify(curWeb)
	h.d.Notify(ipAPI)
	h.d.Notify(supWeb)
	h.d.Notify(ipWeb) // an older snapshot comes again: the latest one wins
	h.d.Notify(supWeb)
	eventually(t, "api is delivered", func() bool { return len(fake.callList()) == 2 })
	release()
	h.waitIdle()

	want := []rollout.Notification{{Rollout: ipWeb}, {Rollout: supWeb, Acknowledged: rollout.PhaseInProgress}}
	var got []rollout.Notification
	for _, n := range fake.notifications() {
		if n.Rollout.Workload == web {
			got = append(got, n)
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("web notifications (-want +got):\n%s", diff)
	}
}

// TestRolloutNotifyBackWhileUnsure notifies the acknowledged snapshot again while a newer one failed with a
// retryable error (the sink may have acted on it): the acknowledged one must be sent again.
func TestRolloutNotifyBackWhileUnsure(t *testing.T) {
	failedWeb := ro(web, 1, rollout.PhaseFailed)
	fake := newFakeRolloutSink(t, result{}, result{err: errors.New("status 504: Gateway Timeout")})
	h := newRolloutHarness(t, RolloutsConfig{Workers: 1, BaseDelay: time.Hour, MaxDelay: time.Hour, DrainTimeout: time.Millisecond},
		map[string]*fakeRolloutSink{"slack": fake}, nil)
	h.start()
	h.d.Notify(curWeb)
	h.waitIdle()
	h.d.Notify(failedWeb)
	eventually(t, "the failed phase is tried", func() bool { return len(h.reporter.all()["slack"]) == 2 })
	h.d.Notify(curWeb)
	if h.d.Idle() {
		t.Errorf("the acknowledged snapshot is not pending again after a notification of unknown outcome")
	}
}

// TestRolloutRetryAfterPausesOnlyThatSink rate-limits one sink with a single worker: its rollouts wait for
// the pause, the other sink's are delivered meanwhile.
func TestRolloutRetryAfterPausesOnlyThatSink(t *testing.T) {
	clock := newFakeClock()
	until := clock.Now().Add(time.Minute)
	limited := &sink.RetryAfterError{StatusCode: 429, At: until, Message: "rate limited"}
	github, slack := newFakeRolloutSink(t, result{err: limited}), newFakeRolloutSink(t)
	h := newRolloutHarness(t, RolloutsConfig{Workers: 1, BaseDelay: fastBase, MaxDelay: fastMax},
		map[string]*fakeRolloutSink{"github": github, "slack": slack}, clock)
	h.start()

	h.d.Notify(ipWeb)
	eventually(t, "web waits for github's pause while slack has it", func() bool {
		return clock.Sleepers() == 1 && len(slack.callList()) == 1
	})
	h.d.Notify(ipAPI)
	eventually(t, "api waits for github's pause while slack has it", func() bool {
		return clock.Sleepers() == 2 && len(slack.callList()) == 2
	})
	if n := len(github.callList()); n != 1 {
		t.Errorf("github notified %d times during its pause, want only the rate-limited notification", n)
	}
	if h.d.Idle() {
		t.Errorf("Idle() during the pause, want github's notifications pending")
	}
	wantFailed := report{Rollout: ipWeb, Err: "notify Deployment.apps/shop/web revision 1: " + limited.Error(), Attempts: 1, Retry: true}
	if diff := cmp.Diff([]report{wantFailed}, h.reporter.all()["github"], ignoreNext); diff != "" {
		t.Errorf("github reports (-want +got):\n%s", diff)
	}
	if got := h.reporter.all()["github"][0].Next; !got.Equal(until) {
		t.Errorf("next attempt reported at %s, want the end of the pause %s", got, until)
	}

	clock.Advance(time.Minute + pauseJitter)
	h.waitIdle()
	var after []rollout.Notification
	for _, c := range github.callList()[1:] {
		after = append(after, c.N)
	}
	byName := func(a, b rollout.Notification) int {
		return strings.Compare(a.Rollout.Workload.Name, b.Rollout.Workload.Name)
	}
	slices.SortFunc(after, byName)
	if diff := cmp.Diff([]rollout.Notification{{Rollout: ipAPI}, {Rollout: ipWeb}}, after); diff != "" {
		t.Errorf("github notifications after the pause (-want +got):\n%s", diff)
	}
	counts, _ := h.counts()
	want := map[string]float64{"github/rate_limited": 1, "github/delivered": 2, "slack/delivered": 2}
	if diff := cmp.Diff(want, counts); diff != "" {
		t.Errorf("deptracker_rollout_notifications_total (-want +got):\n%s", diff)
	}
}

// TestRolloutDrain cancels Start's context with notifications still pending and checks what is delivered.
func TestRolloutDrain(t *testing.T) {
	t.Run("queued, retried and newer notifications delivered", func(t *testing.T) {
		fake := newFakeRolloutSink(t)
		fake.onNotify = func(n int, nt rollout.Notification) result {
			if nt.Rollout.Workload == api && n <= 3 {
				return result{err: errors.New("status 500: Internal Server Error")}
			}
			return result{}
		}
		h := newRolloutHarness(t, RolloutsConfig{Workers: 1, BaseDelay: fastBase, MaxDelay: fastMax}, map[string]*fakeRolloutSink{"slack": fake}, nil)
		release := fake.hold(forWorkload(web))
		h.start()
		h.d.Notify(ipWeb)
		eventually(t, "web is in flight", func() bool { return fake.held() == 1 })
		h.d.Notify(ipAPI)
		h.d.Notify(curWeb)
		h.cancel()
		release()
		h.stop()

		if !h.d.Idle() {
			t.Errorf("notifications left undelivered")
		}
		last := map[string]rollout.Notification{}
		for _, c := range fake.callList() {
			if c.Err == nil {
				last[c.N.Rollout.Workload.Name] = c.N
			}
		}
		want := map[string]rollout.Notification{
			"web": {Rollout: curWeb, Acknowledged: rollout.PhaseInProgress},
			"api": {Rollout: ipAPI},
		}
		if diff := cmp.Diff(want, last); diff != "" {
			t.Errorf("last accepted notifications (-want +got):\n%s", diff)
		}
	})

	t.Run("drain timeout abandons the rest", func(t *testing.T) {
		clock := newFakeClock()
		fake := newFakeRolloutSink(t)
		h := newRolloutHarness(t, RolloutsConfig{Workers: 1, DrainTimeout: time.Minute, BaseDelay: fastBase, MaxDelay: fastMax},
			map[string]*fakeRolloutSink{"slack": fake}, clock)
		fake.hold(func(rollout.Notification) bool { return true }) // the sink hangs until the context ends
		h.start()
		h.d.Notify(ipWeb)
		h.d.Notify(ipAPI)
		eventually(t, "a notification is in flight", func() bool { return fake.held() == 1 })
		h.cancel()
		eventually(t, "the drain timer runs", func() bool { return clock.Sleepers() == 1 })
		if h.d.Idle() {
			t.Fatalf("idle before the drain timeout")
		}
		clock.Advance(time.Minute)
		h.stop()

		if h.d.Idle() {
			t.Errorf("Idle() = true, want the undelivered notification still pending")
		}
		calls := fake.callList()
		if len(calls) != 1 || !errors.Is(calls[0].Err, context.Canceled) {
			t.Errorf("notifications %+v, want one, cancelled at the drain deadline", calls)
		}
		// Notify after Start returned neither blocks nor notifies.
		h.d.Notify(ro(web, 2, rollout.PhaseInProgress))
		if n := len(fake.callList()); n != 1 {
			t.Errorf("%d notifications after Start returned, want none", n-1)
		}
	})
}

// TestRolloutsNoSinks checks that without sinks Notify and Seed keep nothing and Start returns on
// cancellation.
func TestRolloutsNoSinks(t *testing.T) {
	h := newRolloutHarness(t, RolloutsConfig{}, map[string]*fakeRolloutSink{}, nil)
	h.start()
	h.d.Notify(ipWeb)
	h.d.Seed("slack", curWeb, rollout.PhaseInProgress, nil, false)
	if !h.d.Idle() {
		t.Errorf("Idle() = false without sinks")
	}
	if n := len(h.d.entries); n != 0 {
		t.Errorf("%d entries kept without sinks, want none", n)
	}
	h.stop()
}

// TestRolloutPendingGauge checks the pending gauge: one per sink and rollout, back to zero once delivered.
func TestRolloutPendingGauge(t *testing.T) {
	h := newRolloutHarness(t, RolloutsConfig{}, map[string]*fakeRolloutSink{"slack": newFakeRolloutSink(t), "github": newFakeRolloutSink(t)}, nil)
	h.d.Notify(ipWeb)
	h.d.Notify(curWeb)
	h.d.Notify(ipAPI)
	if _, pending := h.counts(); pending != 4 {
		t.Errorf("pending = %v before delivery, want 4", pending)
	}
	h.start()
	h.waitIdle()
	counts, pending := h.counts()
	if pending != 0 {
		t.Errorf("pending = %v after delivery, want 0", pending)
	}
	if diff := cmp.Diff(map[string]float64{"slack/delivered": 2, "github/delivered": 2}, counts); diff != "" {
		t.Errorf("deptracker_rollout_notifications_total (-want +got):\n%s", diff)
	}
}

// TestRolloutForget checks that Forget drops a delivered rollout at once and one in flight once it is
// delivered.
func TestRolloutForget(t *testing.T) {
	fake := newFakeRolloutSink(t)
	h := newRolloutHarness(t, RolloutsConfig{Workers: 2}, map[string]*fakeRolloutSink{"slack": fake}, nil)
	release := fake.hold(forWorkload(api))
	h.start()
	h.d.Notify(ipWeb)
	h.d.Notify(ipAPI)
	eventually(t, "web is delivered and api in flight", func() bool { return len(fake.callList()) == 2 && fake.held() == 1 })
	h.waitIdleExcept(1)
	h.d.Forget(web, 1)
	h.d.Forget(api, 4)
	h.d.Forget(api, 99) // unknown: nothing to do
	if n := h.entries(); n != 1 {
		t.Errorf("%d entries after Forget, want 1: the rollout in flight", n)
	}
	release()
	h.waitIdle()
	eventually(t, "the rollout in flight is dropped once delivered", func() bool { return h.entries() == 0 })

	// Forgotten, the rollout is a new one.
	h.d.Notify(ipWeb)
	h.waitIdle()
	want := []rollout.Notification{{Rollout: ipWeb}, {Rollout: ipWeb}}
	var got []rollout.Notification
	for _, n := range fake.notifications() {
		if n.Rollout.Workload == web {
			got = append(got, n)
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("web notifications (-want +got):\n%s", diff)
	}
}

// waitIdleExcept waits until n notifications are still pending.
func (h *rolloutHarness) waitIdleExcept(n int) {
	h.t.Helper()
	eventually(h.t, fmt.Sprintf("%d notifications are pending", n), func() bool { return h.d.pending() == n })
}

func (h *rolloutHarness) entries() int {
	h.d.mu.Lock()
	defer h.d.mu.Unlock()
	return len(h.d.entries)
}

// TestRolloutsManyRollouts notifies the phases of many rollouts from several goroutines to three sinks, one
// flaky, one keeping state: each sink must end at the last phase of every rollout, be told each snapshot at
// most once, and be handed, with each notification, the phase and state of the one it acknowledged before.
func TestRolloutsManyRollouts(t *testing.T) {
	const (
		workers    = 8
		goroutines = 4
		workloads  = 48
	)
	sinks := map[string]*fakeRolloutSink{"quiet": newFakeRolloutSink(t), "flaky": newFakeRolloutSink(t), "stateful": newFakeRolloutSink(t)}
	sinks["flaky"].onNotify = func(n int, _ rollout.Notification) result {
		if n%5 == 0 {
			return result{err: errors.New("status 503: Service Unavailable")}
		}
		return result{}
	}
	sinks["stateful"].onNotify = func(n int, _ rollout.Notification) result {
		if n%3 == 0 {
			return result{} // nil: keep the state
		}
		return result{state: st("call", strconv.Itoa(n))}
	}
	h := newRolloutHarness(t, RolloutsConfig{Workers: workers, BaseDelay: fastBase, MaxDelay: fastMax}, sinks, nil)
	h.start()

	final := map[roKey]rollout.Rollout{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := g; i < workloads; i += goroutines {
				w := owner.Workload{Group: "apps", Kind: "Deployment", Namespace: "shop", Name: fmt.Sprintf("app-%02d", i)}
				for _, p := range []rollout.Phase{rollout.PhaseInProgress, rollout.PhaseFailed, rollout.PhaseCurrent} {
					h.d.Notify(ro(w, 1, p))
					runtime.Gosched()
				}
				h.d.Notify(ro(w, 2, rollout.PhaseInProgress))
				h.d.Notify(ro(w, 1, rollout.PhaseSuperseded))
				h.d.Notify(ro(w, 2, rollout.PhaseCurrent))
				mu.Lock()
				final[roKey{w, 1}] = ro(w, 1, rollout.PhaseSuperseded)
				final[roKey{w, 2}] = ro(w, 2, rollout.PhaseCurrent)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	h.waitIdle()
	h.stop()

	for name, f := range sinks {
		accepted := map[roKey][]notifyCall{}
		for _, c := range f.callList() {
			if c.Err == nil {
				k := roKey{c.N.Rollout.Workload, c.N.Rollout.Revision}
				accepted[k] = append(accepted[k], c)
			}
		}
		if len(accepted) != len(final) {
			t.Errorf("%s: %d rollouts notified, want %d", name, len(accepted), len(final))
		}
		delivered := 0
		for k, calls := range accepted {
			delivered += len(calls)
			if last := calls[len(calls)-1].N.Rollout; !rollout.Equal(last, final[k]) {
				t.Errorf("%s: %s revision %d ends at %s, want %s", name, k.w.Name, k.rev, last.Phase, final[k].Phase)
			}
			var ack rollout.Phase
			var state map[string]string
			for i, c := range calls {
				if slices.ContainsFunc(calls[:i], func(p notifyCall) bool { return rollout.Equal(p.N.Rollout, c.N.Rollout) }) {
					t.Errorf("%s: %s revision %d in phase %s delivered twice", name, k.w.Name, k.rev, c.N.Rollout.Phase)
				}
				if c.N.Acknowledged != ack || !maps.Equal(c.N.State, state) {
					t.Errorf("%s: %s revision %d: notification %d handed %q %v, want the acknowledged %q %v",
						name, k.w.Name, k.rev, i+1, c.N.Acknowledged, c.N.State, ack, state)
				}
				ack = c.N.Rollout.Phase
				if c.State != nil {
					state = c.State
				}
			}
		}
		reported := 0
		for _, r := range h.reporter.all()[name] {
			if r.Delivered {
				reported++
			}
		}
		if reported != delivered {
			t.Errorf("%s: %d deliveries reported, want %d", name, reported, delivered)
		}
		t.Logf("%s: %d notifications, %d accepted, for %d rollouts", name, len(f.callList()), delivered, len(final))
	}
}
