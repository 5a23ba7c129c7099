package ledger

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/go-logr/logr"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/deployment-tracker/deployment-tracker/internal/apis/records/v1alpha1"
	"github.com/deployment-tracker/deployment-tracker/internal/metrics"
)

// The retention of DeploymentRecords. Workloads with unique names (CI runner pods, ad-hoc Jobs, one-off bare
// pods) each leave a record per container whose key never comes back: without a retention the ledger, and the
// start-up read of it, grow with every one of them. A record goes once its key is decommissioned and delivered
// (the sink holds the decommission) for longer than the retention; a deployed record, and one whose current
// spec a sink has not accepted, stay whatever their age. RolloutRecords have their own retention
// (PruneRollouts, -rollout-history and -rollout-max-age, applied by the rollout controller).

// Defaults of RetentionConfig.
const (
	defaultRetentionInterval = time.Hour
	// The first pass comes 2 to 5 minutes after Start: not during the start-up read of the ledger and the first
	// sync, and not at the same instant on every replica that a leader change or a rollout restarted.
	defaultRetentionDelay  = 2 * time.Minute
	defaultRetentionJitter = 3 * time.Minute
)

// RetentionConfig configures a Retention.
type RetentionConfig struct {
	// Ledger is the ledger to prune (required).
	Ledger *Ledger
	// Age is how long a delivered decommission stays in the ledger (-ledger-retention; more than 0).
	Age time.Duration
	// Interval is the time between two passes (default 1h).
	Interval time.Duration
	// Delay is the time from Start to the first pass (default: at random between 2 and 5 minutes).
	Delay time.Duration
	// Metrics, if set, receives deptracker_ledger_records_deleted_total and deptracker_ledger_records.
	Metrics *metrics.Metrics
	// Log is the logger; default: discard.
	Log logr.Logger
}

// Retention deletes, on the leader, the DeploymentRecords decommissioned and delivered more than Age ago
// (Ledger.PruneRecords), once after Delay and then every Interval. It implements manager.Runnable.
type Retention struct {
	cfg RetentionConfig
}

// NewRetention validates cfg, fills its defaults and returns a Retention; add it to the manager.
func NewRetention(cfg RetentionConfig) (*Retention, error) {
	if cfg.Ledger == nil {
		return nil, errors.New("ledger retention: no ledger")
	}
	if cfg.Age <= 0 {
		return nil, fmt.Errorf("ledger retention: age %s, want more than 0", cfg.Age)
	}
	if cfg.Interval <= 0 {
		cfg.Interval = defaultRetentionInterval
	}
	if cfg.Delay <= 0 {
		cfg.Delay = defaultRetentionDelay + rand.N(defaultRetentionJitter)
	}
	if cfg.Log.GetSink() == nil {
		cfg.Log = logr.Discard()
	}
	return &Retention{cfg: cfg}, nil
}

// NeedLeaderElection makes the retention run on the elected leader only, the one writer of the ledger.
func (r *Retention) NeedLeaderElection() bool { return true }

// Start runs a pass after Delay and then every Interval, until ctx is cancelled. A pass that fails is logged
// and tried again at the next one.
func (r *Retention) Start(ctx context.Context) error {
	t := time.NewTimer(r.cfg.Delay)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		r.pass(ctx)
		t.Reset(r.cfg.Interval)
	}
}

func (r *Retention) pass(ctx context.Context) {
	kept, deleted, err := r.cfg.Ledger.PruneRecords(ctx, r.cfg.Age)
	if m := r.cfg.Metrics; m != nil {
		m.Ledger.RecordsDeleted.Add(float64(deleted))
		if err == nil {
			m.Ledger.Records.Set(float64(kept))
		}
	}
	if err != nil {
		if ctx.Err() == nil {
			r.cfg.Log.Error(err, "Cannot apply the ledger's retention; trying again later", "deleted", deleted, "next", r.cfg.Interval)
		}
		return
	}
	if deleted > 0 {
		r.cfg.Log.Info("Deleted decommissioned records from the ledger", "deleted", deleted, "kept", kept, "retention", r.cfg.Age)
	}
}

// PruneRecords deletes the records of keys decommissioned and delivered more than maxAge ago (expired), reading
// the ledger in pages, and returns how many records it kept and how many it deleted. Each delete is conditional
// on the object being unchanged since the listing (its UID and resourceVersion): a record written meanwhile
// (its key deployed again) or already gone is left to the next pass. A delete that fails otherwise (access
// refused, the API server unavailable) ends the pass with its error.
func (l *Ledger) PruneRecords(ctx context.Context, maxAge time.Duration) (kept, deleted int, err error) {
	now := l.now()
	err = listPages(ctx, l, func(list *v1alpha1.DeploymentRecordList) error {
		for i := range list.Items {
			dr := &list.Items[i]
			if !l.expired(dr, maxAge, now) {
				kept++
				continue
			}
			uid, rv := dr.UID, dr.ResourceVersion
			err := l.Client.Delete(ctx, dr, client.Preconditions{UID: &uid, ResourceVersion: &rv})
			switch {
			case err == nil:
				deleted++
				l.learn(dr.Name, false)
			case apierrors.IsNotFound(err):
				l.learn(dr.Name, false) // gone already
			case apierrors.IsConflict(err):
				kept++ // written since the listing: the next pass decides again
			default:
				return fmt.Errorf("deleting ledger record %s: %w", dr.Name, err)
			}
		}
		return nil
	})
	if err != nil {
		return kept, deleted, fmt.Errorf("pruning the ledger: %w", err)
	}
	return kept, deleted, nil
}

// expired reports whether dr is a key decommissioned and delivered more than maxAge before now. Delivered is
// stricter than List's Synced: the spec is a decommission; the Synced condition is True for the current
// generation (every sink accepted it, none failed since); and the ledger's sink's status holds the
// decommission of this generation.
//
// The age counts from that sink status's lastSynced, which Delivered sets to the time the sink accepted the
// decommission: it is exact, and a later acceptance only moves it later. The Synced condition's
// lastTransitionTime is not: it moves only when the condition's status changes, and when the Pending write of
// a new decommission lost a conflict (refreshSynced), the condition goes from the True of the deployed record
// straight to the True of the decommission, keeping the time the deployed record was delivered, possibly months
// earlier. A status without lastSynced (a sink that never accepted anything) never expires.
func (l *Ledger) expired(dr *v1alpha1.DeploymentRecord, maxAge time.Duration, now time.Time) bool {
	if dr.Spec.Status != v1alpha1.StatusDecommissioned || dr.DeletionTimestamp != nil {
		return false
	}
	c := meta.FindStatusCondition(dr.Status.Conditions, v1alpha1.ConditionSynced)
	if c == nil || c.Status != metav1.ConditionTrue || c.ObservedGeneration != dr.Generation {
		return false
	}
	for _, s := range dr.Status.Sinks {
		if s.Sink != l.Sink {
			continue
		}
		delivered := s.Status == v1alpha1.StatusDecommissioned && s.ObservedGeneration == dr.Generation && s.LastError == "" &&
			s.LastSynced != nil
		return delivered && now.Sub(s.LastSynced.Time) > maxAge
	}
	return false
}
