package dispatch

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/deployment-tracker/deployment-tracker/internal/record"
	"github.com/deployment-tracker/deployment-tracker/internal/sink"
)

// decommissionOf is r decommissioned: what the sink must end up holding when r's workload goes away.
func decommissionOf(r record.Record) record.Record { r.Status = record.StatusDecommissioned; return r }

// TestDecommissionWhatTheSinkHolds delivers digest 1, then a digest 2 the sink does not take, then deletes
// the workload: the decommission goes to digest 1, which the sink holds; decommissioning digest 2 would leave
// digest 1 deployed at GitHub forever.
func TestDecommissionWhatTheSinkHolds(t *testing.T) {
	invalid := withDigest(dep("web", 2), "latest")
	tests := []struct {
		name       string
		unattested bool            // digest 2 has no attestation
		next       record.Record   // the new digest's record
		gone       []record.Record // desired together, before the worker runs (a short-lived rollout)
		wantPosts  []record.Record
	}{
		{
			name: "404 for the new digest, then deleted", unattested: true, next: dep("web", 2),
			wantPosts: []record.Record{dep("web", 1), dep("web", 2), dec("web", 1)},
		},
		{
			name: "new digest rejected, then deleted", next: invalid,
			wantPosts: []record.Record{dep("web", 1), invalid, dec("web", 1)},
		},
		{
			name: "deleted while the new digest was still to be posted", unattested: true,
			gone:      []record.Record{dep("web", 2), dec("web", 2)},
			wantPosts: []record.Record{dep("web", 1), dep("web", 2), dec("web", 1)},
		},
		{
			name: "new digest accepted, then deleted: its own decommission", next: dep("web", 2),
			wantPosts: []record.Record{dep("web", 1), dep("web", 2), dec("web", 2)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := newFakeClock()
			rep := &fakeReporter{}
			h := newHarness(t, Config{Workers: 1, BaseDelay: fastBase, MaxDelay: fastMax, Reporter: rep}, clock)
			h.sink.setUnattested(digest(2), tt.unattested)
			h.start()
			h.desire(dep("web", 1))
			eventually(t, "digest 1 delivered", func() bool { _, ok := h.d.Delivered(keyOf("web")); return ok })
			if tt.gone != nil {
				release := h.sink.hold(forKey("api"))
				h.desire(dep("api", 1)) // a post in flight on the one worker while web's records are desired
				eventually(t, "api's post held", func() bool { return h.sink.held() == 1 })
				h.desire(tt.gone...)
				release()
			} else {
				h.desire(tt.next)
				eventually(t, "the new digest posted", func() bool { return h.sink.numCalls() == 2 })
				h.waitIdle()
				h.desire(decommissionOf(tt.next))
			}
			h.waitIdle()
			// Whatever was parked, nothing else is posted for web later.
			clock.Advance(2 * time.Hour)
			time.Sleep(10 * time.Millisecond)
			h.waitIdle()

			if diff := cmp.Diff(tt.wantPosts, h.sink.posted(forKey("web")), cmp.Comparer(equal)); diff != "" {
				t.Errorf("posts of web (-want +got):\n%s", diff)
			}
			want := tt.wantPosts[len(tt.wantPosts)-1]
			if got := h.sink.state()[keyOf("web")]; !equal(got, want) {
				t.Errorf("the sink holds %+v for web, want %+v", got, want)
			}
			if got, _ := h.d.Delivered(keyOf("web")); !remembers(h.d, keyOf("web"), want) {
				t.Errorf("Delivered(web) = %+v, want %+v", got, want)
			}
			reports := rep.all()["web"]
			if last := reports[len(reports)-1]; !last.Delivered || !equal(last.Rec, want) {
				t.Errorf("last report of web %+v, want %+v delivered (the ledger keeps what the sink holds)", last, want)
			}
		})
	}
}

