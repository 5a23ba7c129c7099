// Package controller runs the rollout model (internal/rollout) against the cluster: it watches Deployments,
// StatefulSets and DaemonSets (trimmed by rollout.Transform), their ReplicaSets and ControllerRevisions, and
// hears from the tracker what the pods of each revision show; on every change it decides the workload's
// rollouts (rollout.Decide), writes them to the ledger first, emits Events on the workload and hands them to the
// rollout dispatcher, which notifies the rollout sinks. It runs on the leader only and resumes from the ledger,
// so that a restart or a leader change neither repeats nor loses a transition.
package controller

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/tools/record"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/deployment-tracker/deployment-tracker/internal/ledger"
	"github.com/deployment-tracker/deployment-tracker/internal/owner"
	"github.com/deployment-tracker/deployment-tracker/internal/rollout"
)

// Ledger keeps rollouts durable (internal/ledger).
type Ledger interface {
	PutRollout(ctx context.Context, r rollout.Rollout) error
	ListRollouts(ctx context.Context) ([]ledger.RolloutEntry, error)
	PruneRollouts(ctx context.Context, keep int, maxAge time.Duration) (int, error)
}

// Notifier hands rollouts to the rollout sinks (internal/dispatch.Rollouts). Notify must not block.
type Notifier interface {
	Notify(r rollout.Rollout)
	Seed(sinkName string, r rollout.Rollout, acknowledged rollout.Phase, state map[string]string, synced bool)
	// Forget drops what the notifier keeps of a rollout the controller no longer keeps.
	Forget(w owner.Workload, revision int64)
}

// Config configures a Controller.
type Config struct {
	// Reader reads workloads, ReplicaSet metadata and ControllerRevisions: the manager's cache.
	Reader client.Reader
	// Ledger, if set, keeps rollouts durable; the controller resumes from it.
	Ledger Ledger
	// Notifier, if set, receives every rollout that changed.
	Notifier Notifier
	// Sinks are the names of the rollout sinks, for resuming their delivery state.
	Sinks []string
	// Recorder, if set, emits Events on workloads.
	Recorder record.EventRecorder
	// History is how many rollouts are kept per workload (default 10); MaxAge how long a finished one is kept
	// at most (default 30 days).
	History int
	MaxAge  time.Duration
	// ExcludeNamespaces are never tracked.
	ExcludeNamespaces []string
	// InScope, if set, tells whether a workload that exists is in the tracker's scope (-namespace, the
	// namespace and workload selectors, the ignore annotation: tracker.Tracker.WorkloadInScope). One out of it
	// has nothing decided: no rollout starts, none it had moves on, no Event, no sink hears of it; what was
	// decided before it left stays as it is, and is decided on if it comes back. Its deletion is decided as
	// any other's, so that rollouts announced before end.
	InScope func(ctx context.Context, obj client.Object) (bool, error)
	// WaitForCacheSync waits for the informers before resuming.
	WaitForCacheSync func(ctx context.Context) bool
	Log              logr.Logger
	Now              func() time.Time
}

// Controller decides rollouts. Reconcile runs one workload at a time.
type Controller struct {
	cfg      Config
	excluded map[string]bool
	changed  chan event.TypedGenericEvent[owner.Workload] // workloads whose pods changed, or resumed

	ready     chan struct{}
	readyOnce sync.Once
	since     time.Time // when the controller was created: revisions older than it may be adopted

	mu      sync.Mutex
	facts   map[owner.Workload]map[string]rollout.PodFacts // what the tracker reported
	history map[owner.Workload][]rollout.Rollout           // ascending revision; Reconcile only
}

// New returns a Controller.
func New(cfg Config) (*Controller, error) {
	if cfg.Reader == nil {
		return nil, errors.New("rollout controller: Reader is required")
	}
	if cfg.History <= 0 {
		cfg.History = 10
	}
	if cfg.MaxAge <= 0 {
		cfg.MaxAge = 30 * 24 * time.Hour
	}
	if cfg.Log.GetSink() == nil {
		cfg.Log = logr.Discard()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	c := &Controller{
		cfg:      cfg,
		excluded: map[string]bool{},
		changed:  make(chan event.TypedGenericEvent[owner.Workload], 4096),
		ready:    make(chan struct{}),
		facts:    map[owner.Workload]map[string]rollout.PodFacts{},
		history:  map[owner.Workload][]rollout.Rollout{},
		since:    cfg.Now(),
	}
	for _, ns := range cfg.ExcludeNamespaces {
		c.excluded[ns] = true
	}
	if cfg.Ledger == nil {
		c.readyOnce.Do(func() { close(c.ready) })
	}
	return c, nil
}

// PodsChanged stores what the tracker saw of w's pods and has w decided again. It implements the tracker's
// Revisions; it never blocks.
func (c *Controller) PodsChanged(w owner.Workload, facts map[string]rollout.PodFacts) {
	if !rollout.Tracked(w) || c.excluded[w.Namespace] {
		return
	}
	c.mu.Lock()
	if len(facts) == 0 {
		delete(c.facts, w)
	} else {
		c.facts[w] = facts
	}
	c.mu.Unlock()
	select {
	case c.changed <- event.TypedGenericEvent[owner.Workload]{Object: w}:
	default: // the workload's own events decide it again soon; the facts are kept
	}
}

// History returns the rollouts of w as decided so far, by ascending revision.
func (c *Controller) History(w owner.Workload) []rollout.Rollout {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.history[w])
}

