package tracker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/event"

	v1alpha1 "github.com/deployment-tracker/deployment-tracker/internal/apis/records/v1alpha1"
	"github.com/deployment-tracker/deployment-tracker/internal/ledger"
	"github.com/deployment-tracker/deployment-tracker/internal/owner"
	"github.com/deployment-tracker/deployment-tracker/internal/podwatch"
	"github.com/deployment-tracker/deployment-tracker/internal/record"
)

// Ledger keeps the records durable (internal/ledger): the tracker writes every decision to it before handing
// it on, and resumes from it after a restart.
type Ledger interface {
	Put(ctx context.Context, r record.Record, m ledger.Meta) error
	List(ctx context.Context) ([]ledger.Entry, error)
}

// Seeder learns what the sink already holds for a key (the dispatcher), so that it is not posted again.
type Seeder interface {
	Seed(r record.Record)
}

// NeedLeaderElection: the tracker decides records on the leader only.
func (t *Tracker) NeedLeaderElection() bool { return true }

// Start resumes from the ledger once the caches have synced, and only then lets Reconcile run: the decisions
// taken before a restart are known before any new one is taken. It implements manager.Runnable.
func (t *Tracker) Start(ctx context.Context) error {
	defer t.readyOnce.Do(func() { close(t.ready) })
	if t.cfg.Ledger == nil {
		<-ctx.Done()
		return nil
	}
	wctx, stop := context.WithCancel(ctx)
	written := make(chan struct{})
	defer func() { stop(); <-written }() // nothing is desired once Start has returned
	go func() {
		defer close(written)
		t.writes.run(wctx, t.cfg.LedgerWriters)
	}()
	if t.cfg.WaitForCacheSync != nil && !t.cfg.WaitForCacheSync(ctx) {
		if ctx.Err() != nil {
			return nil
		}
		return errors.New("tracker: the caches did not sync")
	}
	if err := t.resume(ctx); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	// What resume decided reaches the dispatcher before the tracker is ready, so that the first sync's bulk
	// delivery holds all of it; a ledger that does not take writes for long delays readiness no further.
	waitCtx, cancel := context.WithTimeout(ctx, resumeWritesWait)
	if err := t.writes.wait(waitCtx); err != nil && ctx.Err() == nil {
		t.cfg.Log.Info("Ledger writes of the resume still pending; ready all the same, they are retried", "waited", resumeWritesWait)
	}
	cancel()
	t.readyOnce.Do(func() { close(t.ready) })
	<-ctx.Done()
	return nil
}

// resumeWritesWait bounds how long the tracker waits for the ledger writes of its resume before it is ready.
const resumeWritesWait = time.Minute

// Ready reports whether the tracker has resumed and reconciles.
func (t *Tracker) Ready() bool {
	select {
	case <-t.ready:
		return true
	default:
		return false
	}
}

// resume reads the ledger, tells the dispatcher what the sink holds, re-desires what is not synced, adopts the
// deployed records, reconciles every live pod once, and decommissions adopted workloads that went away while
// no tracker ran. A restart of a synced cluster costs no call.
func (t *Tracker) resume(ctx context.Context) error {
	log := t.cfg.Log.WithName("resume")
	var entries []ledger.Entry
	err := wait.ExponentialBackoffWithContext(ctx, wait.Backoff{Duration: time.Second, Factor: 2, Steps: 1 << 30, Cap: time.Minute},
		func(ctx context.Context) (bool, error) {
			var err error
			if entries, err = t.cfg.Ledger.List(ctx); err != nil {
				log.Error(err, "Cannot read the ledger; retrying")
				return false, nil
			}
			return true, nil
		})
	if err != nil {
		return fmt.Errorf("reading the ledger: %w", err)
	}

	t.mu.Lock()
	defer t.mu.Unlock()
	t.firstSync = len(entries) == 0
	t.notAttested = nil
	for _, e := range entries {
		if e.NotAttested != nil {
			t.notAttested = append(t.notAttested, e)
		}
	}
	now := t.cfg.Now()
	adopted := map[owner.Workload]bool{}
	unsynced := 0
	var foreign foreignRecords
	for _, e := range entries {
		// The ledger keeps only the digest and status the sink accepted, Have the rest from the spec: when a
		// change of another field (tags) is not synced, Have equals Want, and seeding it would make the
		// dispatcher drop the Desire below as already delivered.
		if e.Have != nil && t.cfg.Seeder != nil && (e.Synced || !record.Equal(*e.Have, e.Want)) {
			t.cfg.Seeder.Seed(*e.Have)
		}
		if t.resumeOutOfScope(ctx, e) { // left as it is (scope.go)
			continue
		}
		if t.foreign(e) { // recorded under another identity (foreign.go)
			t.retireForeign(e, &foreign)
			continue
		}
		if !e.Synced {
			unsynced++
			t.cfg.Desirer.Desire(e.Want, now)
		}
		if e.Want.Status != record.StatusDeployed {
			continue
		}
		w := fromLedger(e.Meta.Workload)
		ws := t.state(w)
		ws.desired[e.Meta.Container] = e.Want
		ws.revision[e.Meta.Container] = e.Meta.Revision
		t.hold(e.Want.Key(), w, e.Meta.Container)
		adopted[w] = true
	}
	t.logResumeScope(log)
	foreign.log(log)

	pods, err := podwatch.Names(ctx, t.cfg.Reader, "")
	if err != nil {
		return err
	}
	for _, nn := range pods {
		event := ""
		if err := t.reconcilePod(ctx, nn, &event); err != nil {
			log.V(1).Info("Pod not reconciled yet; the controller retries it", "pod", nn.String(), "error", err.Error())
		}
	}
	for w := range adopted {
		var err error
		for attempt := 0; attempt < 5; attempt++ {
			if err = t.recompute(ctx, w); err == nil || isRequeue(err) {
				break
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("deciding the records of workload %v from the ledger: %w", w, ctx.Err())
			case <-time.After(time.Duration(attempt+1) * 200 * time.Millisecond):
			}
		}
		if isRequeue(err) {
			// Decided again later by the controller (a workload whose existence is not watched).
			select {
			case t.retry <- event.TypedGenericEvent[owner.Workload]{Object: w}:
			default:
			}
		} else if err != nil {
			log.Error(err, "Cannot decide the records of a workload from the ledger yet; the controller retries it", "workload", w)
			select {
			case t.retry <- event.TypedGenericEvent[owner.Workload]{Object: w}:
			default:
				log.Error(nil, "Retry buffer full; the workload is decided at its next pod event", "workload", w)
			}
		}
	}
	log.Info("Resumed from the ledger", "records", len(entries), "unsynced", unsynced, "workloads", len(adopted), "pods", len(pods))
	return nil
}

