package dispatch

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/deployment-tracker/deployment-tracker/internal/record"
	"github.com/deployment-tracker/deployment-tracker/internal/rollout"
	"github.com/deployment-tracker/deployment-tracker/internal/sink"
)

const (
	mCredentialsRefused = "deptracker_post_record_credentials_refused_total"
	mSinkRefused        = "deptracker_sink_credentials_refused"
)

// exact makes the credentials pauses exact, for the tests that check how they grow.
func exact(d time.Duration) time.Duration { return d }

// sinkGauge reads deptracker_sink_credentials_refused by sink.
func sinkGauge(t testing.TB, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather metrics: %v", err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != mSinkRefused {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "sink" {
					out[l.GetValue()] = m.GetGauge().GetValue()
				}
			}
		}
	}
	return out
}

// transition is one call of OnCredentials.
type transition struct {
	Sink    string
	Refused bool
	Err     string
}

// transitions records the OnCredentials calls.
type transitions struct {
	mu  sync.Mutex
	got []transition
}

func (tr *transitions) on(sinkName string, refused bool, err error) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	t := transition{Sink: sinkName, Refused: refused}
	if err != nil {
		t.Err = err.Error()
	}
	tr.got = append(tr.got, t)
}

func (tr *transitions) list() []transition {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return slices.Clone(tr.got)
}

// recordReport is one call of the records' Reporter.
type recordReport struct {
	Delivered bool
	Rec       record.Record
	Err       string
	Attempts  int
	Next      time.Time
}

// fakeReporter records what the records' dispatcher reports, by deployment name.
type fakeReporter struct {
	mu      sync.Mutex
	reports map[string][]recordReport
}

var _ Reporter = (*fakeReporter)(nil)

func (f *fakeReporter) Delivered(_ context.Context, r record.Record) {
	f.add(recordReport{Delivered: true, Rec: r})
}

func (f *fakeReporter) Failed(_ context.Context, r record.Record, err error, attempts int, next time.Time) {
	f.add(recordReport{Rec: r, Err: err.Error(), Attempts: attempts, Next: next})
}

func (f *fakeReporter) add(r recordReport) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.reports == nil {
		f.reports = map[string][]recordReport{}
	}
	f.reports[r.Rec.DeploymentName] = append(f.reports[r.Rec.DeploymentName], r)
}

func (f *fakeReporter) all() map[string][]recordReport {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string][]recordReport{}
	for k, v := range f.reports {
		out[k] = slices.Clone(v)
	}
	return out
}

// TestCredentialsRound checks the state of one sink: the pause starts at the base, doubles with each refused
// round up to the cap, a refusal of a post begun before the current pause does not grow it, and a success
// ends the episode and resets the backoff.
func TestCredentialsRound(t *testing.T) {
	base, maxDelay := 30*time.Second, 10*time.Minute
	refused := &sink.CredentialsError{StatusCode: 401, Message: "Bad credentials"}
	var c credentials[string]
	now := t0
	type step struct {
		name      string
		accept    bool
		stale     bool // the post began before the current pause
		wantPause time.Duration
		wantFirst bool
		wantGrown bool
	}
	steps := []step{
		{name: "first refusal", wantPause: 30 * time.Second, wantFirst: true, wantGrown: true},
		{name: "an older post refused too: same round", stale: true},
		{name: "second round", wantPause: time.Minute, wantGrown: true},
		{name: "third round", wantPause: 2 * time.Minute, wantGrown: true},
		{name: "fourth round", wantPause: 4 * time.Minute, wantGrown: true},
		{name: "fifth round", wantPause: 8 * time.Minute, wantGrown: true},
		{name: "sixth round: capped", wantPause: 10 * time.Minute, wantGrown: true},
		{name: "seventh round: capped", wantPause: 10 * time.Minute, wantGrown: true},
		{name: "accepted", accept: true},
		{name: "refused again: from the start", wantPause: 30 * time.Second, wantFirst: true, wantGrown: true},
	}
	for _, st := range steps {
		if st.accept {
			was, since, _ := c.accept()
			if !was || since.IsZero() {
				t.Errorf("%s: accept() = %t, %s, want true and the start of the episode", st.name, was, since)
			}
			if c.refused || c.report("web") {
				t.Errorf("%s: still refused", st.name)
			}
			continue
		}
		round := c.round
		if st.stale {
			round--
		}
		now = now.Add(time.Second)
		pause, first, grown := c.refuse(now, round, refused, base, maxDelay, exact)
		if pause != st.wantPause || first != st.wantFirst || grown != st.wantGrown {
			t.Errorf("%s: refuse() = %s, %t, %t, want %s, %t, %t", st.name, pause, first, grown, st.wantPause, st.wantFirst, st.wantGrown)
		}
		if grown && !c.until.Equal(now.Add(pause)) {
			t.Errorf("%s: until %s, want %s", st.name, c.until, now.Add(pause))
		}
	}
	if !c.report("web") || c.report("web") {
		t.Errorf("report() does not report a key exactly once per episode")
	}
}

