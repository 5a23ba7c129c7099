package tracker

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	v1alpha1 "github.com/deployment-tracker/deployment-tracker/internal/apis/records/v1alpha1"
	"github.com/deployment-tracker/deployment-tracker/internal/ledger"
	"github.com/deployment-tracker/deployment-tracker/internal/record"
)

// The tracker resumes from the ledger the way the manager starts it: Start runs in its own goroutine, the
// controller's Reconcile calls wait for Ready. The ledger is an in-memory fake that decides like the real one
// (internal/ledger): a deployed digest of an older pod does not replace a newer one, a decommission and a
// decision without a pod keep the pod start, and the sink status (Have, Synced) changes only by delivery.

// fakeLedger is the ledger in memory.
type fakeLedger struct {
	mu       sync.Mutex
	entries  map[record.Key]ledger.Entry
	listErrs []error // the next List calls fail with these
	putErrs  []error // the next Put calls fail with these
	lists    int
	puts     []ledger.Entry // every accepted Put: Want and Meta as given
}

var _ Ledger = (*fakeLedger)(nil)

func newFakeLedger(entries ...ledger.Entry) *fakeLedger {
	f := &fakeLedger{entries: map[record.Key]ledger.Entry{}}
	for _, e := range entries {
		f.entries[e.Want.Key()] = e
	}
	return f
}

// Put decides as ledger.Ledger.Put does; like the API server it refuses records the CRD's schema rejects.
func (f *fakeLedger) Put(_ context.Context, r record.Record, m ledger.Meta) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.putErrs) > 0 {
		err := f.putErrs[0]
		f.putErrs = f.putErrs[1:]
		return err
	}
	if !record.ValidDigest(r.Digest) || (r.Status != record.StatusDeployed && r.Status != record.StatusDecommissioned) {
		return fmt.Errorf("ledger record %s is invalid: digest %q, status %q", r.DeploymentName, r.Digest, r.Status)
	}
	if m.Workload.Kind == "" || m.Workload.Name == "" || m.Container == "" {
		return fmt.Errorf("ledger record %s: workload %+v, container %q: required", r.DeploymentName, m.Workload, m.Container)
	}
	k := r.Key()
	cur, ok := f.entries[k]
	if ok && r.Status == record.StatusDeployed && cur.Want.Status == record.StatusDeployed && cur.Want.Digest != r.Digest &&
		!cur.Meta.PodStarted.IsZero() && !m.PodStarted.IsZero() && m.PodStarted.Before(cur.Meta.PodStarted) {
		return fmt.Errorf("%s: %s started %s: %w", r.DeploymentName, r.Digest, m.PodStarted, ledger.ErrOlder)
	}
	f.puts = append(f.puts, ledger.Entry{Want: r, Meta: m})
	next := ledger.Entry{Want: r, Meta: m}
	if next.Meta.Source == "" {
		next.Meta.Source = v1alpha1.SourceInformer
	}
	if ok {
		next.Have = cur.Have
		next.Synced = cur.Synced && record.Equal(cur.Want, r)
		if cur.Want.Digest == r.Digest {
			next.Meta.Source = cur.Meta.Source
		}
		if m.PodStarted.IsZero() || r.Status == record.StatusDecommissioned {
			next.Meta.PodStarted = cur.Meta.PodStarted
		}
	}
	f.entries[k] = next
	return nil
}

// List returns the entries in the order of their object names, as the API server lists them.
func (f *fakeLedger) List(context.Context) ([]ledger.Entry, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lists++
	if len(f.listErrs) > 0 {
		err := f.listErrs[0]
		f.listErrs = f.listErrs[1:]
		return nil, fmt.Errorf("listing the ledger: %w", err)
	}
	out := make([]ledger.Entry, 0, len(f.entries))
	for _, e := range f.entries {
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b ledger.Entry) int {
		return strings.Compare(ledger.Name(a.Want.Key()), ledger.Name(b.Want.Key()))
	})
	return out, nil
}

func (f *fakeLedger) takePuts() []ledger.Entry {
	f.mu.Lock()
	defer f.mu.Unlock()
	p := f.puts
	f.puts = nil
	return p
}

func (f *fakeLedger) listCalls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.lists
}

// seeder is the dispatcher's Seed, recorded.
type seeder struct {
	mu  sync.Mutex
	got []record.Record
}

func (s *seeder) Seed(r record.Record) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.got = append(s.got, r)
}

