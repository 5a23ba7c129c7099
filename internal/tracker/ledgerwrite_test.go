package tracker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/deployment-tracker/deployment-tracker/internal/ledger"
	"github.com/deployment-tracker/deployment-tracker/internal/metrics"
	"github.com/deployment-tracker/deployment-tracker/internal/owner"
	"github.com/deployment-tracker/deployment-tracker/internal/record"
)

// gatedLedger is a ledger whose writes of a deployment name can be held back until released, and can fail.
type gatedLedger struct {
	mu       sync.Mutex
	gates    map[string]chan struct{} // deployment name → closed to let its writes through
	fails    map[string][]error       // deployment name → the errors of its next writes
	written  []record.Record
	inFlight int
	maxIn    int // most writes in flight at once
}

func newGatedLedger() *gatedLedger {
	return &gatedLedger{gates: map[string]chan struct{}{}, fails: map[string][]error{}}
}

func (g *gatedLedger) hold(name string) (release func()) {
	c := make(chan struct{})
	g.mu.Lock()
	g.gates[name] = c
	g.mu.Unlock()
	return func() { close(c) }
}

func (g *gatedLedger) Put(ctx context.Context, r record.Record, _ ledger.Meta) error {
	g.mu.Lock()
	gate := g.gates[r.DeploymentName]
	g.inFlight++
	g.maxIn = max(g.maxIn, g.inFlight)
	g.mu.Unlock()
	defer func() {
		g.mu.Lock()
		g.inFlight--
		g.mu.Unlock()
	}()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if errs := g.fails[r.DeploymentName]; len(errs) > 0 {
		g.fails[r.DeploymentName] = errs[1:]
		return errs[0]
	}
	g.written = append(g.written, r)
	return nil
}

func (g *gatedLedger) List(context.Context) ([]ledger.Entry, error) { return nil, nil }

func (g *gatedLedger) writes() []record.Record {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]record.Record(nil), g.written...)
}

// writesEnv runs ledgerWrites over a gatedLedger until the test ends.
type writesEnv struct {
	ledger  *gatedLedger
	rec     *recorder
	metrics *metrics.Metrics
	w       *ledgerWrites
	mu      sync.Mutex
	refused []decision
}

func newWritesEnv(t *testing.T, workers int) *writesEnv {
	t.Helper()
	e := &writesEnv{ledger: newGatedLedger(), rec: &recorder{t: t}, metrics: metrics.New(prometheus.NewRegistry())}
	e.w = newLedgerWrites(e.ledger, e.rec, e.metrics, logr.Discard(), func() time.Time { return now }, func(d decision, _ error) {
		e.mu.Lock()
		e.refused = append(e.refused, d)
		e.mu.Unlock()
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); e.w.run(ctx, workers) }()
	t.Cleanup(func() { cancel(); <-done })
	return e
}

func (e *writesEnv) settle(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := e.w.wait(ctx); err != nil {
		t.Fatalf("the writes did not settle: %v", err)
	}
}

func writeOf(name, version string) decision {
	r := webApp1
	r.DeploymentName, r.Version = name, version
	return decision{rec: r, workload: owner.Workload{Group: "apps", Kind: "Deployment", Namespace: ns, Name: name}, container: "app",
		decided: now}
}

func versions(rs []record.Record, name string) []string {
	var out []string
	for _, r := range rs {
		if r.DeploymentName == name {
			out = append(out, r.Version)
		}
	}
	return out
}

// TestLedgerWritesCoalescePerKey: while a key's write is in flight, its later decisions wait, and only the
// newest of them is written and desired; other keys are written meanwhile.
func TestLedgerWritesCoalescePerKey(t *testing.T) {
	e := newWritesEnv(t, 4)
	release := e.ledger.hold("shop/web/app")
	e.w.add(writeOf("shop/web/app", "1"))
	waitFor(t, "the first write in flight", func() bool {
		e.ledger.mu.Lock()
		defer e.ledger.mu.Unlock()
		return e.ledger.inFlight == 1
	})
	for _, v := range []string{"2", "3", "4"} {
		e.w.add(writeOf("shop/web/app", v))
	}
	e.w.add(writeOf("shop/api/app", "1"))
	waitFor(t, "the other key written while the first is held", func() bool {
		return len(versions(e.ledger.writes(), "shop/api/app")) == 1
	})
	if got := testutil.ToFloat64(e.metrics.LedgerWritesPending); got != 2 {
		t.Errorf("pending writes = %v, want 2 (one in flight, one waiting)", got)
	}
	release()
	e.settle(t)
	if got := versions(e.ledger.writes(), "shop/web/app"); fmt.Sprint(got) != "[1 4]" {
		t.Errorf("writes of shop/web/app = %v, want [1 4]: the first, then only the newest", got)
	}
	if got := versions(e.rec.take(), "shop/web/app"); fmt.Sprint(got) != "[1 4]" {
		t.Errorf("desired shop/web/app = %v, want [1 4], each after its write", got)
	}
	if got := testutil.ToFloat64(e.metrics.LedgerWritesPending); got != 0 {
		t.Errorf("pending writes = %v after settling, want 0", got)
	}
}