// Reconcile decides the rollouts of one workload.
func (c *Controller) Reconcile(ctx context.Context, w owner.Workload) (reconcile.Result, error) {
	select {
	case <-c.ready:
	case <-ctx.Done():
		return reconcile.Result{}, ctx.Err()
	}
	if !rollout.Tracked(w) || c.excluded[w.Namespace] {
		return reconcile.Result{}, nil
	}
	obj, err := c.read(ctx, w)
	if err != nil {
		return reconcile.Result{}, err
	}
	if obj != nil && c.cfg.InScope != nil {
		in, err := c.cfg.InScope(ctx, obj)
		if err != nil {
			return reconcile.Result{}, fmt.Errorf("reading the scope of %s: %w", w, err)
		}
		if !in {
			return reconcile.Result{}, nil
		}
	}
	o := rollout.Observation{Workload: w, Now: c.cfg.Now(), WatchingSince: c.since, Exists: obj != nil && obj.GetDeletionTimestamp() == nil}
	if o.Exists {
		if o.Revision, o.HaveRevision, err = c.revisionOf(ctx, w, obj); err != nil {
			return reconcile.Result{}, err
		}
		if o.Status, err = rollout.Compute(obj); err != nil {
			return reconcile.Result{}, fmt.Errorf("computing the status of %s: %w", w, err)
		}
		o.Containers = templateContainers(obj)
		c.mu.Lock()
		o.Pods = c.facts[w]
		c.mu.Unlock()
	}
	c.mu.Lock()
	history := c.history[w]
	c.mu.Unlock()
	if n := len(history); n > 0 && history[n-1].Phase == rollout.PhaseDeleted && o.Exists {
		// Created again under the same name: its revisions start over, and the notifier must not take them
		// for the old incarnation's.
		c.forget(w, history, nil)
		history = nil
	}
	changed, transitions := rollout.Decide(history, o)
	if len(changed) == 0 {
		return reconcile.Result{}, nil
	}
	for _, r := range changed {
		if c.cfg.Ledger != nil {
			if err := c.cfg.Ledger.PutRollout(ctx, r); err != nil {
				return reconcile.Result{}, fmt.Errorf("writing the rollout of %s revision %d to the ledger: %w", w, r.Revision, err)
			}
		}
	}
	c.mu.Lock()
	for _, r := range changed {
		history = merge(history, r)
	}
	kept := retain(slices.Clone(history), c.cfg.History, c.cfg.MaxAge, o.Now)
	c.history[w] = kept
	if !o.Exists {
		delete(c.facts, w)
	}
	c.mu.Unlock()
	c.forget(w, history, kept)
	for _, t := range transitions {
		c.event(obj, t)
		c.cfg.Log.Info("Rollout", "workload", w.String(), "revision", t.Rollout.Revision, "phase", t.Rollout.Phase, "from", t.From,
			"reason", t.Rollout.Reason)
	}
	for _, r := range changed {
		// An adopted rollout was never announced; of its end only the workload's deletion is news.
		if c.cfg.Notifier != nil && (!r.Adopted || r.Phase == rollout.PhaseDeleted) {
			c.cfg.Notifier.Notify(r)
		}
	}
	return reconcile.Result{}, nil
}

// read returns w from the cache, nil when it is gone.
func (c *Controller) read(ctx context.Context, w owner.Workload) (client.Object, error) {
	obj := rollout.Object(w)
	if obj == nil {
		return nil, nil
	}
	if err := c.cfg.Reader.Get(ctx, types.NamespacedName{Namespace: w.Namespace, Name: w.Name}, obj); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("reading %s: %w", w, err)
	}
	return obj, nil
}