func (s *seeder) seeds() []record.Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.got)
}

var webWorkload = v1alpha1.Workload{Group: "apps", Kind: "Deployment", Namespace: ns, Name: "web"}

// containerOf is the container a record of the Deployment web describes: the last part of its deployment name.
func containerOf(r record.Record) string {
	return r.DeploymentName[strings.LastIndex(r.DeploymentName, "/")+1:]
}

// entry is a ledger entry of the Deployment web decided by a pod started at t0+started; the sink holds have.
func entry(want record.Record, started time.Duration, have *record.Record) ledger.Entry {
	return ledger.Entry{
		Want:   want,
		Meta:   ledger.Meta{Workload: webWorkload, Container: containerOf(want), PodStarted: t0.Add(started), Source: v1alpha1.SourceInformer},
		Have:   have,
		Synced: have != nil && record.Equal(*have, want),
	}
}

func syncedEntry(r record.Record, started time.Duration) ledger.Entry { return entry(r, started, &r) }

// putOf is the Put the tracker makes of r for the Deployment web: decided by a pod that started at
// t0+started and was seen by source, or by no pod (started < 0: a decommission).
func putOf(r record.Record, started time.Duration, source string) ledger.Entry {
	m := ledger.Meta{Workload: webWorkload, Container: containerOf(r), Source: source}
	if started >= 0 {
		m.PodStarted = t0.Add(started)
	}
	return ledger.Entry{Want: r, Meta: m}
}

// started runs the tracker's Start in a goroutine with ctx; the returned channel receives its result.
func started(ctx context.Context, tr *Tracker) <-chan error {
	done := make(chan error, 1)
	go func() { done <- tr.Start(ctx) }()
	return done
}

// waitReady waits until the tracker has resumed; Start must not have returned meanwhile.
func waitReady(t *testing.T, tr *Tracker, done <-chan error) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !tr.Ready() {
		select {
		case err := <-done:
			t.Fatalf("Start() returned %v before the tracker was ready", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("the tracker did not become ready")
		}
		time.Sleep(time.Millisecond)
	}
}

// startResumed starts the tracker of e and waits until it has resumed; it is stopped when the test ends, and
// Start must then return nil.
func startResumed(t *testing.T, e *env) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := started(ctx, e.tracker)
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Start() error = %v, want nil after cancellation", err)
		}
	})
	waitReady(t, e.tracker, done)
}

func withLedger(l *fakeLedger, s *seeder) func(*Config) {
	return func(c *Config) {
		c.Ledger, c.Seeder = l, s
		c.WaitForCacheSync = func(context.Context) bool { return true }
	}
}

// sortRecords orders records whose order is not part of the contract (the ledger lists in name order).
var sortRecords = cmpopts.SortSlices(func(a, b record.Record) bool {
	return a.DeploymentName+string(a.Status) < b.DeploymentName+string(b.Status)
})

// sortPuts orders ledger writes, which run concurrently for different keys.
var sortPuts = cmpopts.SortSlices(func(a, b ledger.Entry) bool {
	return a.Want.DeploymentName+string(a.Want.Status) < b.Want.DeploymentName+string(b.Want.Status)
})