// TestJitterDown: at most a tenth off, never above the pause (the cap holds).
func TestJitterDown(t *testing.T) {
	for range 1000 {
		if got := jitterDown(30 * time.Second); got > 30*time.Second || got < 27*time.Second {
			t.Fatalf("jitterDown(30s) = %s, want within [27s, 30s]", got)
		}
	}
	if got := jitterDown(5); got != 5 {
		t.Errorf("jitterDown(5ns) = %s, want 5ns", got)
	}
}

// TestCredentialsRefusedRecords refuses the credentials to three posts, then accepts them: nothing is dropped
// (the decommission desired meanwhile is delivered after its deployment), the sink pauses 30s, 60s, 120s,
// each record is reported once, the gauge and OnCredentials tell of both transitions, and the next refusal
// starts from 30s again.
func TestCredentialsRefusedRecords(t *testing.T) {
	clock := newFakeClock()
	rep, tr := &fakeReporter{}, &transitions{}
	h := newHarness(t, Config{Workers: 1, BaseDelay: fastBase, MaxDelay: fastMax, SinkName: "github", Reporter: rep, OnCredentials: tr.on}, clock)
	h.d.jitter = exact
	refused := &sink.CredentialsError{StatusCode: 401, Message: "Bad credentials"}
	h.sink.onPost = func(n int, _ record.Record) error {
		if n <= 3 {
			return refused
		}
		return nil
	}
	if got := sinkGauge(t, h.reg); !cmp.Equal(got, map[string]float64{"github": 0}) {
		t.Errorf("gauge before any refusal %v, want github 0", got)
	}
	start := clock.Now()
	h.start()
	h.desire(dep("web", 1))
	pauseTill := func() time.Time { h.d.mu.Lock(); defer h.d.mu.Unlock(); return h.d.pauseTill }
	eventually(t, "the sink is paused", func() bool { return !pauseTill().IsZero() })
	// Admissions go on: new records and a decommission are taken while the sink is paused.
	h.desire(dep("api", 1), dec("web", 1))
	eventually(t, "both keys wait for the pause", func() bool { return clock.Sleepers() == 2 })

	if got := sinkGauge(t, h.reg); !cmp.Equal(got, map[string]float64{"github": 1}) {
		t.Errorf("gauge while refused %v, want github 1", got)
	}
	if diff := cmp.Diff(map[string]time.Time{"github": start}, h.d.CredentialsRefused()); diff != "" {
		t.Errorf("CredentialsRefused() (-want +got):\n%s", diff)
	}
	if n := h.d.queue.NumRequeues(keyOf("web")); n != 0 {
		t.Errorf("NumRequeues(web) = %d, want 0: a refusal is not charged to the record", n)
	}

	for i, pause := range []time.Duration{30 * time.Second, time.Minute, 2 * time.Minute} {
		calls := h.sink.callList()
		if len(calls) != i+1 {
			t.Fatalf("round %d: %d posts, want %d", i+1, len(calls), i+1)
		}
		last := calls[i].At
		if got := pauseTill(); !got.Equal(last.Add(pause)) {
			t.Errorf("round %d: paused until %s after the refusal, want %s later", i+1, got.Sub(last), pause)
		}
		clock.Advance(pause - time.Millisecond)
		if n := h.sink.numCalls(); n != i+1 {
			t.Fatalf("round %d: %d posts before the end of the pause, want %d", i+1, n, i+1)
		}
		clock.Advance(time.Millisecond + pauseJitter)
		if i < 2 {
			eventually(t, "the next refusal", func() bool { return h.sink.numCalls() == i+2 && clock.Sleepers() == 2 })
		}
	}
	h.waitIdle()

	if diff := cmp.Diff(map[record.Key]record.Record{keyOf("web"): dec("web", 1), keyOf("api"): dep("api", 1)}, h.sink.state()); diff != "" {
		t.Errorf("sink state (-want +got):\n%s", diff)
	}
	accepted := func(dn string) []record.Record {
		var out []record.Record
		for _, c := range h.sink.callList() {
			if c.Err == nil && c.Rec.DeploymentName == dn {
				out = append(out, c.Rec)
			}
		}
		return out
	}
	if diff := cmp.Diff([]record.Record{dep("web", 1), dec("web", 1)}, accepted("web"), cmp.Comparer(equal)); diff != "" {
		t.Errorf("web accepted (-want +got):\n%s", diff)
	}
	if got := sinkGauge(t, h.reg); !cmp.Equal(got, map[string]float64{"github": 0}) {
		t.Errorf("gauge after the credentials were accepted %v, want github 0", got)
	}
	if got := h.d.CredentialsRefused(); len(got) != 0 {
		t.Errorf("CredentialsRefused() = %v after a success, want none", got)
	}
	wantTransitions := []transition{{Sink: "github", Refused: true, Err: fmt.Sprintf("post deployment record web: %s", refused)}, {Sink: "github"}}
	if diff := cmp.Diff(wantTransitions, tr.list()); diff != "" {
		t.Errorf("OnCredentials calls (-want +got):\n%s", diff)
	}
	h.wantCounters(map[string]float64{mSoftFail: 3, mOK: 3})
	if got := h.metricValues(mCredentialsRefused)[mCredentialsRefused]; got != 3 {
		t.Errorf("%s = %v, want 3", mCredentialsRefused, got)
	}

	// Each record reported failed once, with the refusal, however often it was refused or waited.
	for dn, reports := range rep.all() {
		var failed []recordReport
		for _, r := range reports {
			if !r.Delivered {
				failed = append(failed, r)
			}
		}
		if len(failed) != 1 {
			t.Errorf("%s: reported failed %d times, want once: %+v", dn, len(failed), failed)
			continue
		}
		// Posted and refused: its own error; only waiting: the sink's refusal.
		want := map[string]string{"web": "post deployment record web: " + refused.Error(), "api": refused.Error()}[dn]
		if failed[0].Err != want {
			t.Errorf("%s: reported %q, want %q", dn, failed[0].Err, want)
		}
		if failed[0].Next.IsZero() {
			t.Errorf("%s: reported without a next attempt", dn)
		}
	}

	// The next episode starts from the first pause again.
	h.sink.fail(forKey("db"), refused)
	h.desire(dep("db", 1))
	eventually(t, "db waits for the pause", func() bool { return clock.Sleepers() == 1 })
	calls := h.sink.callList()
	if got, last := pauseTill(), calls[len(calls)-1].At; !got.Equal(last.Add(30 * time.Second)) {
		t.Errorf("paused %s after a new refusal, want 30s", got.Sub(last))
	}
	clock.Advance(30*time.Second + pauseJitter)
	h.waitIdle()
	if _, ok := h.d.Delivered(keyOf("db")); !ok {
		t.Errorf("db not delivered after the pause")
	}
}