// templateContainers are the containers of obj's pod template, init containers first, images as written.
func templateContainers(obj client.Object) []rollout.Container {
	var spec *corev1.PodSpec
	switch o := obj.(type) {
	case *appsv1.Deployment:
		spec = &o.Spec.Template.Spec
	case *appsv1.StatefulSet:
		spec = &o.Spec.Template.Spec
	case *appsv1.DaemonSet:
		spec = &o.Spec.Template.Spec
	default:
		return nil
	}
	out := make([]rollout.Container, 0, len(spec.InitContainers)+len(spec.Containers))
	for i, cs := range [][]corev1.Container{spec.InitContainers, spec.Containers} {
		for _, ct := range cs {
			out = append(out, rollout.Container{Name: ct.Name, Image: ct.Image, Init: i == 0})
		}
	}
	return out
}

// merge puts r into history (ascending revision), replacing the rollout of the same revision.
func merge(history []rollout.Rollout, r rollout.Rollout) []rollout.Rollout {
	i, found := slices.BinarySearchFunc(history, r.Revision, func(x rollout.Rollout, n int64) int {
		switch {
		case x.Revision < n:
			return -1
		case x.Revision > n:
			return 1
		}
		return 0
	})
	out := slices.Clone(history)
	if found {
		out[i] = r
		return out
	}
	return slices.Insert(out, i, r)
}

// retain keeps the newest keep rollouts of a workload, and of the older ones none that finished before maxAge.
func retain(history []rollout.Rollout, keep int, maxAge time.Duration, now time.Time) []rollout.Rollout {
	if len(history) > keep {
		history = history[len(history)-keep:]
	}
	return slices.DeleteFunc(history, func(r rollout.Rollout) bool {
		end := r.Finished
		if end.IsZero() {
			end = r.Started
		}
		return r.Phase.Final() && now.Sub(end) > maxAge && r.Revision != history[len(history)-1].Revision
	})
}

// incarnation returns the rollouts of a workload's latest incarnation: a workload deleted and created again
// under the same name numbers its revisions from 1 again, so the rollouts that started after the last
// deletion are the current ones.
func incarnation(history []rollout.Rollout) []rollout.Rollout {
	last := -1
	for i, r := range history {
		if r.Phase == rollout.PhaseDeleted && (last < 0 || r.Finished.After(history[last].Finished)) {
			last = i
		}
	}
	if last < 0 {
		return history
	}
	// Started has the API server's second precision, Finished the tracker's clock's.
	since := history[last].Finished.Truncate(time.Second)
	var after []rollout.Rollout
	for i, r := range history {
		if i != last && !r.Started.Before(since) && r.Phase != rollout.PhaseDeleted || r.Started.After(history[last].Finished) {
			after = append(after, r)
		}
	}
	if len(after) == 0 {
		return history
	}
	return after
}

// event emits the Kubernetes Event of a transition on the workload.
func (c *Controller) event(obj client.Object, t rollout.Transition) {
	if c.cfg.Recorder == nil || obj == nil || t.Rollout.Adopted {
		return
	}
	r := t.Rollout
	ref := &corev1.ObjectReference{
		APIVersion: "apps/v1", Kind: r.Workload.Kind, Namespace: r.Workload.Namespace, Name: r.Workload.Name,
		UID: obj.GetUID(), ResourceVersion: obj.GetResourceVersion(),
	}
	images := make([]string, 0, len(r.Containers))
	for _, ct := range r.Containers {
		images = append(images, ct.Name+"="+ct.Image)
	}
	switch r.Phase {
	case rollout.PhaseInProgress:
		msg := fmt.Sprintf("Rollout of revision %d started: %s", r.Revision, strings.Join(images, ", "))
		if r.Restores > 0 {
			msg = fmt.Sprintf("Rollout of revision %d started, restoring revision %d: %s", r.Revision, r.Restores, strings.Join(images, ", "))
		}
		c.cfg.Recorder.Event(ref, corev1.EventTypeNormal, "RolloutStarted", msg)
	case rollout.PhaseCurrent:
		c.cfg.Recorder.Eventf(ref, corev1.EventTypeNormal, "RolloutCompleted", "Revision %d is available: %d/%d ready after %s",
			r.Revision, r.Ready, r.Desired, r.Completed.Sub(r.Started).Round(time.Second))
	case rollout.PhaseFailed:
		c.cfg.Recorder.Eventf(ref, corev1.EventTypeWarning, "RolloutFailed", "Revision %d failed: %s: %s", r.Revision, r.Reason, r.Message)
	case rollout.PhaseRolledBack:
		c.cfg.Recorder.Eventf(ref, corev1.EventTypeWarning, "RolloutRolledBack", "Revision %d rolled back: %s", r.Revision, r.Message)
	}
}

// NeedLeaderElection: rollouts are decided on the leader only.
func (c *Controller) NeedLeaderElection() bool { return true }