// state returns the state of workload w, creating it.
func (t *Tracker) state(w owner.Workload) *workloadState {
	ws := t.workloads[w]
	if ws == nil {
		ws = &workloadState{pods: map[types.NamespacedName]*podState{}, desired: map[string]record.Record{},
			revision: map[string]int64{}, refused: map[string]refusal{}}
		t.workloads[w] = ws
	}
	return ws
}

// decision is r decided for workload w's container, by pod ps (nil: by no pod, a decommission or a record
// desired again) at revision.
func (t *Tracker) decision(r record.Record, w owner.Workload, container string, ps *podState, revision int64, now time.Time) decision {
	m := ledger.Meta{Workload: toLedger(w), Container: container, Source: v1alpha1.SourceLedger, Revision: revision}
	if ps != nil {
		m.PodStarted, m.Source = ps.started, ps.source
	}
	return decision{rec: r, meta: m, workload: w, container: container, decided: now}
}

// decide hands d on: to the ledger writes, which desire it once written, or, without a ledger, to the Desirer.
func (t *Tracker) decide(d decision) {
	if t.writes == nil {
		desireDecision(t.cfg.Desirer, d)
		return
	}
	t.writes.add(d)
}

// olderRefused undoes decision d, which the ledger refused because it holds a newer one (a leader whose cache
// lags the previous leader's decisions): the workload desires what it did before, and d is not tried again
// until the decision changes. Nothing to undo when the workload decided again meanwhile.
func (t *Tracker) olderRefused(d decision, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.cfg.Metrics.OlderRefused.Inc()
	t.cfg.Log.Info("not recording an older digest over a newer one", "workload", d.workload, "container", d.container, "error", err.Error())
	ws := t.workloads[d.workload]
	if ws == nil {
		return
	}
	if cur, ok := ws.desired[d.container]; !ok || !record.Equal(cur, d.rec) {
		return
	}
	ws.refused[d.container] = d.refusal
	if d.prev != nil {
		ws.desired[d.container], ws.revision[d.container] = *d.prev, d.prevRevision
		return
	}
	delete(ws.desired, d.container)
	delete(ws.revision, d.container)
	t.release(d.rec.Key(), d.workload)
}

func toLedger(w owner.Workload) v1alpha1.Workload {
	return v1alpha1.Workload{Group: w.Group, Kind: w.Kind, Namespace: w.Namespace, Name: w.Name}
}

func fromLedger(w v1alpha1.Workload) owner.Workload {
	return owner.Workload{Group: w.Group, Kind: w.Kind, Namespace: w.Namespace, Name: w.Name}
}

// NotAttested returns, once the tracker has resumed, the ledger's entries that remember an artifact the sink
// said had no attestation: the dispatcher loads them into its negative cache from the tracker's one read of the
// ledger, instead of reading it again. They are handed out once.
func (t *Tracker) NotAttested(ctx context.Context) ([]ledger.Entry, error) {
	select {
	case <-t.ready:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	out := t.notAttested
	t.notAttested = nil
	return out, nil
}

// FirstSync waits until the tracker has resumed (it leads, and every live pod has been decided) and reports
// whether the ledger was empty: the first sync of this cluster, which the dispatcher delivers in bulk.
func (t *Tracker) FirstSync(ctx context.Context) (bool, error) {
	select {
	case <-t.ready:
	case <-ctx.Done():
		return false, ctx.Err()
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.firstSync && t.cfg.Ledger != nil, nil
}
