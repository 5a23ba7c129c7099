package dispatch

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/deployment-tracker/deployment-tracker/internal/metrics"
	"github.com/deployment-tracker/deployment-tracker/internal/record"
	"github.com/deployment-tracker/deployment-tracker/internal/sink"
)

// waitTimeout bounds every wait for a condition; reaching it fails the test, it never decides an outcome.
const waitTimeout = 15 * time.Second

// eventually waits until cond holds, failing the test if it does not within waitTimeout.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// --- records ---

func digest(n int) string { return fmt.Sprintf("sha256:%064x", n) }

// rec returns a valid record of deployment name dn for image version n.
func rec(dn string, n int, status record.Status) record.Record {
	return record.Record{
		Name:                "ghcr.io/octo-org/app",
		Digest:              digest(n),
		Version:             fmt.Sprintf("v%d", n),
		Status:              status,
		LogicalEnvironment:  "production",
		PhysicalEnvironment: "eu-west-1",
		Cluster:             "prod-1",
		DeploymentName:      dn,
		Tags:                map[string]string{"team": "payments"},
		RuntimeRisks:        []string{"internet-exposed"},
	}
}

func dep(dn string, n int) record.Record { return rec(dn, n, record.StatusDeployed) }
func dec(dn string, n int) record.Record { return rec(dn, n, record.StatusDecommissioned) }

func keyOf(dn string) record.Key { r := dep(dn, 0); return r.Key() }

// --- fake sink ---

var digestPattern = regexp.MustCompile(`^sha256:[a-f0-9]{64}$`)

// call is one Post the fake sink received.
type call struct {
	Rec record.Record
	At  time.Time // on the test's clock
	Err error
}

// gate holds back the posts it matches until it is opened.
type gate struct {
	match func(record.Record) bool
	open  chan struct{}
}

// fault makes the posts it matches fail with errs, one per post, in order.
type fault struct {
	match func(record.Record) bool
	errs  []error
}

// fakeSink behaves like the GitHub sink: it validates the body as the API does (422), answers 404 for
// artifacts without an attestation, upserts accepted records by key, honours the context and wraps its errors
// with context like the real one. Tests script failures, hold posts back, and it fails the test if one key is
// ever posted by two workers at once.
type fakeSink struct {
	t   testing.TB
	now func() time.Time

	mu         sync.Mutex
	calls      []call
	current    map[record.Key]record.Record // the last accepted record of each key, as GitHub keeps it
	unattested map[string]bool              // digests GitHub has no attestation for
	posting    map[record.Key]bool
	inFlight   int
	maxFlight  int
	waiting    int // posts held back by a gate
	gates      []*gate
	faults     []*fault
	onPost     func(n int, r record.Record) error // optional: the outcome of the n-th post (1-based)
}

var _ sink.Sink = (*fakeSink)(nil)

func newFakeSink(t testing.TB, now func() time.Time) *fakeSink {
	return &fakeSink{
		t:          t,
		now:        now,
		current:    map[record.Key]record.Record{},
		unattested: map[string]bool{},
		posting:    map[record.Key]bool{},
	}
}