// TestCredentialsRefusedKeepsPending: a 401 or a 403 that is not a rate limit (what ghclient classifies as
// refused credentials) is no rejection of the record: it stays pending, is not counted as a client error, and is
// delivered once the pause ends.
func TestCredentialsRefusedKeepsPending(t *testing.T) {
	tests := []struct {
		name string
		err  error
	}{
		{name: "401", err: &sink.CredentialsError{StatusCode: 401, Message: "Bad credentials"}},
		{name: "403 missing permission", err: &sink.CredentialsError{StatusCode: 403, Message: "Resource not accessible by integration"}},
		{name: "403 SSO not authorized", err: &sink.CredentialsError{StatusCode: 403, Message: "Resource protected by organization SAML enforcement"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := newFakeClock()
			rep := &fakeReporter{}
			h := newHarness(t, Config{Workers: 1, BaseDelay: fastBase, MaxDelay: fastMax, Reporter: rep}, clock)
			h.d.jitter = exact
			h.sink.fail(forKey("web"), tt.err)
			h.start()
			h.desire(dep("web", 1))
			eventually(t, "web waits for the pause", func() bool { return clock.Sleepers() == 1 })
			if h.d.Idle() {
				t.Fatalf("Idle() = true after the refusal, want the record pending")
			}
			if _, ok := h.d.Delivered(keyOf("web")); ok {
				t.Errorf("a refused record counts as delivered")
			}
			h.wantCounters(map[string]float64{mSoftFail: 1})
			failed := rep.all()["web"]
			if len(failed) != 1 || failed[0].Delivered || failed[0].Next.IsZero() {
				t.Errorf("reports %+v, want one failure with a next attempt", failed)
			}

			clock.Advance(DefaultCredentialsBaseDelay + pauseJitter)
			h.waitIdle()
			if got, _ := h.d.Delivered(keyOf("web")); !equal(got, dep("web", 1)) {
				t.Errorf("Delivered() = %+v after the pause, want the record", got)
			}
		})
	}
}