func TestResume(t *testing.T) {
	pod1 := webPod(hash1, "aaaaa", 0, v1)
	pod2 := webPod(hash2, "bbbbb", 5*time.Minute, v2)
	webObjects := func(pods ...client.Object) []client.Object {
		return append([]client.Object{webDeployment(nil), webRS(hash1, nil), webRS(hash2, nil)}, pods...)
	}
	synced1 := []ledger.Entry{syncedEntry(webApp1, 0), syncedEntry(webMigrate, 0), syncedEntry(webProxy, 0)}
	errDown := errors.New("connection refused")
	team := map[string]string{"team": "payments"}
	tagged := withMetadata(webApp1, team, nil, "")

	tests := []struct {
		name     string
		objects  []client.Object // the cluster when the tracker starts
		ledger   []ledger.Entry
		listErrs []error
		fail     map[string]int // kind → reads that fail during the resume
		// wantSeeds are what the dispatcher learns the sink holds; want the records desired while resuming,
		// wantPuts the ledger writes.
		wantSeeds []record.Record
		want      []record.Record
		wantPuts  []ledger.Entry
		wantLists int
		// after are reconciles once resumed, as the informer's initial list enqueues them.
		after []step
	}{
		{
			name:      "synced ledger, the same pods running: nothing desired",
			objects:   webObjects(pod1),
			ledger:    synced1,
			wantSeeds: []record.Record{webApp1, webMigrate, webProxy},
			after:     []step{{name: "the informer's initial list", req: podReq(pod1.Name)}},
		},
		{
			name:      "empty ledger: the running pods desired",
			objects:   webObjects(pod1),
			want:      []record.Record{webApp1, webMigrate, webProxy},
			wantPuts:  []ledger.Entry{putOf(webApp1, 0, "informer"), putOf(webMigrate, 0, "informer"), putOf(webProxy, 0, "informer")},
			after:     []step{{name: "the informer's initial list", req: podReq(pod1.Name)}},
			wantSeeds: nil,
		},
		{
			name:      "an entry never delivered: desired once",
			objects:   webObjects(pod1),
			ledger:    []ledger.Entry{entry(webApp1, 0, nil), syncedEntry(webMigrate, 0), syncedEntry(webProxy, 0)},
			wantSeeds: []record.Record{webMigrate, webProxy},
			want:      []record.Record{webApp1},
			after:     []step{{name: "the informer's initial list", req: podReq(pod1.Name)}},
		},
		{
			name:      "an entry whose sink holds an older digest: seeded with it, desired once",
			objects:   webObjects(pod2),
			ledger:    []ledger.Entry{entry(webApp2, 5*time.Minute, &webApp1), syncedEntry(webMigrate, 0), syncedEntry(webProxy, 0)},
			wantSeeds: []record.Record{webApp1, webMigrate, webProxy},
			want:      []record.Record{webApp2},
		},
		{
			// The ledger keeps the digest and status the sink accepted, not the tags: Have equals Want. Seeding it
			// would make the dispatcher drop the Desire as delivered.
			name:      "tags not delivered (Have equals Want, not synced): desired, not seeded",
			objects:   webObjects(),
			ledger:    []ledger.Entry{{Want: tagged, Meta: syncedEntry(tagged, 0).Meta, Have: &tagged}, syncedEntry(webProxy, 0)},
			wantSeeds: []record.Record{webProxy},
			want:      []record.Record{tagged},
		},
		{
			name:      "Deployment and pods deleted while no tracker ran: decommissioned",
			ledger:    synced1,
			wantSeeds: []record.Record{webApp1, webMigrate, webProxy},
			want:      decommissioned(webApp1, webMigrate, webProxy),
			wantPuts: []ledger.Entry{
				putOf(decommissioned(webApp1)[0], -1, "ledger"), putOf(decommissioned(webMigrate)[0], -1, "ledger"),
				putOf(decommissioned(webProxy)[0], -1, "ledger"),
			},
			after: []step{{name: "the Deployment's deletion seen late", req: workloadReq("apps", "Deployment", "web")}},
		},
		{
			name:      "scaled to zero while no tracker ran, the Deployment exists: nothing",
			objects:   webObjects(),
			ledger:    synced1,
			wantSeeds: []record.Record{webApp1, webMigrate, webProxy},
		},
		{
			name:      "rolled out while no tracker ran: the new digest desired once",
			objects:   webObjects(pod2),
			ledger:    synced1,
			wantSeeds: []record.Record{webApp1, webMigrate, webProxy},
			want:      []record.Record{webApp2},
			wantPuts:  []ledger.Entry{putOf(webApp2, 5*time.Minute, "informer")},
			after:     []step{{name: "the informer's initial list", req: podReq(pod2.Name)}},
		},
		{
			name:    "rolled out while no tracker ran, an old pod still running: the newest pod's digest",
			objects: webObjects(pod1, pod2),
			ledger:  synced1,
			// The resume reconciles the pods in the order the cache lists them: the old pod's digest is the
			// ledger's, so nothing but the new digest is desired whatever the order.
			wantSeeds: []record.Record{webApp1, webMigrate, webProxy},
			want:      []record.Record{webApp2},
			wantPuts:  []ledger.Entry{putOf(webApp2, 5*time.Minute, "informer")},
			after: []step{
				{name: "initial list: old pod", req: podReq(pod1.Name)},
				{name: "initial list: new pod", req: podReq(pod2.Name)},
				{name: "old pod deleted", do: []action{remove(pod1)}, req: podReq(pod1.Name)},
			},
		},
		{
			name:      "decommission not delivered: desired again, the deployed record seeded",
			ledger:    []ledger.Entry{entry(decommissioned(webApp1)[0], 0, &webApp1)},
			wantSeeds: []record.Record{webApp1},
			want:      decommissioned(webApp1),
		},
		{
			name:      "decommission delivered: nothing, not adopted",
			objects:   webObjects(),
			ledger:    []ledger.Entry{syncedEntry(decommissioned(webApp1)[0], 0)},
			wantSeeds: decommissioned(webApp1),
			after: []step{
				{name: "a pod of the Deployment runs again", do: []action{create(pod1)}, req: podReq(pod1.Name),
					want: []record.Record{webApp1, webMigrate, webProxy}},
			},
		},
		{
			name:      "ledger unreadable at first: retried",
			objects:   webObjects(pod1),
			ledger:    synced1,
			listErrs:  []error{errDown},
			wantLists: 2,
			wantSeeds: []record.Record{webApp1, webMigrate, webProxy},
		},
		{
			name:      "workload existence unreadable at first: retried, then decommissioned",
			ledger:    synced1,
			fail:      map[string]int{"Deployment": 2},
			wantSeeds: []record.Record{webApp1, webMigrate, webProxy},
			want:      decommissioned(webApp1, webMigrate, webProxy),
			wantPuts: []ledger.Entry{
				putOf(decommissioned(webApp1)[0], -1, "ledger"), putOf(decommissioned(webMigrate)[0], -1, "ledger"),
				putOf(decommissioned(webProxy)[0], -1, "ledger"),
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			led, seeds := newFakeLedger(tt.ledger...), &seeder{}
			led.listErrs = tt.listErrs
			e := newEnv(t, withLedger(led, seeds), tt.objects...)
			for kind, n := range tt.fail {
				if err := failReads(kind, n)(t.Context(), e); err != nil {
					t.Fatal(err)
				}
			}
			startResumed(t, e)

			if diff := cmp.Diff(tt.wantSeeds, seeds.seeds(), sortRecords, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("seeds mismatch (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.want, e.rec.take(), sortRecords, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("records desired while resuming mismatch (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantPuts, led.takePuts(), sortPuts, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("ledger puts mismatch (-want +got):\n%s", diff)
			}
			if want := max(tt.wantLists, 1); led.listCalls() != want {
				t.Errorf("ledger listed %d times, want %d", led.listCalls(), want)
			}
			for i, s := range tt.after {
				t.Run(fmt.Sprintf("%d %s", i+1, s.name), func(t *testing.T) {
					for _, a := range s.do {
						if err := a(t.Context(), e); err != nil {
							t.Fatal(err)
						}
					}
					if _, err := e.tracker.Reconcile(t.Context(), s.req); err != nil {
						t.Fatalf("Reconcile(%+v) error = %v", s.req, err)
					}
					e.settle(t)
					if diff := cmp.Diff(s.want, e.rec.take(), sortRecords, cmpopts.EquateEmpty()); diff != "" {
						t.Errorf("desired records mismatch (-want +got):\n%s", diff)
					}
				})
			}
		})
	}
}

// TestReconcileWaitsForResume: a Reconcile the controller starts before the ledger is read waits, and decides
// with what the ledger holds: a synced ledger costs nothing even for the first requests.
func TestReconcileWaitsForResume(t *testing.T) {
	pod1 := webPod(hash1, "aaaaa", 0, v1)
	led, seeds := newFakeLedger(syncedEntry(webApp1, 0), syncedEntry(webMigrate, 0), syncedEntry(webProxy, 0)), &seeder{}
	release := make(chan struct{})
	e := newEnv(t, func(c *Config) {
		withLedger(led, seeds)(c)
		c.WaitForCacheSync = func(ctx context.Context) bool {
			select {
			case <-release:
				return true
			case <-ctx.Done():
				return false
			}
		}
	}, webDeployment(nil), webRS(hash1, nil), pod1)

	type result struct {
		res reconcile.Result
		err error
	}
	reconciled := make(chan result, 1)
	go func() {
		res, err := e.tracker.Reconcile(t.Context(), podReq(pod1.Name))
		reconciled <- result{res, err}
	}()
	ctx, cancel := context.WithCancel(context.Background())
	done := started(ctx, e.tracker)
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Start() error = %v", err)
		}
	}()

	select {
	case r := <-reconciled:
		t.Fatalf("Reconcile() returned %+v before the caches synced", r)
	case <-time.After(50 * time.Millisecond): // a sanity check: the order is asserted below
	}
	if e.tracker.Ready() {
		t.Fatal("Ready() = true before the caches synced")
	}
	close(release)
	r := <-reconciled
	if r.err != nil || !r.res.IsZero() {
		t.Fatalf("Reconcile() = %+v, %v; want zero, nil", r.res, r.err)
	}
	if !e.tracker.Ready() {
		t.Error("Ready() = false after a Reconcile returned")
	}
	// Had the Reconcile run before the resume, it would have desired the pod's records.
	if got := e.rec.take(); len(got) != 0 {
		t.Errorf("desired %v, want nothing: the ledger is synced", got)
	}
	if got := led.takePuts(); len(got) != 0 {
		t.Errorf("ledger puts %v, want none", got)
	}
}