// TestLedgerWritesConcurrent: writes of different keys run at once, up to the workers; a burst is written whole.
func TestLedgerWritesConcurrent(t *testing.T) {
	e := newWritesEnv(t, 8)
	var releases []func()
	for i := range 20 {
		releases = append(releases, e.ledger.hold(fmt.Sprintf("shop/p%02d/app", i)))
		e.w.add(writeOf(fmt.Sprintf("shop/p%02d/app", i), "1"))
	}
	waitFor(t, "8 writes in flight", func() bool {
		e.ledger.mu.Lock()
		defer e.ledger.mu.Unlock()
		return e.ledger.inFlight == 8
	})
	for _, r := range releases {
		r()
	}
	e.settle(t)
	if got := len(e.ledger.writes()); got != 20 {
		t.Errorf("%d writes, want 20", got)
	}
	if e.ledger.maxIn > 8 {
		t.Errorf("%d writes in flight at once, want at most the 8 workers", e.ledger.maxIn)
	}
	if got := len(e.rec.take()); got != 20 {
		t.Errorf("%d desired, want 20", got)
	}
}

// TestLedgerWritesOutcomes: a failed write is kept and written again before it is desired; a write the ledger
// refuses as older is not desired and is reported, unless it asks to be desired all the same; one the API server
// rejects as invalid is dropped; nothing is desired before it is written.
func TestLedgerWritesOutcomes(t *testing.T) {
	invalid := apierrors.NewInvalid(schema.GroupKind{Group: "records.deployment-tracker.io", Kind: "DeploymentRecord"}, "dr-1", nil)
	older := fmt.Errorf("shop/web/app: %w", ledger.ErrOlder)
	tests := []struct {
		name        string
		fails       []error
		desireOlder bool
		wantWrites  int
		wantDesired int
		wantRefused int
		wantFailed  float64
	}{
		{name: "written", wantWrites: 1, wantDesired: 1},
		{name: "fails twice, then written", fails: []error{errors.New("etcdserver: request timed out"), errors.New("connection refused")},
			wantWrites: 1, wantDesired: 1, wantFailed: 2},
		{name: "older: reported, not desired", fails: []error{older}, wantRefused: 1},
		{name: "older, desired all the same", fails: []error{older}, desireOlder: true, wantDesired: 1},
		{name: "invalid: dropped", fails: []error{invalid}, wantFailed: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newWritesEnv(t, 2)
			e.ledger.fails["shop/web/app"] = tt.fails
			d := writeOf("shop/web/app", "1")
			d.desireOlder = tt.desireOlder
			e.w.add(d)
			e.settle(t)
			if got := len(e.ledger.writes()); got != tt.wantWrites {
				t.Errorf("%d writes, want %d", got, tt.wantWrites)
			}
			if got := len(e.rec.take()); got != tt.wantDesired {
				t.Errorf("%d desired, want %d", got, tt.wantDesired)
			}
			if len(e.refused) != tt.wantRefused {
				t.Errorf("%d reported refused, want %d", len(e.refused), tt.wantRefused)
			}
			if got := testutil.ToFloat64(e.metrics.LedgerWriteFailures); got != tt.wantFailed {
				t.Errorf("failures counted %v, want %v", got, tt.wantFailed)
			}
		})
	}
}

// waitFor polls cond for up to 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// ephemeralRecorder records which way records are desired.
type ephemeralRecorder struct {
	mu               sync.Mutex
	normal, ephemera []string
}

func (r *ephemeralRecorder) Desire(rec record.Record, _ time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.normal = append(r.normal, rec.DeploymentName)
}

func (r *ephemeralRecorder) DesireEphemeral(rec record.Record, _ time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ephemera = append(r.ephemera, rec.DeploymentName)
}

// TestEphemeralWorkloadsDesiredBehind: the records of bare pods and of Jobs no CronJob owns are handed on as
// ephemeral, so that the dispatcher queues them behind those of other workloads.
func TestEphemeralWorkloadsDesiredBehind(t *testing.T) {
	rec := &ephemeralRecorder{}
	for _, w := range []owner.Workload{
		{Kind: "Pod", Namespace: ns, Name: "runner-x1"},
		{Group: "batch", Kind: "Job", Namespace: ns, Name: "adhoc-1"},
		{Group: "batch", Kind: "CronJob", Namespace: ns, Name: "nightly"},
		{Group: "apps", Kind: "Deployment", Namespace: ns, Name: "web"},
		{Group: "example.com", Kind: "Pod", Namespace: ns, Name: "custom"},
	} {
		d := writeOf(ns+"/"+w.Name+"/app", "1")
		d.workload = w
		desireDecision(rec, d)
	}
	if got, want := fmt.Sprint(rec.ephemera), "[shop/runner-x1/app shop/adhoc-1/app]"; got != want {
		t.Errorf("ephemeral %s, want %s", got, want)
	}
	if got, want := fmt.Sprint(rec.normal), "[shop/nightly/app shop/web/app shop/custom/app]"; got != want {
		t.Errorf("normal %s, want %s", got, want)
	}
}
