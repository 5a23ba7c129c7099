package dispatch

import (
	"context"
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/deployment-tracker/deployment-tracker/internal/record"
	"github.com/deployment-tracker/deployment-tracker/internal/sink"
)

// fast retries: a retried record is posted again within milliseconds.
const (
	fastBase = time.Millisecond
	fastMax  = 4 * time.Millisecond
)

func TestNew(t *testing.T) {
	fake := newFakeSink(t, time.Now)
	type settings struct {
		Workers                                       int
		BaseDelay, MaxDelay, UnknownTTL, DrainTimeout time.Duration
		CredentialsBase, CredentialsMax               time.Duration
		SinkName                                      string
	}
	tests := []struct {
		name    string
		cfg     Config
		wantErr bool
		want    settings
	}{
		{name: "no sink", cfg: Config{}, wantErr: true},
		{
			name: "defaults",
			cfg:  Config{Sink: fake},
			want: settings{Workers: 2, BaseDelay: time.Second, MaxDelay: 5 * time.Minute, UnknownTTL: time.Hour, DrainTimeout: 20 * time.Second, CredentialsBase: 30 * time.Second, CredentialsMax: 10 * time.Minute, SinkName: "records"},
		},
		{
			name: "explicit values kept",
			cfg:  Config{Sink: fake, Workers: 7, BaseDelay: time.Millisecond, MaxDelay: time.Second, UnknownArtifactTTL: time.Minute, DrainTimeout: time.Second},
			want: settings{Workers: 7, BaseDelay: time.Millisecond, MaxDelay: time.Second, UnknownTTL: time.Minute, DrainTimeout: time.Second, CredentialsBase: 30 * time.Second, CredentialsMax: 10 * time.Minute, SinkName: "records"},
		},
		{
			name: "credentials pause and sink name kept, its cap raised to its base",
			cfg:  Config{Sink: fake, CredentialsBaseDelay: time.Hour, CredentialsMaxDelay: time.Minute, SinkName: "github"},
			want: settings{Workers: 2, BaseDelay: time.Second, MaxDelay: 5 * time.Minute, UnknownTTL: time.Hour, DrainTimeout: 20 * time.Second,
				CredentialsBase: time.Hour, CredentialsMax: time.Hour, SinkName: "github"},
		},
		{
			name: "max delay raised to base delay",
			cfg:  Config{Sink: fake, BaseDelay: time.Minute, MaxDelay: time.Second},
			want: settings{Workers: 2, BaseDelay: time.Minute, MaxDelay: time.Minute, UnknownTTL: time.Hour, DrainTimeout: 20 * time.Second, CredentialsBase: 30 * time.Second, CredentialsMax: 10 * time.Minute, SinkName: "records"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := New(tt.cfg)
			if (err != nil) != tt.wantErr {
				t.Fatalf("New() error = %v, want error: %t", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			defer d.queue.ShutDown()
			got := settings{d.cfg.Workers, d.cfg.BaseDelay, d.cfg.MaxDelay, d.cfg.UnknownArtifactTTL, d.cfg.DrainTimeout,
				d.cfg.CredentialsBaseDelay, d.cfg.CredentialsMaxDelay, d.cfg.SinkName}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("settings (-want +got):\n%s", diff)
			}
			if d.cfg.Now == nil {
				t.Errorf("clock not defaulted")
			}
			if !d.NeedLeaderElection() {
				t.Errorf("NeedLeaderElection() = false, want true: only the leader posts")
			}
		})
	}
}

// TestEqual changes each field of a record in turn, so that a field added to record.Record cannot be
// forgotten by equal.
func TestEqual(t *testing.T) {
	base := dep("web", 1)
	typ := reflect.TypeFor[record.Record]()
	for i := range typ.NumField() {
		f := typ.Field(i)
		t.Run(f.Name, func(t *testing.T) {
			other := base
			other.Tags = map[string]string{"team": "payments"}
			other.RuntimeRisks = []string{"internet-exposed"}
			v := reflect.ValueOf(&other).Elem().Field(i)
			switch v.Kind() {
			case reflect.String:
				v.SetString(v.String() + "-changed")
			case reflect.Map:
				v.Set(reflect.ValueOf(map[string]string{"team": "other"}))
			case reflect.Slice:
				v.Set(reflect.ValueOf([]string{"sensitive-data"}))
			default:
				t.Fatalf("field %s of kind %s: teach equal and this test about it", f.Name, v.Kind())
			}
			if equal(base, other) {
				t.Errorf("equal() = true for records differing in %s", f.Name)
			}
		})
	}
	empty, absent := base, base
	empty.Tags, empty.RuntimeRisks = map[string]string{}, []string{}
	absent.Tags, absent.RuntimeRisks = nil, nil
	if !equal(empty, absent) {
		t.Errorf("equal() = false for empty and absent tags: both leave the field out of the body")
	}
}

// TestDesire checks which records Desire keeps pending for a key, given what the sink holds.
func TestDesire(t *testing.T) {
	tests := []struct {
		name      string
		delivered *record.Record // what the sink holds before
		unsure    bool           // a post of the key has an unknown outcome
		desires   []record.Record
		want      []record.Record
	}{
		{name: "first deployed", desires: []record.Record{dep("web", 1)}, want: []record.Record{dep("web", 1)}},
		{name: "same record twice is one", desires: []record.Record{dep("web", 1), dep("web", 1)}, want: []record.Record{dep("web", 1)}},
		{
			name:    "newer deployed replaces pending deployed",
			desires: []record.Record{dep("web", 1), dep("web", 2), dep("web", 3)},
			want:    []record.Record{dep("web", 3)},
		},
		{
			name:    "decommissioned kept after pending deployed",
			desires: []record.Record{dep("web", 1), dec("web", 1)},
			want:    []record.Record{dep("web", 1), dec("web", 1)},
		},
		{
			name:    "decommissioned desired twice",
			desires: []record.Record{dep("web", 1), dec("web", 1), dec("web", 1)},
			want:    []record.Record{dep("web", 1), dec("web", 1)},
		},
		{
			name:    "newer deployed replaces pending deployed and decommissioned",
			desires: []record.Record{dep("web", 1), dec("web", 1), dep("web", 2)},
			want:    []record.Record{dep("web", 2)},
		},
		{name: "decommissioned with nothing deployed", desires: []record.Record{dec("web", 1)}},
		{name: "what the sink already has", delivered: ptr(dep("web", 1)), desires: []record.Record{dep("web", 1)}},
		{
			name:      "back to what the sink already has",
			delivered: ptr(dep("web", 1)),
			desires:   []record.Record{dep("web", 2), dep("web", 1)},
		},
		{
			name:      "back to what the sink had while a post's outcome is unknown",
			delivered: ptr(dep("web", 1)),
			unsure:    true,
			desires:   []record.Record{dep("web", 1)},
			want:      []record.Record{dep("web", 1)},
		},
		{
			name:      "decommission the delivered deployed",
			delivered: ptr(dep("web", 1)),
			desires:   []record.Record{dec("web", 1)},
			want:      []record.Record{dec("web", 1)},
		},
		{
			name:      "decommission again",
			delivered: ptr(dec("web", 1)),
			desires:   []record.Record{dec("web", 1), dec("web", 2)},
		},
		{
			name:      "redeploy after decommissioned",
			delivered: ptr(dec("web", 1)),
			desires:   []record.Record{dep("web", 1)},
			want:      []record.Record{dep("web", 1)},
		},
		{name: "unknown status ignored", desires: []record.Record{rec("web", 1, "running")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, Config{}, nil)
			k := keyOf("web")
			if tt.delivered != nil {
				h.d.delivered[k] = *tt.delivered
			}
			if tt.unsure {
				h.d.unsure[k] = struct{}{}
			}
			h.desire(tt.desires...)

			var got []record.Record
			for _, it := range h.d.pending[k] {
				got = append(got, it.rec)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("pending (-want +got):\n%s", diff)
			}
			if idle := h.d.Idle(); idle != (len(tt.want) == 0) {
				t.Errorf("Idle() = %t with %d records pending", idle, len(tt.want))
			}
			if len(tt.want) > 0 && h.d.queue.Len() != 1 {
				t.Errorf("queue length = %d with records pending, want 1", h.d.queue.Len())
			}
			if got := h.metricValues(mPending)[mPending]; got != float64(len(tt.want)) {
				t.Errorf("%s = %v, want %d", mPending, got, len(tt.want))
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

// TestDelivery desires records before the workers start and checks what reaches the sink: one post per key
// however many desires, in order, and nothing for what needs nothing.
func TestDelivery(t *testing.T) {
	tests := []struct {
		name       string
		unattested []string
		desires    []record.Record
		wantPosts  map[string][]record.Record // by deployment name, in order
		wantState  map[string]record.Record   // what the sink holds at the end
		wantCount  map[string]float64
	}{
		{
			name:      "50 desires of one key collapse into one post",
			desires:   versions("web", 50),
			wantPosts: map[string][]record.Record{"web": {dep("web", 50)}},
			wantState: map[string]record.Record{"web": dep("web", 50)},
			wantCount: map[string]float64{mOK: 1},
		},
		{
			name:      "short-lived workload: deployed then decommissioned",
			desires:   []record.Record{dep("job", 1), dec("job", 1)},
			wantPosts: map[string][]record.Record{"job": {dep("job", 1), dec("job", 1)}},
			wantState: map[string]record.Record{"job": dec("job", 1)},
			wantCount: map[string]float64{mOK: 2},
		},
		{
			name:      "newer digest replaces the undelivered one",
			desires:   []record.Record{dep("web", 1), dep("api", 1), dep("web", 2)},
			wantPosts: map[string][]record.Record{"web": {dep("web", 2)}, "api": {dep("api", 1)}},
			wantState: map[string]record.Record{"web": dep("web", 2), "api": dep("api", 1)},
			wantCount: map[string]float64{mOK: 2},
		},
		{
			name:    "decommissioned with nothing deployed sends nothing",
			desires: []record.Record{dec("web", 1)},
		},
		{
			name:       "decommission of an artifact GitHub does not know is not sent",
			unattested: []string{digest(9)},
			desires:    []record.Record{dep("web", 9), dec("web", 9)},
			wantPosts:  map[string][]record.Record{"web": {dep("web", 9)}},
			wantCount:  map[string]float64{mNoAttestation: 1, mClientError: 1, mHardFail: 1},
		},
		{
			name:      "decommission of a rejected record is not sent",
			desires:   []record.Record{withDigest(dep("web", 1), "latest"), withDigest(dec("web", 1), "latest")},
			wantPosts: map[string][]record.Record{"web": {withDigest(dep("web", 1), "latest")}},
			wantCount: map[string]float64{mClientError: 1, mHardFail: 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, Config{Workers: 2, BaseDelay: fastBase, MaxDelay: fastMax}, nil)
			for _, d := range tt.unattested {
				h.sink.setUnattested(d, true)
			}
			h.desire(tt.desires...)
			h.start()
			h.waitIdle()

			gotPosts := map[string][]record.Record{}
			for _, r := range h.sink.posted(nil) {
				gotPosts[r.DeploymentName] = append(gotPosts[r.DeploymentName], r)
			}
			if diff := cmp.Diff(tt.wantPosts, gotPosts, cmp.Comparer(equal), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("posts (-want +got):\n%s", diff)
			}
			gotState := map[string]record.Record{}
			for k, r := range h.sink.state() {
				gotState[k.DeploymentName] = r
				if d, ok := h.d.Delivered(k); !remembers(h.d, k, r) {
					t.Errorf("Delivered(%s) = %+v, %t; the sink holds %+v", k.DeploymentName, d, ok, r)
				}
			}
			if diff := cmp.Diff(tt.wantState, gotState, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("sink state (-want +got):\n%s", diff)
			}
			h.wantCounters(tt.wantCount)
		})
	}
}

func versions(dn string, n int) []record.Record {
	out := make([]record.Record, 0, n)
	for i := 1; i <= n; i++ {
		out = append(out, dep(dn, i))
	}
	return out
}

func withDigest(r record.Record, d string) record.Record { r.Digest = d; return r }

// TestDesireWhilePosting desires records for a key while a post of it is in flight: the dispatcher must not
// assume the sink still holds what it last delivered.
func TestDesireWhilePosting(t *testing.T) {
	tests := []struct {
		name      string
		before    []record.Record // delivered first
		inFlight  record.Record   // held at the sink while the next desires arrive
		during    []record.Record
		wantPosts []record.Record
	}{
		{
			name:      "newer digest posted after the in-flight one",
			inFlight:  dep("web", 1),
			during:    []record.Record{dep("web", 2), dep("web", 3)},
			wantPosts: []record.Record{dep("web", 1), dep("web", 3)},
		},
		{
			name:      "decommission queued behind the in-flight deployed",
			inFlight:  dep("web", 1),
			during:    []record.Record{dec("web", 1)},
			wantPosts: []record.Record{dep("web", 1), dec("web", 1)},
		},
		{
			name:      "rollback to the delivered digest while the new one is in flight",
			before:    []record.Record{dep("web", 1)},
			inFlight:  dep("web", 2),
			during:    []record.Record{dep("web", 1)},
			wantPosts: []record.Record{dep("web", 1), dep("web", 2), dep("web", 1)},
		},
		{
			name:      "redeployed while its decommission is in flight",
			before:    []record.Record{dep("web", 1)},
			inFlight:  dec("web", 1),
			during:    []record.Record{dep("web", 1)},
			wantPosts: []record.Record{dep("web", 1), dec("web", 1), dep("web", 1)},
		},
		{
			name:      "desired again what is in flight",
			inFlight:  dep("web", 1),
			during:    []record.Record{dep("web", 1)},
			wantPosts: []record.Record{dep("web", 1)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, Config{Workers: 3, BaseDelay: fastBase, MaxDelay: fastMax}, nil)
			release := h.sink.hold(forRecord(tt.inFlight))
			h.start()
			h.desire(tt.before...)
			h.waitIdle()
			h.desire(tt.inFlight)
			eventually(t, "the post is in flight", func() bool { return h.sink.held() == 1 })
			h.desire(tt.during...)
			release()
			h.waitIdle()

			if diff := cmp.Diff(tt.wantPosts, h.sink.posted(nil), cmp.Comparer(equal)); diff != "" {
				t.Errorf("posts (-want +got):\n%s", diff)
			}
			last := tt.wantPosts[len(tt.wantPosts)-1]
			if got := h.sink.state()[keyOf("web")]; !equal(got, last) {
				t.Errorf("sink holds %+v, want %+v", got, last)
			}
			if got, _ := h.d.Delivered(keyOf("web")); !remembers(h.d, keyOf("web"), last) {
				t.Errorf("Delivered() = %+v, want %+v", got, last)
			}
		})
	}
}

// TestDesireWhileWaitingToPost desires the delivered record again while the newer one, already taken by a
// worker, waits for a Retry-After pause: the newer one will still be posted, so the delivered one must follow.
func TestDesireWhileWaitingToPost(t *testing.T) {
	clock := newFakeClock()
	h := newHarness(t, Config{Workers: 2, BaseDelay: fastBase, MaxDelay: fastMax}, clock)
	h.sink.fail(forKey("api"), &sink.RetryAfterError{StatusCode: 403, At: clock.Now().Add(time.Minute), Message: "secondary rate limit"})
	h.start()
	h.desire(dep("web", 1))
	h.waitIdle()
	h.desire(dep("api", 1))
	eventually(t, "api waits for the pause", func() bool { return clock.Sleepers() == 1 })
	h.desire(dep("web", 2))
	eventually(t, "web waits for the pause", func() bool { return clock.Sleepers() == 2 })
	h.desire(dep("web", 1))
	clock.Advance(time.Minute + pauseJitter)
	h.waitIdle()

	want := []record.Record{dep("web", 1), dep("web", 2), dep("web", 1)}
	if diff := cmp.Diff(want, h.sink.posted(forKey("web")), cmp.Comparer(equal)); diff != "" {
		t.Errorf("web posts (-want +got):\n%s", diff)
	}
	if got := h.sink.state()[keyOf("web")]; !equal(got, dep("web", 1)) {
		t.Errorf("sink holds %+v, want the rolled back record", got)
	}
}

// TestRetryUntilSuccess fails a post with retryable errors and checks that it is retried until accepted.
func TestRetryUntilSuccess(t *testing.T) {
	tests := []struct {
		name      string
		err       error
		wantCount map[string]float64
	}{
		{name: "5xx", err: errors.New("status 502: Bad Gateway"), wantCount: map[string]float64{mSoftFail: 3, mOK: 1}},
		{name: "timeout", err: fmt.Errorf("do request: %w", os.ErrDeadlineExceeded), wantCount: map[string]float64{mSoftFail: 3, mOK: 1}},
		{name: "408", err: errors.New("status 408: Request Timeout"), wantCount: map[string]float64{mSoftFail: 3, mOK: 1}},
		{
			name:      "rate limit without a usable Retry-After",
			err:       &sink.RetryAfterError{StatusCode: 429, At: time.Unix(0, 0), Message: "slow down"},
			wantCount: map[string]float64{mSoftFail: 3, mRateLimited: 3, mOK: 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, Config{Workers: 2, BaseDelay: fastBase, MaxDelay: fastMax}, nil)
			h.sink.fail(forKey("web"), tt.err, tt.err, tt.err)
			h.start()
			h.desire(dep("web", 1))
			h.waitIdle()

			calls := h.sink.callList()
			if len(calls) != 4 {
				t.Fatalf("%d posts, want 3 failed and 1 accepted", len(calls))
			}
			for i, c := range calls[:3] {
				if !errors.Is(c.Err, tt.err) {
					t.Errorf("post %d: error %v, want %v", i+1, c.Err, tt.err)
				}
			}
			if got, ok := h.d.Delivered(keyOf("web")); !ok || !equal(got, dep("web", 1)) {
				t.Errorf("Delivered() = %+v, %t, want the record", got, ok)
			}
			if n := h.d.queue.NumRequeues(keyOf("web")); n != 0 {
				t.Errorf("NumRequeues() = %d after success, want 0 (backoff reset)", n)
			}
			h.wantCounters(tt.wantCount)
		})
	}
}

// TestDesireKeepsBackoff desires a newer record for a key that waits in backoff: it must wait for the backoff
// like the failed one, not be posted at once.
func TestDesireKeepsBackoff(t *testing.T) {
	h := newHarness(t, Config{Workers: 1, BaseDelay: time.Hour, MaxDelay: time.Hour, DrainTimeout: time.Millisecond}, nil)
	h.sink.fail(forKey("web"), errors.New("status 503: Service Unavailable"))
	release := h.sink.hold(forKey("api"))
	defer release()
	h.start()
	h.desire(dep("web", 1))
	eventually(t, "the failed post is in backoff", func() bool { return h.d.queue.NumRequeues(keyOf("web")) == 1 })
	h.desire(dep("web", 2))
	// The only worker is now kept busy by api: were web queued again, it would wait in the queue.
	h.desire(dep("api", 1))
	eventually(t, "the api post is in flight", func() bool { return h.sink.held() == 1 })
	if n := h.d.queue.Len(); n != 0 {
		t.Errorf("queue length = %d while web backs off, want 0", n)
	}
	if got := h.sink.posted(forKey("web")); len(got) != 1 {
		t.Errorf("web posted %d times, want 1", len(got))
	}
	h.d.mu.Lock()
	got := h.d.pending[keyOf("web")]
	h.d.mu.Unlock()
	if len(got) != 1 || !equal(got[0].rec, dep("web", 2)) {
		t.Errorf("web pending %+v, want the newer record only", got)
	}
}

// TestRetryAfterPausesAllKeys rate-limits one post and checks that no key is posted before the pause ends.
func TestRetryAfterPausesAllKeys(t *testing.T) {
	clock := newFakeClock()
	h := newHarness(t, Config{Workers: 3, BaseDelay: fastBase, MaxDelay: fastMax}, clock)
	until := clock.Now().Add(time.Minute)
	h.sink.fail(forKey("web"), &sink.RetryAfterError{StatusCode: 429, At: until, Message: "secondary rate limit"})
	h.start()
	h.desire(dep("web", 1))
	eventually(t, "web is waiting for the pause", func() bool { return clock.Sleepers() == 1 })
	h.desire(dep("api", 1), dep("db", 1), dep("cache", 1))
	eventually(t, "all workers wait for the pause", func() bool { return clock.Sleepers() == 3 })
	if n := h.sink.numCalls(); n != 1 {
		t.Fatalf("%d posts during the pause, want only the rate-limited one", n)
	}

	clock.Advance(time.Minute + pauseJitter)
	h.waitIdle()
	calls := h.sink.callList()
	if len(calls) != 5 {
		t.Fatalf("%d posts, want 1 rate-limited and 4 accepted", len(calls))
	}
	for _, c := range calls[1:] {
		if c.At.Before(until) {
			t.Errorf("%s posted at %s, before the end of the pause at %s", c.Rec.DeploymentName, c.At, until)
		}
	}
	h.wantCounters(map[string]float64{mRateLimited: 1, mSoftFail: 1, mOK: 4})
}

// TestUnknownArtifactCache answers 404 for an artifact without attestation and checks that other keys with
// the same artifact are not posted until the negative cache entry expires, and that every record that got it
// is posted again when it does (by itself: nothing desires it again), until the artifact is attested.
func TestUnknownArtifactCache(t *testing.T) {
	clock := newFakeClock()
	const ttl = time.Hour
	rep := &fakeReporter{}
	h := newHarness(t, Config{Workers: 1, UnknownArtifactTTL: ttl, BaseDelay: fastBase, MaxDelay: fastMax, Reporter: rep}, clock)
	unknown := digest(404)
	h.sink.setUnattested(unknown, true)
	withUnknown := func(dn string) record.Record { return withDigest(dep(dn, 404), unknown) }
	postsOfUnknown := func() int {
		return len(h.sink.posted(func(r record.Record) bool { return r.Digest == unknown }))
	}
	h.start()

	steps := []struct {
		name        string
		advance     time.Duration
		attested    bool
		desire      []record.Record
		wantPosts   int // of the unknown artifact, so far
		wantParked  int // records waiting for the entry to expire
		wantCounts  map[string]float64
		wantDeliver []string
	}{
		{name: "first key: 404", desire: []record.Record{withUnknown("a")}, wantPosts: 1, wantParked: 1,
			wantCounts: map[string]float64{mNoAttestation: 1, mClientError: 1, mHardFail: 1}},
		{name: "second key: cached", desire: []record.Record{withUnknown("b")}, wantPosts: 1, wantParked: 2,
			wantCounts: map[string]float64{mNoAttestation: 1, mClientError: 1, mHardFail: 1, mCacheHit: 1}},
		{name: "other artifact: posted", desire: []record.Record{dep("c", 1)}, wantPosts: 1, wantParked: 2, wantDeliver: []string{"c"},
			wantCounts: map[string]float64{mNoAttestation: 1, mClientError: 1, mHardFail: 1, mCacheHit: 1, mOK: 1}},
		{name: "the same record desired again: still waiting, no call", desire: []record.Record{withUnknown("a")}, wantPosts: 1, wantParked: 2,
			wantDeliver: []string{"c"}, wantCounts: map[string]float64{mNoAttestation: 1, mClientError: 1, mHardFail: 1, mCacheHit: 1, mOK: 1}},
		{name: "just before expiry: cached", advance: ttl - time.Second, desire: []record.Record{withUnknown("d")}, wantPosts: 1, wantParked: 3,
			wantDeliver: []string{"c"}, wantCounts: map[string]float64{mNoAttestation: 1, mClientError: 1, mHardFail: 1, mCacheHit: 2, mOK: 1}},
		{name: "expired: tried again by itself, still 404, the others cached again", advance: time.Second, wantPosts: 2, wantParked: 3,
			wantDeliver: []string{"c"}, wantCounts: map[string]float64{mNoAttestation: 2, mClientError: 2, mHardFail: 2, mCacheHit: 4, mOK: 1}},
		{name: "attested since, expired again: all accepted", advance: ttl, attested: true, wantPosts: 5, wantDeliver: []string{"a", "b", "c", "d"},
			wantCounts: map[string]float64{mNoAttestation: 2, mClientError: 2, mHardFail: 2, mCacheHit: 4, mOK: 4}},
	}
	parked := func() int { h.d.mu.Lock(); defer h.d.mu.Unlock(); return len(h.d.parked) }
	// One harness goes through the steps in order, so they are not subtests.
	for _, st := range steps {
		if st.attested {
			h.sink.setUnattested(unknown, false)
		}
		clock.Advance(st.advance)
		h.desire(st.desire...)
		// Each parked record sleeps on the fake clock until its entry expires.
		eventually(t, st.name, func() bool {
			return h.d.Idle() && postsOfUnknown() == st.wantPosts && parked() == st.wantParked && clock.Sleepers() == st.wantParked &&
				h.metricValues(mCacheHit)[mCacheHit] == st.wantCounts[mCacheHit] && h.metricValues(mOK)[mOK] == st.wantCounts[mOK]
		})
		var delivered []string
		for _, dn := range []string{"a", "b", "c", "d"} {
			if _, ok := h.d.Delivered(keyOf(dn)); ok {
				delivered = append(delivered, dn)
			}
		}
		if diff := cmp.Diff(st.wantDeliver, delivered); diff != "" {
			t.Errorf("%s: delivered (-want +got):\n%s", st.name, diff)
		}
		h.wantCounters(st.wantCounts)
	}
	// The 404 is reported with when it is tried again, not as given up.
	for _, r := range rep.all()["a"][:1] {
		if r.Delivered || !strings.Contains(r.Err, "no attestation") || !r.Next.Equal(t0.Add(ttl)) {
			t.Errorf("a: first report %+v, want the 404 with the next attempt at %s", r, t0.Add(ttl))
		}
	}
}

// TestValidationRejectionDropped checks that a record the sink rejects as invalid (a 422: the body fails
// validation) is dropped, counted, and does not block its key. A 401 or a permission 403 is no rejection of the
// record: the credentials are refused and the record stays pending (TestCredentialsRefusedKeepsPending).
func TestValidationRejectionDropped(t *testing.T) {
	tests := []struct {
		name    string
		desired record.Record
		fault   error // scripted; nil: the fake's validation rejects the record
	}{
		{name: "invalid digest rejected by validation", desired: withDigest(dep("web", 1), "sha256:abc")},
		{name: "missing name", desired: func() record.Record { r := dep("web", 1); r.Name = ""; return r }()},
		{name: "422 scripted", desired: dep("web", 1), fault: &sink.PermanentError{StatusCode: 422, Message: "Validation Failed"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, Config{Workers: 2, BaseDelay: fastBase, MaxDelay: fastMax}, nil)
			if tt.fault != nil {
				h.sink.fail(forKey("web"), tt.fault)
			}
			h.start()
			h.desire(tt.desired)
			h.waitIdle()
			calls := h.sink.callList()
			var pe *sink.PermanentError
			if len(calls) != 1 || !errors.As(calls[0].Err, &pe) {
				t.Fatalf("posts %+v, want one, rejected", calls)
			}
			if _, ok := h.d.Delivered(keyOf("web")); ok {
				t.Errorf("a rejected record counts as delivered")
			}
			h.wantCounters(map[string]float64{mClientError: 1, mHardFail: 1})

			h.desire(dep("web", 2))
			h.waitIdle()
			if got, _ := h.d.Delivered(keyOf("web")); !equal(got, dep("web", 2)) {
				t.Errorf("Delivered() = %+v after a valid record, want it", got)
			}
		})
	}
}

// TestKeyExclusive holds a post back and checks that its key is not posted again meanwhile while other keys
// are.
func TestKeyExclusive(t *testing.T) {
	h := newHarness(t, Config{Workers: 4, BaseDelay: fastBase, MaxDelay: fastMax}, nil)
	release := h.sink.hold(forRecord(dep("web", 1)))
	h.start()
	h.desire(dep("web", 1))
	eventually(t, "web is in flight", func() bool { return h.sink.held() == 1 })
	h.desire(dep("web", 2), dep("web", 3), dep("api", 1), dep("db", 1), dep("cache", 1))
	eventually(t, "the other keys are delivered", func() bool { return len(h.sink.state()) == 3 })
	if got := h.sink.posted(forKey("web")); len(got) != 1 {
		t.Errorf("web posted %d times while its post is in flight, want 1", len(got))
	}
	release()
	h.waitIdle()
	if diff := cmp.Diff([]record.Record{dep("web", 1), dep("web", 3)}, h.sink.posted(forKey("web")), cmp.Comparer(equal)); diff != "" {
		t.Errorf("web posts (-want +got):\n%s", diff)
	}
}

// TestManyWorkersManyKeys desires versions of many keys from several goroutines while workers post them to a
// flaky sink: every key must end at its last desired record, with no key posted twice at once.
func TestManyWorkersManyKeys(t *testing.T) {
	const (
		workers    = 8
		goroutines = 4
		keys       = 64
		versionsN  = 10
	)
	h := newHarness(t, Config{Workers: workers, BaseDelay: fastBase, MaxDelay: fastMax}, nil)
	h.sink.onPost = func(n int, _ record.Record) error {
		if n%7 == 0 {
			return errors.New("status 503: Service Unavailable")
		}
		return nil
	}
	h.start()

	want := map[record.Key]record.Record{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := g; i < keys; i += goroutines {
				dn := fmt.Sprintf("app-%02d", i)
				var last record.Record
				for v := 1; v <= versionsN; v++ {
					last = dep(dn, v)
					h.d.Desire(last, time.Now())
				}
				if i%2 == 0 {
					last = dec(dn, versionsN)
					h.d.Desire(last, time.Now())
				}
				mu.Lock()
				want[last.Key()] = last
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	h.waitIdle()

	if diff := cmp.Diff(want, h.sink.state()); diff != "" {
		t.Errorf("sink state (-want +got):\n%s", diff)
	}
	for k, r := range want {
		if got, _ := h.d.Delivered(k); !remembers(h.d, k, r) {
			t.Errorf("Delivered(%s) = %+v, want %+v", k.DeploymentName, got, r)
		}
	}
	h.sink.mu.Lock()
	maxFlight, calls := h.sink.maxFlight, len(h.sink.calls)
	h.sink.mu.Unlock()
	if maxFlight > workers {
		t.Errorf("%d posts at once, more than %d workers", maxFlight, workers)
	}
	t.Logf("%d posts for %d desires of %d keys, at most %d at once", calls, keys*versionsN+keys/2, keys, maxFlight)
}

// TestDrain cancels Start's context with records still queued and checks what is delivered.
func TestDrain(t *testing.T) {
	t.Run("queued, retried and follow-up records delivered", func(t *testing.T) {
		h := newHarness(t, Config{Workers: 1, BaseDelay: fastBase, MaxDelay: fastMax}, nil)
		release := h.sink.hold(forKey("first"))
		h.sink.fail(forKey("flaky"), errors.New("status 500: Internal Server Error"))
		h.start()
		h.desire(dep("first", 1))
		eventually(t, "the first post is in flight", func() bool { return h.sink.held() == 1 })
		h.desire(dep("job", 1), dec("job", 1), dep("flaky", 1), dep("web", 1))
		h.cancel()
		release()
		h.stop()

		if !h.d.Idle() {
			t.Errorf("records left undelivered: %+v", h.d.pending)
		}
		want := map[record.Key]record.Record{
			keyOf("first"): dep("first", 1),
			keyOf("job"):   dec("job", 1),
			keyOf("flaky"): dep("flaky", 1),
			keyOf("web"):   dep("web", 1),
		}
		if diff := cmp.Diff(want, h.sink.state()); diff != "" {
			t.Errorf("sink state (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]record.Record{dep("job", 1), dec("job", 1)}, h.sink.posted(forKey("job")), cmp.Comparer(equal)); diff != "" {
			t.Errorf("job posts (-want +got):\n%s", diff)
		}
	})

	t.Run("drain timeout abandons the rest", func(t *testing.T) {
		clock := newFakeClock()
		h := newHarness(t, Config{Workers: 1, DrainTimeout: time.Minute, BaseDelay: fastBase, MaxDelay: fastMax}, clock)
		h.sink.hold(func(record.Record) bool { return true }) // the sink hangs until the post's context ends
		h.start()
		h.desire(dep("web", 1), dep("api", 1))
		eventually(t, "a post is in flight", func() bool { return h.sink.held() == 1 })
		h.cancel()
		eventually(t, "the drain timer runs", func() bool { return clock.Sleepers() == 1 })
		if h.d.Idle() {
			t.Fatalf("idle before the drain timeout")
		}
		clock.Advance(time.Minute)
		h.stop()

		if h.d.Idle() {
			t.Errorf("Idle() = true, want the undelivered records still pending")
		}
		calls := h.sink.callList()
		if len(calls) != 1 || !errors.Is(calls[0].Err, context.Canceled) {
			t.Errorf("posts %+v, want one, cancelled at the drain deadline", calls)
		}
		// Desire after Start returned neither blocks nor posts.
		h.desire(dep("late", 1))
		if n := h.sink.numCalls(); n != 1 {
			t.Errorf("%d posts after Start returned, want none", n-1)
		}
	})
}

// TestPacing checks the spacing of posts under RequestsPerMinute and RequestsPerHour, on a fake clock.
func TestPacing(t *testing.T) {
	tests := []struct {
		name      string
		perMinute int
		perHour   int
		wantAt    []time.Duration // post times from the start
	}{
		// A burst of limit/6 at once, then (limit-burst)/period: never more than limit in any window.
		{name: "per minute", perMinute: 60, wantAt: []time.Duration{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1200 * time.Millisecond, 2400 * time.Millisecond}},
		{name: "per minute, low", perMinute: 2, wantAt: []time.Duration{0, time.Minute, 2 * time.Minute}},
		{name: "per hour", perHour: 12, wantAt: []time.Duration{0, 0, 6 * time.Minute, 12 * time.Minute}},
		{name: "the stricter wins", perMinute: 60, perHour: 12, wantAt: []time.Duration{0, 0, 6 * time.Minute}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := newFakeClock()
			start := clock.Now()
			h := newHarness(t, Config{Workers: 1, RequestsPerMinute: tt.perMinute, RequestsPerHour: tt.perHour}, clock)
			for i := range tt.wantAt {
				h.desire(dep(fmt.Sprintf("app-%d", i), 1))
			}
			h.start()
			// One worker: it is either posting, asleep until its next token, or done.
			eventually(t, "every record is delivered", func() bool {
				if clock.Sleepers() > 0 {
					clock.AdvanceToNext()
				}
				return h.d.Idle()
			})
			var got []time.Duration
			for _, c := range h.sink.callList() {
				got = append(got, c.At.Sub(start).Round(time.Millisecond)) // rate computes in float64
			}
			if diff := cmp.Diff(tt.wantAt, got); diff != "" {
				t.Errorf("post times (-want +got):\n%s", diff)
			}
		})
	}
}

// TestMetrics checks the gauges and histograms around one delivery.
func TestMetrics(t *testing.T) {
	clock := newFakeClock()
	h := newHarness(t, Config{Workers: 1}, clock)
	h.d.Desire(dep("job", 1), clock.Now().Add(-3*time.Second))
	h.d.Desire(dec("job", 1), clock.Now())
	if got := h.metricValues(mPending)[mPending]; got != 2 {
		t.Errorf("%s = %v before delivery, want 2", mPending, got)
	}
	h.start()
	h.waitIdle()
	want := map[string]float64{mPending: 0, mPostTimer: 2, mLatency: 2, mOK: 2}
	if diff := cmp.Diff(want, h.metricValues(mPending, mPostTimer, mLatency, mOK)); diff != "" {
		t.Errorf("metrics (-want +got):\n%s", diff)
	}
}

// BenchmarkDesire measures Desire, the call on the admission webhook's and informer's paths.
func BenchmarkDesire(b *testing.B) {
	const keys = 1024
	names := make([]string, keys)
	for i := range names {
		names[i] = fmt.Sprintf("app-%04d", i)
	}
	benchmarks := []struct {
		name string
		next func(i int) record.Record
	}{
		{name: "one key, newer digests", next: func(i int) record.Record { return dep("web", i) }},
		{name: "1024 keys, newer digests", next: func(i int) record.Record { return dep(names[i%keys], i/keys) }},
		{name: "deployed then decommissioned", next: func(i int) record.Record {
			return rec(names[(i/2)%keys], i/(2*keys), []record.Status{record.StatusDeployed, record.StatusDecommissioned}[i%2])
		}},
		{name: "unchanged", next: func(int) record.Record { return dep("web", 1) }},
	}
	for _, bm := range benchmarks {
		b.Run(bm.name, func(b *testing.B) {
			h := newHarness(b, Config{}, nil)
			recs := make([]record.Record, 4*keys)
			for i := range recs {
				recs[i] = bm.next(i)
			}
			now := time.Now()
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				h.d.Desire(recs[i%len(recs)], now)
				i++
			}
		})
	}
}

// TestPaceNeverExceedsLimit drives the limiters as greedily as possible and checks every window of one
// period: never more than the limit (GitHub's secondary limits count per minute and per hour).
func TestPaceNeverExceedsLimit(t *testing.T) {
	for _, tc := range []struct {
		limit  int
		period time.Duration
	}{{80, time.Minute}, {500, time.Hour}, {1, time.Minute}, {7, time.Minute}, {5000, time.Hour}} {
		t.Run(fmt.Sprintf("%d per %s", tc.limit, tc.period), func(t *testing.T) {
			l := pace(tc.limit, tc.period)
			start := time.Unix(0, 0)
			step := tc.period / 600
			var at []time.Time
			for now := start; now.Before(start.Add(3 * tc.period)); now = now.Add(step) {
				for l.AllowN(now, 1) {
					at = append(at, now)
				}
			}
			for i := range at {
				j := i
				for j < len(at) && at[j].Sub(at[i]) < tc.period {
					j++
				}
				if n := j - i; n > tc.limit {
					t.Fatalf("%d requests within %s from %s, limit %d", n, tc.period, at[i].Sub(start), tc.limit)
				}
			}
			if len(at) < 2*tc.limit {
				t.Errorf("only %d requests in 3 periods: the pace is far below the limit %d", len(at), tc.limit)
			}
		})
	}
}