func TestStart(t *testing.T) {
	errBlocked := errors.New("blocked")
	tests := []struct {
		name      string
		configure func(*Config)
		cancel    bool // the context is cancelled before Start
		wantErr   bool
	}{
		{
			name:      "no ledger: ready at once, runs until cancelled",
			configure: func(*Config) {},
			cancel:    true,
		},
		{
			name: "caches never sync: an error, then ready (Reconcile does not hang)",
			configure: func(c *Config) {
				withLedger(newFakeLedger(), &seeder{})(c)
				c.WaitForCacheSync = func(context.Context) bool { return false }
			},
			wantErr: true,
		},
		{
			name: "cancelled while waiting for the caches: nil",
			configure: func(c *Config) {
				withLedger(newFakeLedger(), &seeder{})(c)
				c.WaitForCacheSync = func(ctx context.Context) bool { <-ctx.Done(); return false }
			},
			cancel: true,
		},
		{
			name: "cancelled, the ledger unreadable: nil",
			configure: func(c *Config) {
				led := newFakeLedger()
				led.listErrs = []error{errBlocked, errBlocked, errBlocked}
				withLedger(led, &seeder{})(c)
			},
			cancel: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, tt.configure)
			ctx, cancel := context.WithCancel(t.Context())
			if tt.cancel {
				cancel()
			} else {
				defer cancel()
			}
			err := e.tracker.Start(ctx)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Start() error = %v, want error %t", err, tt.wantErr)
			}
			if !e.tracker.Ready() {
				t.Error("Ready() = false after Start returned: Reconcile would wait forever")
			}
		})
	}
}