func (s *fakeSink) Post(ctx context.Context, r record.Record) error {
	k := r.Key()
	s.mu.Lock()
	if s.posting[k] {
		s.t.Errorf("key %+v posted by two workers at once", k)
	}
	s.posting[k] = true
	s.inFlight++
	s.maxFlight = max(s.maxFlight, s.inFlight)
	s.calls = append(s.calls, call{Rec: r, At: s.now()})
	n := len(s.calls)
	var g *gate
	for _, gg := range s.gates {
		if gg.match(r) {
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
	runtime.Gosched() // give other workers a chance to run into this key while it is being posted
	err := s.answer(ctx, n, r)

	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls[n-1].Err = err
	s.posting[k] = false
	s.inFlight--
	if err == nil {
		s.current[k] = r
	}
	if err != nil {
		return fmt.Errorf("post deployment record %s: %w", r.DeploymentName, err)
	}
	return nil
}

// answer decides the outcome of the n-th post, in the order GitHub would: transport, validation, artifact.
func (s *fakeSink) answer(ctx context.Context, n int, r record.Record) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	onPost := s.onPost
	for _, f := range s.faults {
		if len(f.errs) > 0 && f.match(r) {
			err := f.errs[0]
			f.errs = f.errs[1:]
			s.mu.Unlock()
			return err
		}
	}
	unattested := s.unattested[r.Digest]
	s.mu.Unlock()
	if onPost != nil {
		if err := onPost(n, r); err != nil {
			return err
		}
	}
	if err := validate(r); err != nil {
		return &sink.PermanentError{StatusCode: 422, Message: err.Error()}
	}
	if unattested {
		return &sink.NotFoundError{Message: "no attestation for " + r.Digest}
	}
	return nil
}

// validate checks what GitHub's schema requires of the request body.
func validate(r record.Record) error {
	var errs []error
	for field, v := range map[string]string{"name": r.Name, "logical_environment": r.LogicalEnvironment, "deployment_name": r.DeploymentName} {
		if v == "" {
			errs = append(errs, fmt.Errorf("%s is required", field))
		}
	}
	if !digestPattern.MatchString(r.Digest) {
		errs = append(errs, fmt.Errorf("digest %q does not match %s", r.Digest, digestPattern))
	}
	if r.Status != record.StatusDeployed && r.Status != record.StatusDecommissioned {
		errs = append(errs, fmt.Errorf("status %q is not deployed or decommissioned", r.Status))
	}
	return errors.Join(errs...)
}

// fail makes the next posts matching match fail with errs, one each.
func (s *fakeSink) fail(match func(record.Record) bool, errs ...error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, &fault{match: match, errs: errs})
}

// hold holds back the posts matching match until the returned function is called.
func (s *fakeSink) hold(match func(record.Record) bool) (release func()) {
	g := &gate{match: match, open: make(chan struct{})}
	s.mu.Lock()
	s.gates = append(s.gates, g)
	s.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			s.gates = slices.DeleteFunc(s.gates, func(x *gate) bool { return x == g })
			s.mu.Unlock()
			close(g.open)
		})
	}
}

func (s *fakeSink) setUnattested(d string, unattested bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.unattested[d] = unattested
}

// held is the number of posts waiting at a gate.
func (s *fakeSink) held() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.waiting
}

func (s *fakeSink) callList() []call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

// posted returns the records posted, in order, matching match (all if nil).
func (s *fakeSink) posted(match func(record.Record) bool) []record.Record {
	var out []record.Record
	for _, c := range s.callList() {
		if match == nil || match(c.Rec) {
			out = append(out, c.Rec)
		}
	}
	return out
}

func (s *fakeSink) numCalls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.calls)
}

func (s *fakeSink) state() map[record.Key]record.Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[record.Key]record.Record, len(s.current))
	for k, r := range s.current {
		out[k] = r
	}
	return out
}

func forKey(dn string) func(record.Record) bool {
	return func(r record.Record) bool { return r.DeploymentName == dn }
}

func forRecord(want record.Record) func(record.Record) bool {
	return func(r record.Record) bool { return equal(r, want) }
}

// --- fake clock ---

// fakeClock is a manual clock for Config.Now and the Dispatcher's sleeps: sleepers wake when Advance passes
// their deadline, and tests can wait until the workers are asleep.
type fakeClock struct {
	mu       sync.Mutex
	now      time.Time
	sleepers []*sleeper
}

type sleeper struct {
	at   time.Time
	wake chan struct{}
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	c.mu.Lock()
	s := &sleeper{at: c.now.Add(d), wake: make(chan struct{})}
	c.sleepers = append(c.sleepers, s)
	c.mu.Unlock()
	select {
	case <-s.wake:
		return nil
	case <-ctx.Done():
		c.mu.Lock()
		c.sleepers = slices.DeleteFunc(c.sleepers, func(x *sleeper) bool { return x == s })
		c.mu.Unlock()
		return ctx.Err()
	}
}

// Advance moves the clock forward by d and wakes the sleepers whose time has come.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	c.sleepers = slices.DeleteFunc(c.sleepers, func(s *sleeper) bool {
		if s.at.After(c.now) {
			return false
		}
		close(s.wake)
		return true
	})
}