// TestNotAttestedReplaced parks a record without attestation, then desires something else for its key before
// the entry expires: the parked record is not posted when it does.
func TestNotAttestedReplaced(t *testing.T) {
	const ttl = time.Hour
	tests := []struct {
		name      string
		then      record.Record
		wantPosts []record.Record
	}{
		{name: "a newer digest", then: dep("web", 3), wantPosts: []record.Record{dep("web", 2), dep("web", 3)}},
		{name: "back to the delivered digest", then: dep("web", 1), wantPosts: []record.Record{dep("web", 2)}},
		{name: "decommissioned", then: dec("web", 2), wantPosts: []record.Record{dep("web", 2), dec("web", 1)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := newFakeClock()
			h := newHarness(t, Config{Workers: 1, UnknownArtifactTTL: ttl, BaseDelay: fastBase, MaxDelay: fastMax}, clock)
			h.sink.setUnattested(digest(2), true)
			h.d.Seed(dep("web", 1)) // what the sink holds after a restart
			h.start()
			h.desire(dep("web", 2))
			eventually(t, "the 404 parked", func() bool { return h.d.Idle() && clock.Sleepers() == 1 })
			h.desire(tt.then)
			h.waitIdle()
			h.sink.setUnattested(digest(2), false)
			clock.Advance(ttl)
			eventually(t, "the parked record's timer fired", func() bool { return clock.Sleepers() == 0 })
			time.Sleep(10 * time.Millisecond)
			h.waitIdle()
			if diff := cmp.Diff(tt.wantPosts, h.sink.posted(nil), cmp.Comparer(equal)); diff != "" {
				t.Errorf("posts (-want +got):\n%s", diff)
			}
		})
	}
}

// TestNotAttestedRecalled restarts with artifacts the ledger remembers as not attested: their records are not
// posted before their time (a TTL shortened since caps it), the key the ledger already shows is not reported
// again, another key waiting for the same artifact is, with the remembered answer.
func TestNotAttestedRecalled(t *testing.T) {
	clock := newFakeClock()
	rep := &fakeReporter{}
	const ttl = time.Hour
	remembered := []NotAttested{
		{Key: keyOf("web"), Name: dep("web", 7).Name, Digest: digest(7), Until: t0.Add(30 * time.Minute), Message: "post: artifact not found: no artifacts found"},
		{Key: keyOf("db"), Name: dep("db", 8).Name, Digest: digest(8), Until: t0.Add(5 * time.Hour)},
		{Key: keyOf("old"), Name: dep("old", 9).Name, Digest: digest(9), Until: t0.Add(-time.Minute)},
	}
	var calls int
	h := newHarness(t, Config{Workers: 1, UnknownArtifactTTL: ttl, BaseDelay: fastBase, MaxDelay: fastMax, Reporter: rep,
		NotAttested: func(context.Context) ([]NotAttested, error) { calls++; return remembered, nil }}, clock)
	// What the tracker desires when it resumes, before the dispatcher posts anything.
	h.desire(dep("web", 7), dep("api", 7), dep("db", 8), dep("old", 9))
	h.start()
	eventually(t, "old posted, the others parked", func() bool { return h.d.Idle() && h.sink.numCalls() == 1 && clock.Sleepers() == 3 })
	if calls != 1 {
		t.Errorf("NotAttested called %d times, want once", calls)
	}
	if diff := cmp.Diff([]record.Record{dep("old", 9)}, h.sink.posted(nil), cmp.Comparer(equal)); diff != "" {
		t.Errorf("posts at start (-want +got):\n%s", diff)
	}
	failed := map[string][]string{}
	for dn, reports := range rep.all() {
		for _, r := range reports {
			if !r.Delivered {
				failed[dn] = append(failed[dn], r.Err)
			}
		}
	}
	if diff := cmp.Diff(map[string][]string{"api": {remembered[0].Message}}, failed); diff != "" {
		t.Errorf("failures reported (-want +got):\n%s", diff)
	}

	clock.Advance(30 * time.Minute)
	eventually(t, "web and api posted at their time", func() bool { return h.d.Idle() && h.sink.numCalls() == 3 && clock.Sleepers() == 1 })
	clock.Advance(30 * time.Minute)
	eventually(t, "db posted at the TTL", func() bool { return h.d.Idle() && h.sink.numCalls() == 4 && clock.Sleepers() == 0 })
	for _, dn := range []string{"web", "api", "db", "old"} {
		if _, ok := h.d.Delivered(keyOf(dn)); !ok {
			t.Errorf("%s not delivered", dn)
		}
	}
}

// orgMissing is a sink's error for a target that does not exist, as the GitHub sink's OrganizationError.
type orgMissing struct{ org string }

func (e *orgMissing) Error() string       { return fmt.Sprintf("organization %q not found", e.org) }
func (e *orgMissing) Misconfigured() bool { return true }