// cancellingReader fails reads of a kind and cancels the tracker's context at the first one: the tracker is
// stopped while it retries.
type cancellingReader struct {
	client.Reader
	kind   string
	cancel context.CancelFunc

	mu    sync.Mutex
	reads int
}

func (r *cancellingReader) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	if obj.GetObjectKind().GroupVersionKind().Kind == r.kind {
		r.mu.Lock()
		r.reads++
		r.mu.Unlock()
		r.cancel()
		return fmt.Errorf("get %s %s: %w", r.kind, key, errUnavailable)
	}
	return r.Reader.Get(ctx, key, obj, opts...)
}

// TestResumeStopsWhenCancelled: a workload whose existence cannot be read is retried, but not past the end of
// the tracker's context (a leader that lost its lease stops at once).
func TestResumeStopsWhenCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	reader := &cancellingReader{kind: "Deployment", cancel: cancel}
	led := newFakeLedger(syncedEntry(webApp1, 0))
	e := newEnv(t, func(c *Config) {
		withLedger(led, &seeder{})(c)
		reader.Reader = c.Reader
		c.Reader = reader
	})
	if err := e.tracker.Start(ctx); err != nil {
		t.Fatalf("Start() error = %v, want nil when cancelled", err)
	}
	if reader.reads != 1 {
		t.Errorf("the workload was read %d times, want 1: no retry after the context ended", reader.reads)
	}
	if got := e.rec.take(); len(got) != 0 {
		t.Errorf("desired %v, want nothing", got)
	}
}

