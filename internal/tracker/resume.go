package tracker

import (
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/event"

	v1alpha1 "github.com/deployment-tracker/deployment-tracker/internal/apis/records/v1alpha1"
	"github.com/deployment-tracker/deployment-tracker/internal/ledger"
	"github.com/deployment-tracker/deployment-tracker/internal/owner"
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
	t.readyOnce.Do(func() { close(t.ready) })
	<-ctx.Done()
	return nil
}

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
	now := t.cfg.Now()
	adopted := map[owner.Workload]bool{}
	unsynced := 0
	for _, e := range entries {
		// The ledger keeps only the digest and status the sink accepted, Have the rest from the spec: when a
		// change of another field (tags) is not synced, Have equals Want, and seeding it would make the
		// dispatcher drop the Desire below as already delivered.
		if e.Have != nil && t.cfg.Seeder != nil && (e.Synced || !record.Equal(*e.Have, e.Want)) {
			t.cfg.Seeder.Seed(*e.Have)
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

	var pods corev1.PodList
	if err := t.cfg.Reader.List(ctx, &pods); err != nil {
		return fmt.Errorf("listing pods: %w", err)
	}
	for i := range pods.Items {
		p := &pods.Items[i]
		event := ""
		if err := t.reconcilePod(ctx, types.NamespacedName{Namespace: p.Namespace, Name: p.Name}, &event); err != nil {
			log.V(1).Info("Pod not reconciled yet; the controller retries it", "pod", p.Namespace+"/"+p.Name, "error", err.Error())
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
	log.Info("Resumed from the ledger", "records", len(entries), "unsynced", unsynced, "workloads", len(adopted), "pods", len(pods.Items))
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

// put writes a decision to the ledger, if there is one.
func (t *Tracker) put(ctx context.Context, r record.Record, w owner.Workload, container string, ps *podState, revision int64) error {
	if t.cfg.Ledger == nil {
		return nil
	}
	m := ledger.Meta{Workload: toLedger(w), Container: container, Source: v1alpha1.SourceLedger, Revision: revision}
	if ps != nil {
		m.PodStarted, m.Source = ps.started, ps.source
	}
	return t.cfg.Ledger.Put(ctx, r, m)
}

func toLedger(w owner.Workload) v1alpha1.Workload {
	return v1alpha1.Workload{Group: w.Group, Kind: w.Kind, Namespace: w.Namespace, Name: w.Name}
}

func fromLedger(w v1alpha1.Workload) owner.Workload {
	return owner.Workload{Group: w.Group, Kind: w.Kind, Namespace: w.Namespace, Name: w.Name}
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