// checkingSink is the fake sink with a target check: checks answers the checks in turn (nil once they run
// out).
type checkingSink struct {
	*fakeSink
	mu     sync.Mutex
	checks []error
	n      int
}

var _ TargetChecker = (*checkingSink)(nil)

func (s *checkingSink) CheckTarget(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.n++
	if len(s.checks) == 0 {
		return nil
	}
	err := s.checks[0]
	s.checks = s.checks[1:]
	return err
}

func (s *checkingSink) numChecks() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n
}

// eventuallyWaking waits until cond holds, waking the earliest sleeper of clock meanwhile: a key that found
// another worker checking the target waits a jitter on the clock.
func eventuallyWaking(t *testing.T, clock *fakeClock, what string, cond func() bool) {
	t.Helper()
	eventually(t, what, func() bool {
		if cond() {
			return true
		}
		clock.AdvanceToNext()
		return false
	})
}

// misconfiguredHarness is a harness whose sink checks its target with checks.
func misconfiguredHarness(t *testing.T, clock *fakeClock, rep Reporter, tr *transitions, checks ...error) (*harness, *checkingSink) {
	h := newHarness(t, Config{Workers: 2, BaseDelay: fastBase, MaxDelay: fastMax, SinkName: "github", Reporter: rep, OnMisconfigured: tr.on}, clock)
	cs := &checkingSink{fakeSink: h.sink, checks: checks}
	h.d.cfg.Sink = cs
	h.d.jitter = exact
	return h, cs
}

// TestMisconfiguredAtStart starts with a target that does not exist: nothing is posted, the sink pauses 30s,
// then 60s, checking its target at the end of each pause, every record is kept and reported once, and
// everything is delivered when the target answers.
func TestMisconfiguredAtStart(t *testing.T) {
	clock := newFakeClock()
	rep, tr := &fakeReporter{}, &transitions{}
	missing := &orgMissing{org: "octo-orgg"}
	h, cs := misconfiguredHarness(t, clock, rep, tr, missing, missing, missing)
	h.desire(dep("web", 1), dep("api", 1))
	h.start()
	eventually(t, "both keys wait for the pause", func() bool { return clock.Sleepers() == 2 })
	pauseTill := func() time.Time { h.d.mu.Lock(); defer h.d.mu.Unlock(); return h.d.pauseTill }
	if got := pauseTill(); !got.Equal(t0.Add(30 * time.Second)) {
		t.Errorf("paused until %s, want 30s", got.Sub(t0))
	}
	for i, pause := range []time.Duration{30 * time.Second, time.Minute, 2 * time.Minute} {
		if n := h.sink.numCalls(); n != 0 {
			t.Fatalf("round %d: %d posts while misconfigured, want none", i+1, n)
		}
		clock.Advance(pause + pauseJitter)
		eventually(t, "the next check", func() bool { return cs.numChecks() >= i+2 })
		if i < 2 {
			eventually(t, "both keys wait again", func() bool { return clock.Sleepers() == 2 })
		}
	}
	eventuallyWaking(t, clock, "everything delivered", func() bool { return h.d.Idle() && h.sink.numCalls() == 2 })
	if cs.numChecks() != 4 {
		t.Errorf("%d checks, want 4 (at start, then at the end of each pause)", cs.numChecks())
	}
	if diff := cmp.Diff([]transition{{Sink: "github", Refused: true, Err: missing.Error()}, {Sink: "github"}}, tr.list()); diff != "" {
		t.Errorf("OnMisconfigured calls (-want +got):\n%s", diff)
	}
	for _, dn := range []string{"web", "api"} {
		var got []recordReport
		for _, r := range rep.all()[dn] {
			r.Next, r.Attempts = time.Time{}, 0
			got = append(got, r)
		}
		want := []recordReport{{Rec: dep(dn, 1), Err: missing.Error()}, {Delivered: true, Rec: dep(dn, 1)}}
		if diff := cmp.Diff(want, got, cmp.Comparer(equal)); diff != "" {
			t.Errorf("%s reports (-want +got):\n%s", dn, diff)
		}
	}
}