// TestReconcileWithLedger: every decision is written to the ledger before it is desired; a write that fails is
// kept and written again (the request itself succeeds: its decision is taken), and a digest the ledger holds
// from a newer pod is not replaced by an older pod's.
func TestReconcileWithLedger(t *testing.T) {
	pod1 := webPod(hash1, "aaaaa", 0, v1)
	errLedger := errors.New("ledger unavailable")
	webObjects := []client.Object{webDeployment(nil), webRS(hash1, nil), webRS(hash2, nil)}
	failPut := func(l *fakeLedger) action {
		return func(context.Context, *env) error {
			l.mu.Lock()
			defer l.mu.Unlock()
			l.putErrs = append(l.putErrs, errLedger)
			return nil
		}
	}
	type ledgerStep struct {
		step
		wantPuts []ledger.Entry
	}
	tests := []struct {
		name   string
		ledger []ledger.Entry
		steps  func(l *fakeLedger) []ledgerStep
	}{
		{
			name: "write fails: kept and written again; desired once written",
			steps: func(l *fakeLedger) []ledgerStep {
				return []ledgerStep{
					{step: step{name: "pod running, ledger unavailable for a write", do: []action{create(pod1), failPut(l)}, req: podReq(pod1.Name),
						want: []record.Record{webApp1, webMigrate, webProxy}},
						wantPuts: []ledger.Entry{putOf(webApp1, 0, "informer"), putOf(webMigrate, 0, "informer"), putOf(webProxy, 0, "informer")}},
					{step: step{name: "again: nothing", req: podReq(pod1.Name)}},
				}
			},
		},
		{
			name: "decommission write fails: kept and written again",
			steps: func(l *fakeLedger) []ledgerStep {
				return []ledgerStep{
					{step: step{name: "pod running", do: []action{create(pod1)}, req: podReq(pod1.Name), want: []record.Record{webApp1, webMigrate, webProxy}},
						wantPuts: []ledger.Entry{putOf(webApp1, 0, "informer"), putOf(webMigrate, 0, "informer"), putOf(webProxy, 0, "informer")}},
					{step: step{name: "Deployment and pod deleted, ledger unavailable for a write", do: []action{
						remove(webDeployment(nil), webRS(hash1, nil), pod1), failPut(l),
					}, req: podReq(pod1.Name), want: decommissioned(webApp1, webMigrate, webProxy)},
						wantPuts: []ledger.Entry{
							putOf(decommissioned(webApp1)[0], -1, "ledger"), putOf(decommissioned(webMigrate)[0], -1, "ledger"),
							putOf(decommissioned(webProxy)[0], -1, "ledger"),
						}},
				}
			},
		},
		{
			// The previous leader saw the rollout to 1.5.0 (a pod started at t0+10m); a pod of the old revision
			// started at t0 is reconciled now: its digest does not replace the newer one, the other containers
			// are recorded.
			name:   "the ledger holds a newer pod's digest: the older one skipped, the other containers desired",
			ledger: []ledger.Entry{syncedEntry(webApp2, 10*time.Minute)},
			steps: func(*fakeLedger) []ledgerStep {
				return []ledgerStep{
					{step: step{name: "old pod running", do: []action{create(pod1)}, req: podReq(pod1.Name), want: []record.Record{webMigrate, webProxy}},
						wantPuts: []ledger.Entry{putOf(webMigrate, 0, "informer"), putOf(webProxy, 0, "informer")}},
					{step: step{name: "old pod updated: skipped again", req: podReq(pod1.Name)}},
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			led := newFakeLedger(tt.ledger...)
			e := newEnv(t, withLedger(led, &seeder{}), webObjects...)
			startResumed(t, e)
			e.rec.take()
			led.takePuts()
			for i, s := range tt.steps(led) {
				ok := t.Run(fmt.Sprintf("%d %s", i+1, s.name), func(t *testing.T) {
					ctx := t.Context()
					for _, a := range s.do {
						if err := a(ctx, e); err != nil {
							t.Fatal(err)
						}
					}
					_, err := e.tracker.Reconcile(ctx, s.req)
					if s.wantErr == nil && err != nil || s.wantErr != nil && !errors.Is(err, s.wantErr) {
						t.Fatalf("Reconcile(%+v) error = %v, want %v", s.req, err, s.wantErr)
					}
					e.settle(t)
					if diff := cmp.Diff(s.want, e.rec.take(), sortRecords, cmpopts.EquateEmpty()); diff != "" {
						t.Errorf("desired records mismatch (-want +got):\n%s", diff)
					}
					if diff := cmp.Diff(s.wantPuts, led.takePuts(), sortPuts, cmpopts.EquateEmpty()); diff != "" {
						t.Errorf("ledger puts mismatch (-want +got):\n%s", diff)
					}
				})
				if !ok {
					return
				}
			}
		})
	}
}