// TestCredentialsRefusedRollouts refuses one sink's credentials three times: that sink pauses 30s, 60s, 120s
// and then delivers the latest snapshot of every rollout, each reported once while it waited; the other sink
// goes on meanwhile.
func TestCredentialsRefusedRollouts(t *testing.T) {
	clock := newFakeClock()
	refused := &sink.CredentialsError{StatusCode: 401, Message: "Bad credentials"}
	github, slack := newFakeRolloutSink(t, result{err: refused}, result{err: refused}, result{err: refused}), newFakeRolloutSink(t)
	tr := &transitions{}
	h := newRolloutHarness(t, RolloutsConfig{Workers: 1, BaseDelay: fastBase, MaxDelay: fastMax, OnCredentials: tr.on},
		map[string]*fakeRolloutSink{"github": github, "slack": slack}, clock)
	h.d.jitter = exact
	start := clock.Now()
	h.start()

	h.d.Notify(ipWeb)
	pauseTill := func() time.Time { h.d.mu.Lock(); defer h.d.mu.Unlock(); return h.d.pauseTill["github"] }
	eventually(t, "github is paused while slack has web", func() bool { return !pauseTill().IsZero() && len(slack.callList()) == 1 })
	h.d.Notify(ipAPI)
	h.d.Notify(curWeb)
	eventually(t, "slack has api and the newer web while github waits", func() bool {
		return clock.Sleepers() == 2 && len(slack.callList()) == 3
	})
	if got := sinkGauge(t, h.reg); !cmp.Equal(got, map[string]float64{"github": 1, "slack": 0}) {
		t.Errorf("gauge while refused %v, want github 1, slack 0", got)
	}
	if diff := cmp.Diff(map[string]time.Time{"github": start}, h.d.CredentialsRefused()); diff != "" {
		t.Errorf("CredentialsRefused() (-want +got):\n%s", diff)
	}

	for i, pause := range []time.Duration{30 * time.Second, time.Minute, 2 * time.Minute} {
		if n := len(github.callList()); n != i+1 {
			t.Fatalf("round %d: github notified %d times, want %d", i+1, n, i+1)
		}
		now := clock.Now()
		if got := pauseTill(); !got.Equal(now.Add(pause)) {
			t.Errorf("round %d: paused %s, want %s", i+1, got.Sub(now), pause)
		}
		clock.Advance(pause - time.Millisecond)
		if n := len(github.callList()); n != i+1 {
			t.Fatalf("round %d: github notified %d times before the end of the pause, want %d", i+1, n, i+1)
		}
		clock.Advance(time.Millisecond + pauseJitter)
		if i < 2 {
			eventually(t, "the next refusal", func() bool { return len(github.callList()) == i+2 && clock.Sleepers() == 2 })
		}
	}
	h.waitIdle()

	var delivered []rollout.Rollout
	for _, c := range github.callList() {
		if c.Err == nil {
			delivered = append(delivered, c.N.Rollout)
		}
	}
	slices.SortFunc(delivered, func(a, b rollout.Rollout) int { return strings.Compare(a.Workload.Name, b.Workload.Name) })
	if diff := cmp.Diff([]rollout.Rollout{ipAPI, curWeb}, delivered); diff != "" {
		t.Errorf("github delivered (-want +got):\n%s", diff)
	}
	if got := sinkGauge(t, h.reg); !cmp.Equal(got, map[string]float64{"github": 0, "slack": 0}) {
		t.Errorf("gauge after the credentials were accepted %v, want 0", got)
	}
	if got := h.d.CredentialsRefused(); len(got) != 0 {
		t.Errorf("CredentialsRefused() = %v after a success, want none", got)
	}
	if diff := cmp.Diff([]transition{{Sink: "github", Refused: true, Err: "notify Deployment.apps/shop/web revision 1: " + refused.Error()}, {Sink: "github"}}, tr.list()); diff != "" {
		t.Errorf("OnCredentials calls (-want +got):\n%s", diff)
	}
	counts, pending := h.counts()
	want := map[string]float64{"github/credentials_refused": 3, "github/delivered": 2, "slack/delivered": 3}
	if diff := cmp.Diff(want, counts); diff != "" {
		t.Errorf("deptracker_rollout_notifications_total (-want +got):\n%s", diff)
	}
	if pending != 0 {
		t.Errorf("pending gauge %v, want 0", pending)
	}
	failed := map[string]int{}
	for _, r := range h.reporter.all()["github"] {
		if !r.Delivered {
			failed[r.Rollout.Workload.Name]++
			if !r.Retry {
				t.Errorf("%s reported failed without a next attempt", r.Rollout.Workload.Name)
			}
		}
	}
	if diff := cmp.Diff(map[string]int{"web": 1, "api": 1}, failed); diff != "" {
		t.Errorf("github failures reported per rollout (-want +got):\n%s", diff)
	}
	if got := h.reporter.all()["slack"]; slices.ContainsFunc(got, func(r report) bool { return !r.Delivered }) {
		t.Errorf("slack reported failures: %+v", got)
	}
}