// TestMisconfiguredOnPost: the check at start passes, a post then says the organization is missing (a 404
// that is not about the artifact): the record is neither cached as an unknown artifact nor dropped, the sink
// pauses and checks again, and the record is delivered once the check passes.
func TestMisconfiguredOnPost(t *testing.T) {
	clock := newFakeClock()
	rep, tr := &fakeReporter{}, &transitions{}
	missing := &orgMissing{org: "octo-org"}
	h, cs := misconfiguredHarness(t, clock, rep, tr, nil, missing)
	h.sink.fail(forKey("web"), missing)
	h.start()
	eventually(t, "the check at start", func() bool { return cs.numChecks() == 1 })
	h.desire(dep("web", 1))
	eventually(t, "web waits for the pause", func() bool { return clock.Sleepers() == 1 })
	h.desire(dep("api", 1)) // the same artifact name under another key waits too
	eventually(t, "api waits for the pause", func() bool { return clock.Sleepers() == 2 })
	h.d.mu.Lock()
	cached := len(h.d.unknown)
	h.d.mu.Unlock()
	if cached != 0 {
		t.Errorf("%d artifacts cached as unknown, want none: the organization is missing, not the artifact", cached)
	}
	clock.Advance(30*time.Second + pauseJitter) // the check: still missing
	eventually(t, "paused again", func() bool { return cs.numChecks() == 2 && clock.Sleepers() == 2 })
	clock.Advance(time.Minute + pauseJitter) // the check passes
	eventuallyWaking(t, clock, "both delivered", func() bool { return h.d.Idle() && h.sink.numCalls() == 3 })
	for _, dn := range []string{"web", "api"} {
		if got, _ := h.d.Delivered(keyOf(dn)); !equal(got, dep(dn, 1)) {
			t.Errorf("Delivered(%s) = %+v, want it", dn, got)
		}
	}
	if diff := cmp.Diff([]transition{{Sink: "github", Refused: true, Err: missing.Error()}, {Sink: "github"}}, tr.list()); diff != "" {
		t.Errorf("OnMisconfigured calls (-want +got):\n%s", diff)
	}
	h.wantCounters(map[string]float64{mSoftFail: 1, mOK: 2})
}

// TestMisconfiguredSkipsBulk: a first sync with a missing target does not send the bulk requests; the records
// are posted one by one once the target answers.
func TestMisconfiguredSkipsBulk(t *testing.T) {
	clock := newFakeClock()
	rep, tr := &fakeReporter{}, &transitions{}
	h, cs := misconfiguredHarness(t, clock, rep, tr, &orgMissing{org: "x"})
	bulk := &countingCluster{checkingSink: cs}
	h.d.cfg.Sink = bulk
	h.d.cfg.FirstSync = func(context.Context) (bool, error) { return true, nil }
	h.desire(dep("web", 1))
	h.start()
	eventually(t, "web waits", func() bool { return clock.Sleepers() == 1 })
	clock.Advance(30*time.Second + pauseJitter)
	eventually(t, "web delivered", func() bool { return h.d.Idle() && h.sink.numCalls() == 1 })
	if n := bulk.calls(); n != 0 {
		t.Errorf("%d bulk requests, want none", n)
	}
}

// countingCluster is a checking sink with bulk requests that counts them.
type countingCluster struct {
	*checkingSink
	mu sync.Mutex
	n  int
}

func (c *countingCluster) PostCluster(_ context.Context, recs []record.Record) ([]error, error) {
	c.mu.Lock()
	c.n++
	c.mu.Unlock()
	out := make([]error, len(recs))
	for i := range out {
		out[i] = &sink.NotFoundError{Message: "Not Found"}
	}
	return out, nil
}

func (c *countingCluster) calls() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

// TestMisconfiguredDrain stops a dispatcher whose sink is misconfigured: the drain ends at once, since nothing
// can be posted before the pause ends, and the records are left pending (for the ledger and the next leader).
func TestMisconfiguredDrain(t *testing.T) {
	clock := newFakeClock()
	rep, tr := &fakeReporter{}, &transitions{}
	h, _ := misconfiguredHarness(t, clock, rep, tr, &orgMissing{org: "x"})
	h.d.cfg.DrainTimeout = time.Hour // on the fake clock: never reached unless advanced
	h.desire(dep("web", 1))
	h.start()
	eventually(t, "web waits", func() bool { return clock.Sleepers() == 1 })
	h.stop()
	if h.d.Idle() || h.sink.numCalls() != 0 {
		t.Errorf("idle %t, %d posts after the stop; want web pending, nothing posted", h.d.Idle(), h.sink.numCalls())
	}
}