// AdvanceToNext moves the clock to the earliest sleeper's deadline and wakes it.
func (c *fakeClock) AdvanceToNext() {
	c.mu.Lock()
	if len(c.sleepers) == 0 {
		c.mu.Unlock()
		return
	}
	next := slices.MinFunc(c.sleepers, func(a, b *sleeper) int { return a.at.Compare(b.at) }).at
	d := next.Sub(c.now)
	c.mu.Unlock()
	c.Advance(d)
}

func (c *fakeClock) Sleepers() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.sleepers)
}

// --- harness ---

// harness is a Dispatcher wired to a fake sink, a fresh metrics registry and, optionally, a fake clock.
type harness struct {
	t     testing.TB
	d     *Dispatcher
	sink  *fakeSink
	clock *fakeClock // nil: the real clock
	reg   *prometheus.Registry

	cancel context.CancelFunc
	done   chan error
}

func newHarness(t testing.TB, cfg Config, clock *fakeClock) *harness {
	t.Helper()
	h := &harness{t: t, clock: clock, reg: prometheus.NewPedanticRegistry()}
	now := time.Now
	if clock != nil {
		now = clock.Now
		cfg.Now = clock.Now
	}
	h.sink = newFakeSink(t, now)
	cfg.Sink = h.sink
	cfg.Metrics = metrics.New(h.reg)
	d, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if clock != nil {
		d.sleep = clock.Sleep
		// Timers on the fake clock: a key waiting for a paused sink is a sleeper until the test advances it.
		ctx, cancel := context.WithCancel(context.Background())
		t.Cleanup(cancel)
		d.after = func(k record.Key, dur time.Duration) {
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

func (h *harness) start() {
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	h.done = make(chan error, 1)
	go func() { h.done <- h.d.Start(ctx) }()
}

// stop cancels Start's context and waits for Start to return.
func (h *harness) stop() {
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

func (h *harness) desire(rs ...record.Record) {
	for _, r := range rs {
		h.d.Desire(r, h.d.cfg.Now())
	}
}

func (h *harness) waitIdle() {
	h.t.Helper()
	eventually(h.t, "the dispatcher is idle", h.d.Idle)
}

// metricValues reads the named metrics from the registry: counter and gauge values, histogram sample counts.
func (h *harness) metricValues(names ...string) map[string]float64 {
	h.t.Helper()
	mfs, err := h.reg.Gather()
	if err != nil {
		h.t.Fatalf("gather metrics: %v", err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if !slices.Contains(names, mf.GetName()) || len(mf.GetMetric()) != 1 {
			continue
		}
		m := mf.GetMetric()[0]
		switch {
		case m.GetCounter() != nil:
			out[mf.GetName()] = m.GetCounter().GetValue()
		case m.GetGauge() != nil:
			out[mf.GetName()] = m.GetGauge().GetValue()
		case m.GetHistogram() != nil:
			out[mf.GetName()] = float64(m.GetHistogram().GetSampleCount())
		}
	}
	return out
}

// The post outcome metrics, by their exposed names.
const (
	mOK            = "deptracker_post_record_ok"
	mSoftFail      = "deptracker_post_record_soft_fail"
	mHardFail      = "deptracker_post_record_hard_fail"
	mClientError   = "deptracker_post_record_client_error"
	mNoAttestation = "deptracker_post_record_no_attestation"
	mRateLimited   = "deptracker_post_record_rate_limited"
	mCacheHit      = "deptracker_post_record_unknown_artifact_cache_hit"
	mPending       = "deptracker_pending_records"
	mPostTimer     = "deptracker_post_deployment_record_timer"
	mLatency       = "deptracker_record_latency_seconds"
)

var outcomeMetrics = []string{mOK, mSoftFail, mHardFail, mClientError, mNoAttestation, mRateLimited, mCacheHit}

// wantCounters compares the outcome counters with want; counters absent from want must be zero.
func (h *harness) wantCounters(want map[string]float64) {
	h.t.Helper()
	full := map[string]float64{}
	for _, n := range outcomeMetrics {
		full[n] = want[n]
	}
	if diff := cmp.Diff(full, h.metricValues(outcomeMetrics...)); diff != "" {
		h.t.Errorf("outcome counters (-want +got):\n%s", diff)
	}
}