// refusingCluster is a fake sink whose bulk requests are refused the credentials.
type refusingCluster struct {
	*fakeSink
	err error
}

var _ sink.ClusterSink = refusingCluster{}

func (c refusingCluster) PostCluster(_ context.Context, recs []record.Record) ([]error, error) {
	results := make([]error, len(recs))
	for i := range results {
		results[i] = c.err
	}
	return results, c.err
}

// TestCredentialsRefusedBulk: a first sync whose bulk request is refused the credentials pauses the sink
// before any record is posted one by one; the records are delivered once the pause ends.
func TestCredentialsRefusedBulk(t *testing.T) {
	clock := newFakeClock()
	tr := &transitions{}
	h := newHarness(t, Config{Workers: 1, BaseDelay: fastBase, MaxDelay: fastMax, SinkName: "github", OnCredentials: tr.on,
		FirstSync: func(context.Context) (bool, error) { return true, nil }}, clock)
	h.d.jitter = exact
	refused := &sink.CredentialsError{StatusCode: 401, Message: "A JSON web token could not be decoded"}
	h.d.cfg.Sink = refusingCluster{fakeSink: h.sink, err: refused}
	h.desire(dep("web", 1), dep("api", 1))
	start := clock.Now()
	h.start()
	eventually(t, "both records wait for the pause", func() bool { return clock.Sleepers() == 2 })
	if n := h.sink.numCalls(); n != 0 {
		t.Errorf("%d posts during the pause, want none", n)
	}
	if diff := cmp.Diff(map[string]time.Time{"github": start}, h.d.CredentialsRefused()); diff != "" {
		t.Errorf("CredentialsRefused() (-want +got):\n%s", diff)
	}
	clock.Advance(30*time.Second + pauseJitter)
	h.waitIdle()
	if diff := cmp.Diff(map[record.Key]record.Record{keyOf("web"): dep("web", 1), keyOf("api"): dep("api", 1)}, h.sink.state()); diff != "" {
		t.Errorf("sink state (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]transition{{Sink: "github", Refused: true, Err: refused.Error()}, {Sink: "github"}}, tr.list()); diff != "" {
		t.Errorf("OnCredentials calls (-want +got):\n%s", diff)
	}
}