// Start resumes from the ledger once the caches have synced, then lets Reconcile run, and prunes the ledger
// every ten minutes. It implements manager.Runnable.
func (c *Controller) Start(ctx context.Context) error {
	defer c.readyOnce.Do(func() { close(c.ready) })
	if c.cfg.Ledger != nil {
		if c.cfg.WaitForCacheSync != nil && !c.cfg.WaitForCacheSync(ctx) {
			if ctx.Err() != nil {
				return nil
			}
			return errors.New("rollout controller: the caches did not sync")
		}
		if err := c.resume(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		c.readyOnce.Do(func() { close(c.ready) })
	}
	c.prune(ctx)
	t := time.NewTicker(10 * time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			c.prune(ctx)
		}
	}
}

// forget tells the notifier about the rollouts of w in before that are not in after.
func (c *Controller) forget(w owner.Workload, before, after []rollout.Rollout) {
	if c.cfg.Notifier == nil {
		return
	}
	for _, r := range before {
		if !slices.ContainsFunc(after, func(k rollout.Rollout) bool { return k.Revision == r.Revision }) {
			c.cfg.Notifier.Forget(w, r.Revision)
		}
	}
}

// deletedGrace is how long the rollouts of a deleted workload stay in memory (for their notifications to be
// delivered); the ledger keeps them until they are pruned.
const deletedGrace = 10 * time.Minute

// dropDeleted forgets the in-memory rollouts of workloads deleted a while ago.
func (c *Controller) dropDeleted(now time.Time) {
	c.mu.Lock()
	var gone []owner.Workload
	var histories [][]rollout.Rollout
	for w, h := range c.history {
		if n := len(h); n > 0 && h[n-1].Phase == rollout.PhaseDeleted && now.Sub(h[n-1].Finished) > deletedGrace {
			gone = append(gone, w)
			histories = append(histories, h)
			delete(c.history, w)
		}
	}
	c.mu.Unlock()
	for i, w := range gone {
		c.forget(w, histories[i], nil)
	}
}

func (c *Controller) prune(ctx context.Context) {
	c.dropDeleted(c.cfg.Now())
	if c.cfg.Ledger == nil {
		return
	}
	n, err := c.cfg.Ledger.PruneRollouts(ctx, c.cfg.History, c.cfg.MaxAge)
	if err != nil {
		c.cfg.Log.Error(err, "Cannot prune the rollouts of the ledger; trying again later")
		return
	}
	if n > 0 {
		c.cfg.Log.V(1).Info("Pruned rollouts from the ledger", "deleted", n)
	}
}

// resume loads the rollouts of the ledger, tells the dispatcher what each sink acknowledged, and has every
// workload with a rollout decided again (its deletion while no tracker ran included).
func (c *Controller) resume(ctx context.Context) error {
	log := c.cfg.Log.WithName("resume")
	var entries []ledger.RolloutEntry
	err := wait.ExponentialBackoffWithContext(ctx, wait.Backoff{Duration: time.Second, Factor: 2, Steps: 1 << 30, Cap: time.Minute},
		func(ctx context.Context) (bool, error) {
			var err error
			if entries, err = c.cfg.Ledger.ListRollouts(ctx); err != nil {
				log.Error(err, "Cannot read the rollouts of the ledger; retrying")
				return false, nil
			}
			return true, nil
		})
	if err != nil {
		return fmt.Errorf("reading the rollouts of the ledger: %w", err)
	}
	c.mu.Lock()
	for _, e := range entries {
		c.history[e.Rollout.Workload] = merge(c.history[e.Rollout.Workload], e.Rollout)
	}
	for w, h := range c.history {
		c.history[w] = incarnation(h)
	}
	c.mu.Unlock()
	pending := 0
	for _, e := range entries {
		r := e.Rollout
		for _, s := range c.cfg.Sinks {
			d, told := e.Sinks[s]
			// A sink is told of what it has not acknowledged yet, but not of old history it never heard of (a
			// sink added later), nor of adopted rollouts.
			if !told && (r.Phase.Final() || r.Adopted) {
				continue
			}
			if c.cfg.Notifier != nil {
				c.cfg.Notifier.Seed(s, r, d.Phase, d.State, told && d.Synced)
			}
			if !told || !d.Synced {
				pending++
			}
		}
	}
	c.mu.Lock()
	workloads := make([]owner.Workload, 0, len(c.history))
	for w := range c.history {
		workloads = append(workloads, w)
	}
	c.mu.Unlock()
	for _, w := range workloads {
		select {
		case c.changed <- event.TypedGenericEvent[owner.Workload]{Object: w}:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	log.Info("Resumed rollouts from the ledger", "rollouts", len(entries), "workloads", len(workloads), "pendingNotifications", pending)
	return nil
}
