// Package tracker turns what the cluster runs into desired deployment records. It is a level-based reconciler
// over a light pod informer (podwatch), the owners' metadata (owner) and the admission webhook's observations:
// for every workload and container it decides the record that must be at the sinks — deployed with the digest
// its current revision runs (Deployment, StatefulSet, DaemonSet, Argo Rollout: see internal/rollout) or the
// newest running pod's (other kinds), or decommissioned once the workload and its last pod are gone and no
// other live workload holds the record's key — and hands changes to the dispatcher, which is keyed by record so
// that replicas, restarts and scaling cost nothing. It tells the rollout controller what the pods of each
// revision show.
package tracker

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/deployment-tracker/deployment-tracker/internal/ledger"
	"github.com/deployment-tracker/deployment-tracker/internal/metrics"
	"github.com/deployment-tracker/deployment-tracker/internal/observation"
	"github.com/deployment-tracker/deployment-tracker/internal/owner"
	"github.com/deployment-tracker/deployment-tracker/internal/record"
	"github.com/deployment-tracker/deployment-tracker/internal/rollout"
)

// Revisions tells the tracker which revision of a workload is current, and hears what the pods of each
// revision show (the rollout controller). PodsChanged must not block.
type Revisions interface {
	// Current returns w's current revision; false when it is not known (yet).
	Current(ctx context.Context, w owner.Workload) (rollout.Revision, bool, error)
	// PodsChanged reports the pods of w per revision key.
	PodsChanged(w owner.Workload, facts map[string]rollout.PodFacts)
}

// Desirer receives the records the tracker decides; the dispatcher implements it. Desire must not block.
type Desirer interface {
	Desire(r record.Record, observed time.Time)
}

// Config configures a Tracker.
type Config struct {
	// Reader reads pods and owner metadata; the manager's cache.
	Reader client.Reader
	// Desirer receives records.
	Desirer Desirer
	// Template renders deployment_name; default record.DefaultTemplate.
	Template *record.Template
	// Org owns the records (github_repository must belong to it).
	Org string
	// LogicalEnvironment, PhysicalEnvironment and Cluster are copied into every record.
	LogicalEnvironment, PhysicalEnvironment, Cluster string
	// ExcludeNamespaces are never tracked.
	ExcludeNamespaces []string
	// Scope narrows what is tracked further (scope.go): leaving it keeps the records as they are.
	Scope Scope
	// AdmissionBuffer is the capacity of the hand-off from the webhook (default 4096).
	AdmissionBuffer int
	// ResolveAttempts is how often an owner that is not in the cache is retried before the pod's direct
	// owner is taken as its workload (default 5).
	ResolveAttempts int
	// APIReader reads the metadata of owners of kinds the cache does not watch (the manager's API reader);
	// nil: such owners are named from their child's reference only and their existence is unknown.
	APIReader client.Reader
	// Mapper finds the served version of an owner kind resumed from the ledger (the manager's RESTMapper).
	Mapper meta.RESTMapper
	// Revisions, if set, makes digests revision-aware and feeds the rollout controller.
	Revisions Revisions
	// OwnerGoneGrace is how long a workload whose existence cannot be read keeps its records after its last
	// pod is gone, waiting for a replacement pod (default 2m).
	OwnerGoneGrace time.Duration
	// Ledger, if set, keeps every decision durable; the tracker resumes from it at Start.
	Ledger Ledger
	// Seeder learns from the ledger what the sink already holds (the dispatcher).
	Seeder Seeder
	// KeepForeignRecords leaves the ledger's deployed records under another identity (CLUSTER, an environment
	// or DN_TEMPLATE changed) as they are at resume, instead of decommissioning them.
	KeepForeignRecords bool
	// LedgerWriters is how many ledger writes run at once (default DefaultLedgerWriters); writes of one record
	// key run one at a time.
	LedgerWriters int
	// WaitForCacheSync waits for the informers before Start resumes (the manager's cache).
	WaitForCacheSync func(ctx context.Context) bool
	// Metrics receives the tracker's counters.
	Metrics *metrics.Metrics
	// Log is the logger; default: discard.
	Log logr.Logger
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Request is what the tracker reconciles: a pod (Pod set) or a workload whose deletion was seen (Workload set).
// Refresh asks for the workload's owner annotations to be read again (they changed).
type Request struct {
	Pod      types.NamespacedName
	Workload owner.Workload
	Refresh  bool
}

// Tracker decides records. Observe is called by the webhook; Reconcile by the controller (one at a time).
type Tracker struct {
	cfg      Config
	resolver *owner.Resolver
	excluded map[string]bool
	scope    scopeState
	admitted chan event.TypedGenericEvent[observation.Admission]
	writes   *ledgerWrites // nil without a ledger: decisions go straight to the Desirer

	amu        sync.Mutex
	admissions map[types.UID]observation.Admission // CREATE captures, until the pod is tracked or too old

	ready     chan struct{} // closed once resumed from the ledger; Reconcile waits for it
	readyOnce sync.Once
	firstSync bool // the ledger was empty at Start: the first sync of this cluster
	// notAttested are the ledger's entries read at resume that remember an artifact without attestation,
	// until the dispatcher takes them (NotAttested).
	notAttested []ledger.Entry
	retry       chan event.TypedGenericEvent[owner.Workload] // workloads resume could not decide, for the controller

	mu        sync.Mutex
	workloads map[owner.Workload]*workloadState
	pods      map[types.NamespacedName]owner.Workload
	attempts  map[types.NamespacedName]int
	seq       uint64
	lastSweep time.Time
	// holders are the live workloads (and their container) that hold each deployed record key: a key is
	// decommissioned only when none is left.
	holders  map[record.Key]map[owner.Workload]string
	collided map[record.Key]bool // keys whose collision was logged
}

type workloadState struct {
	pods        map[types.NamespacedName]*podState
	annotations []map[string]string         // owner chain, nearest first
	desired     map[string]record.Record    // container name → the deployed record last desired
	revision    map[string]int64            // container name → the revision number that decided desired (0: none)
	refused     map[string]refusal          // container name → a decision the ledger refused as older
	goneSince   time.Time                   // when the last pod went while the workload's existence was unknown
	reported    map[string]rollout.PodFacts // what reportPods told the rollout controller last
}

// refusal is a decision the ledger refused: it is not tried again until the decision changes.
type refusal struct {
	digest   string
	revision int64
	started  time.Time // the deciding pod's start: without revisions, a newer pod is a new decision
}

type podState struct {
	uid         types.UID
	started     time.Time
	submitted   time.Time // the webhook's CREATE capture, else the pod's creationTimestamp
	seq         uint64    // order in which the tracker saw pods running; breaks ties of started
	source      string    // what saw the pod first: webhook or informer
	revision    string    // the revision key the pod carries (rollout.PodRevisionKey), "" when none
	annotations map[string]string
	containers  map[string]record.Record // container name → record (status deployed) of this pod
	waiting     map[string]bool          // containers the pod declares but has not started yet
}

// unwatchedRecheck is how often the existence of a workload of an unwatched kind without pods is read again.
const unwatchedRecheck = time.Minute

// maxAdmissions bounds the CREATE captures kept at once (each is bounded by the webhook): far above the pods
// a cluster creates within admissionTTL.
const maxAdmissions = 1 << 16

// admissionTTL bounds how long a CREATE capture waits for its pod to run.
const admissionTTL = 15 * time.Minute

// New returns a Tracker.
func New(cfg Config) (*Tracker, error) {
	if cfg.Reader == nil || cfg.Desirer == nil || cfg.Metrics == nil {
		return nil, errors.New("tracker: Reader, Desirer and Metrics are required")
	}
	if cfg.Cluster == "" || cfg.LogicalEnvironment == "" {
		return nil, errors.New("tracker: Cluster and LogicalEnvironment are required")
	}
	if cfg.Template == nil {
		t, err := record.ParseTemplate(record.DefaultTemplate)
		if err != nil {
			return nil, err
		}
		cfg.Template = t
	}
	if cfg.AdmissionBuffer <= 0 {
		cfg.AdmissionBuffer = 4096
	}
	if cfg.ResolveAttempts <= 0 {
		cfg.ResolveAttempts = 5
	}
	if cfg.OwnerGoneGrace <= 0 {
		cfg.OwnerGoneGrace = 2 * time.Minute
	}
	if cfg.Log.GetSink() == nil {
		cfg.Log = logr.Discard()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.LedgerWriters <= 0 {
		cfg.LedgerWriters = DefaultLedgerWriters
	}
	t := &Tracker{
		cfg:        cfg,
		resolver:   &owner.Resolver{Reader: cfg.Reader, APIReader: cfg.APIReader, Mapper: cfg.Mapper},
		excluded:   map[string]bool{},
		admitted:   make(chan event.TypedGenericEvent[observation.Admission], cfg.AdmissionBuffer),
		admissions: map[types.UID]observation.Admission{},
		workloads:  map[owner.Workload]*workloadState{},
		pods:       map[types.NamespacedName]owner.Workload{},
		attempts:   map[types.NamespacedName]int{},
		ready:      make(chan struct{}),
		retry:      make(chan event.TypedGenericEvent[owner.Workload], 1024),
		holders:    map[record.Key]map[owner.Workload]string{},
		collided:   map[record.Key]bool{},
	}
	t.resolver.Denied = func(gk schema.GroupKind, err error) {
		cfg.Metrics.OwnerAccessDenied.WithLabelValues(gk.String()).Inc()
		cfg.Log.Info("Cannot read owners of this kind; recording under the owner its child names, without its annotations or parents. "+
			"Grant get on it (see the deployment-tracker-owners ClusterRole)", "kind", gk.String(), "error", err.Error())
	}
	if cfg.Ledger == nil {
		t.readyOnce.Do(func() { close(t.ready) }) // nothing to resume from
	} else {
		t.writes = newLedgerWrites(cfg.Ledger, cfg.Desirer, cfg.Metrics, cfg.Log.WithName("ledger"), cfg.Now, t.olderRefused)
	}
	for _, ns := range cfg.ExcludeNamespaces {
		t.excluded[ns] = true
	}
	return t, nil
}

// Observe hands an admission observation to the tracker without blocking; it reports false when the hand-off
// buffer is full (the informer still sees the pod). It implements webhook.Observer.
func (t *Tracker) Observe(a observation.Admission) bool {
	if !t.InScope(a.Namespace) { // dropped cheaply; the webhook counts it ignored (webhook.Scoper)
		return true
	}
	select {
	case t.admitted <- event.TypedGenericEvent[observation.Admission]{Object: a}:
		return true
	default:
		return false
	}
}

// admit stores a CREATE capture; called by the controller's channel source, one at a time.
func (t *Tracker) admit(a observation.Admission) {
	if a.UID == "" {
		return
	}
	t.amu.Lock()
	defer t.amu.Unlock()
	switch a.Operation {
	case observation.Create:
		if _, ok := t.admissions[a.UID]; !ok && len(t.admissions) >= maxAdmissions {
			// Bounded whatever arrives (forged reviews): the informer still sees a real pod, as if the webhook
			// had been missed.
			t.cfg.Metrics.Admission.WithLabelValues(string(observation.Create), metrics.AdmissionDropped).Inc()
			return
		}
		t.admissions[a.UID] = a
	case observation.Delete:
		// The capture served its purpose once the pod ran (it is tracked then); a pod that never ran must not
		// keep it until it expires.
		delete(t.admissions, a.UID)
	}
}

func (t *Tracker) admission(uid types.UID) (observation.Admission, bool) {
	t.amu.Lock()
	defer t.amu.Unlock()
	a, ok := t.admissions[uid]
	return a, ok
}

func (t *Tracker) forget(uid types.UID) {
	t.amu.Lock()
	delete(t.admissions, uid)
	t.amu.Unlock()
}

// sweep drops CREATE captures of pods that never ran (denied by a later admission step, deleted at once).
func (t *Tracker) sweep(now time.Time) {
	if now.Sub(t.lastSweep) < time.Minute {
		return
	}
	t.lastSweep = now
	t.amu.Lock()
	defer t.amu.Unlock()
	for uid, a := range t.admissions {
		if now.Sub(a.Time) > admissionTTL {
			delete(t.admissions, uid)
		}
	}
}

// Reconcile brings the records of one pod's workload, or of a deleted workload, up to date.
func (t *Tracker) Reconcile(ctx context.Context, req Request) (reconcile.Result, error) {
	select {
	case <-t.ready:
	case <-ctx.Done():
		return reconcile.Result{}, ctx.Err()
	}
	start := t.cfg.Now()
	event := metrics.EventPodRunning
	var err error
	t.mu.Lock()
	switch {
	case req.Pod.Name != "":
		err = t.reconcilePod(ctx, req.Pod, &event)
	case req.Refresh:
		event = metrics.EventOwnerChanged
		err = t.refresh(ctx, req.Workload, &event)
	default:
		event = metrics.EventPodGone
		err = t.recompute(ctx, req.Workload)
	}
	t.sweep(start)
	t.mu.Unlock()
	var ra *requeueError
	if errors.As(err, &ra) {
		t.cfg.Metrics.EventsProcessedOK.WithLabelValues(event).Inc()
		return reconcile.Result{RequeueAfter: ra.after}, nil
	}
	status := "ok"
	if err != nil {
		status = "failed"
		t.cfg.Metrics.EventsProcessedFailed.WithLabelValues(event).Inc()
	} else {
		t.cfg.Metrics.EventsProcessedOK.WithLabelValues(event).Inc()
	}
	t.cfg.Metrics.EventsProcessedTimer.WithLabelValues(status).Observe(t.cfg.Now().Sub(start).Seconds())
	return reconcile.Result{}, err
}

// refresh decides the records of workload w again from one of its pods, whose owner chain (and its
// annotations) is read again on the way. Nothing to do for a workload the tracker does not track.
func (t *Tracker) refresh(ctx context.Context, w owner.Workload, event *string) error {
	ws := t.workloads[w]
	if ws == nil || len(ws.pods) == 0 {
		return nil
	}
	var first types.NamespacedName // the first by name: the same pod every time
	for nn := range ws.pods {
		if first.Name == "" || nn.String() < first.String() {
			first = nn
		}
	}
	return t.reconcilePod(ctx, first, event)
}

func (t *Tracker) reconcilePod(ctx context.Context, nn types.NamespacedName, event *string) error {
	if out, err := t.leftScope(ctx, nn); out || err != nil { // scope.go
		return err
	}
	pod := &corev1.Pod{}
	if err := t.cfg.Reader.Get(ctx, nn, pod); err != nil {
		if !apierrors.IsNotFound(err) {
			return fmt.Errorf("reading pod %s: %w", nn, err)
		}
		*event = metrics.EventPodGone
		return t.podGone(ctx, nn)
	}
	log := t.cfg.Log.WithValues("pod", nn)
	adm, admitted := t.admission(pod.UID)
	containers := t.containers(pod, adm, admitted, log)
	if len(containers) == 0 {
		return nil // not running yet, or nothing recordable
	}
	res, err := t.resolver.Resolve(ctx, pod)
	if errors.Is(err, owner.ErrNotResolved) {
		if w, ok := t.tracked(nn, pod.UID); ok {
			// The owners of a tracked pod vanish before the pod when its workload is deleted (a Job whose
			// CronJob is deleted, for one): keep it where it is, or its records would move to another
			// deployment name on the way out.
			res = owner.Resolution{Workload: w}
		} else {
			t.attempts[nn]++
			if t.attempts[nn] < t.cfg.ResolveAttempts {
				return err
			}
			res = owner.Resolution{Workload: directOwner(pod)}
			log.Info("owner not found; recording under the pod's direct owner", "workload", res.Workload)
		}
	} else if err != nil {
		return err
	}
	delete(t.attempts, nn)

	var moved *podState
	if prev, ok := t.pods[nn]; ok && prev != res.Workload {
		// The pod's owner changed (orphaned, adopted): it leaves the old workload, and keeps its place in the
		// order pods were seen running, and its first sighting.
		if pws := t.workloads[prev]; pws != nil {
			moved = pws.pods[nn]
			delete(pws.pods, nn)
			if err := t.recompute(ctx, prev); err != nil && !isRequeue(err) {
				if moved != nil {
					pws.pods[nn] = moved
				}
				return err
			}
		}
	}
	ws := t.state(res.Workload)
	if res.Found || ws.annotations == nil {
		// While a workload is deleted its owners vanish before its pods: keep the annotations last read whole,
		// so that the records do not change on the way out.
		ws.annotations = res.Annotations
	}
	ps := ws.pods[nn]
	if ps == nil && moved != nil && moved.uid == pod.UID {
		ps = moved
		ws.pods[nn] = ps
	}
	if ps == nil || ps.uid != pod.UID {
		t.seq++
		ps = &podState{uid: pod.UID, seq: t.seq}
		ws.pods[nn] = ps
		source := "informer"
		if admitted {
			source = "webhook"
		}
		ps.source = source
		t.cfg.Metrics.PodsFirstSeen.WithLabelValues(source).Inc()
	}
	ps.started = pod.CreationTimestamp.Time
	if pod.Status.StartTime != nil {
		ps.started = pod.Status.StartTime.Time
	}
	if ps.submitted.IsZero() { // the first sighting's: the webhook's capture expires, the pod stays
		ps.submitted = pod.CreationTimestamp.Time
		if admitted && !adm.Time.IsZero() {
			ps.submitted = adm.Time
		}
	}
	ps.revision = rollout.PodRevisionKey(res.Workload, pod.Labels)
	ps.annotations = ws.sharedAnnotations(pod.Annotations)
	ps.containers = containers
	ps.waiting = waiting(pod)
	t.pods[nn] = res.Workload
	return t.recompute(ctx, res.Workload)
}

// sharedAnnotations returns annotations, or an equal map another pod of the workload holds: the pods of a
// revision carry their template's annotations, so that each distinct set is kept about once instead of once
// per pod. It compares with a few pods only (map order picks them), so that a large workload costs no more. The
// maps are never written.
func (ws *workloadState) sharedAnnotations(annotations map[string]string) map[string]string {
	if len(annotations) == 0 {
		return nil
	}
	compared := 0
	for _, ps := range ws.pods {
		if ps.annotations == nil {
			continue
		}
		if maps.Equal(ps.annotations, annotations) {
			return ps.annotations
		}
		if compared++; compared == 4 {
			break
		}
	}
	return annotations
}

// tracked returns the workload the pod nn with uid is tracked under.
func (t *Tracker) tracked(nn types.NamespacedName, uid types.UID) (owner.Workload, bool) {
	w, ok := t.pods[nn]
	if !ok {
		return owner.Workload{}, false
	}
	ws := t.workloads[w]
	if ws == nil || ws.pods[nn] == nil || ws.pods[nn].uid != uid {
		return owner.Workload{}, false
	}
	return w, true
}

func (t *Tracker) podGone(ctx context.Context, nn types.NamespacedName) error {
	delete(t.attempts, nn)
	w, ok := t.pods[nn]
	if !ok {
		return nil
	}
	if ws := t.workloads[w]; ws != nil {
		if ps := ws.pods[nn]; ps != nil {
			t.forget(ps.uid)
		}
		delete(ws.pods, nn)
	}
	// The pod stays mapped to its workload until the recompute succeeds: the retry of a failed one (the
	// workload's existence could not be read) must recompute again, or the decommission would be lost.
	if err := t.recompute(ctx, w); err != nil {
		return err
	}
	delete(t.pods, nn)
	return nil
}

// recompute decides the records of workload w from the pods it has.
func (t *Tracker) recompute(ctx context.Context, w owner.Workload) error {
	ws := t.workloads[w]
	if ws == nil {
		return nil
	}
	now := t.cfg.Now()
	if len(ws.pods) == 0 {
		return t.lastPodGone(ctx, w, ws, now)
	}
	ws.goneSince = time.Time{}
	rev, haveRev, err := t.currentRevision(ctx, w)
	if err != nil {
		return err
	}
	// Per container, the pods of the current revision decide the digest (the newest of them, should they
	// disagree); for kinds without revisions, or before the revision is known, the newest pod that runs it.
	type best struct {
		pod *podState
		rec record.Record
	}
	newest := map[string]best{}  // among all pods: the container still runs
	current := map[string]best{} // among the current revision's pods
	waiting := map[string]bool{}
	for _, ps := range ws.pods {
		for name := range ps.waiting {
			waiting[name] = true
		}
		for name, r := range ps.containers {
			if b, ok := newest[name]; !ok || newer(ps, b.pod) {
				newest[name] = best{pod: ps, rec: r}
			}
			if haveRev && ps.revision == rev.Key {
				if b, ok := current[name]; !ok || newer(ps, b.pod) {
					current[name] = best{pod: ps, rec: r}
				}
			}
		}
	}
	t.reportPods(w, ws)
	for _, name := range sortedKeys(newest) {
		b, revision := newest[name], int64(0)
		if cb, ok := current[name]; ok {
			b, revision = cb, rev.Number
		} else if _, decided := ws.desired[name]; decided && haveRev {
			continue // the current revision does not run it yet: what was decided stays until it does
		}
		r := b.rec
		md := record.MetadataFrom(t.cfg.Org, append([]map[string]string{b.pod.annotations}, ws.annotations...)...)
		r.Tags, r.RuntimeRisks, r.GitHubRepository = md.Tags, md.RuntimeRisks, md.GitHubRepository
		r.DeploymentName = t.cfg.Template.Render(record.Vars{Namespace: w.Namespace, DeploymentName: w.Name, ContainerName: name, Kind: w.Kind})
		prev, decided := ws.desired[name]
		if decided && record.Equal(prev, r) {
			ws.revision[name] = max(ws.revision[name], revision)
			continue
		}
		ref := refusal{digest: r.Digest, revision: revision, started: b.pod.started}
		if refused, ok := ws.refused[name]; ok && refused == ref {
			continue // refused as older already; tried again when the decision changes
		}
		if err := r.Validate(); err != nil {
			t.cfg.Metrics.ContainersSkipped.WithLabelValues("invalid_record").Inc()
			t.cfg.Log.Info("record not valid for the API; not posted", "workload", w, "container", name, "error", err.Error())
			continue
		}
		if len(md.Skipped) > 0 {
			t.cfg.Log.V(1).Info("annotations ignored", "workload", w, "container", name, "skipped", md.Skipped)
		}
		d := t.decision(r, w, name, b.pod, revision, now)
		d.refusal = ref
		if decided {
			d.prev, d.prevRevision = &prev, ws.revision[name]
		}
		// Taken now, written by the ledger writes; undone should the ledger refuse it as older.
		delete(ws.refused, name)
		ws.desired[name] = r
		ws.revision[name] = revision
		t.hold(r.Key(), w, name)
		t.decide(d)
	}
	for _, name := range sortedKeys(ws.desired) {
		// A container that a pod declares but has not started yet is about to run again (a Recreate
		// rollout, a StatefulSet pod replaced, a pod still in its init containers): its record stays.
		if _, ok := newest[name]; !ok && !waiting[name] {
			t.decommission(w, ws, name, now)
		}
	}
	return nil
}

// newer reports whether pod a started after pod b (or was seen running after it, at the same start).
func newer(a, b *podState) bool {
	return a.started.After(b.started) || (a.started.Equal(b.started) && a.seq > b.seq)
}

// lastPodGone decides the records of w once it has no pod: kept while w exists (scaled to zero), else
// decommissioned. When w's existence cannot be read, the records wait OwnerGoneGrace for a replacement pod.
func (t *Tracker) lastPodGone(ctx context.Context, w owner.Workload, ws *workloadState, now time.Time) error {
	exists := false
	if w.Kind != "Pod" || w.Group != "" {
		var err error
		exists, err = t.resolver.Exists(ctx, w)
		if errors.Is(err, owner.ErrExistenceUnknown) {
			if ws.goneSince.IsZero() {
				ws.goneSince = now
				t.cfg.Log.Info("last pod gone and the workload cannot be read; waiting for a replacement pod before decommissioning",
					"workload", w, "grace", t.cfg.OwnerGoneGrace, "error", err.Error())
			}
			if wait := t.cfg.OwnerGoneGrace - now.Sub(ws.goneSince); wait > 0 {
				t.reportPods(w, ws)
				return &requeueError{after: wait}
			}
			exists, err = false, nil
		}
		if err != nil {
			return err
		}
	}
	if exists {
		t.reportPods(w, ws)
		if !w.Known() {
			// Scaled to zero, or its pods went first while it is being deleted: the deletion of a kind the
			// tracker does not watch is not seen, so look again.
			return &requeueError{after: unwatchedRecheck}
		}
		return nil // scaled to zero: the workload still runs its containers when it scales up
	}
	for _, name := range sortedKeys(ws.desired) {
		t.decommission(w, ws, name, now)
	}
	delete(t.workloads, w)
	t.reportPods(w, ws)
	return nil
}

// decommission ends the record of w's container name. When another live workload holds the same key (two
// workloads render the same deployment name), that one's record is desired again instead: a key is
// decommissioned only when no live workload holds it.
func (t *Tracker) decommission(w owner.Workload, ws *workloadState, name string, now time.Time) {
	r := ws.desired[name]
	k := r.Key()
	if other, container, ok := t.otherHolder(k, w); ok {
		if ows := t.workloads[other]; ows != nil {
			if or, ok := ows.desired[container]; ok {
				d := t.decision(or, other, container, nil, ows.revision[container], now)
				d.desireOlder = true
				t.decide(d)
			}
		}
	} else {
		r.Status = record.StatusDecommissioned
		t.decide(t.decision(r, w, name, nil, 0, now))
	}
	t.release(k, w)
	delete(ws.desired, name)
	delete(ws.revision, name)
	delete(ws.refused, name)
}

// hold records that workload w's container holds key k, and counts a collision when another live workload
// holds it too.
func (t *Tracker) hold(k record.Key, w owner.Workload, container string) {
	hs := t.holders[k]
	if hs == nil {
		hs = map[owner.Workload]string{}
		t.holders[k] = hs
	}
	if _, ok := hs[w]; ok {
		hs[w] = container
		return
	}
	hs[w] = container
	if len(hs) < 2 {
		return
	}
	t.cfg.Metrics.KeyCollisions.Inc()
	if !t.collided[k] {
		t.collided[k] = true
		others := make([]string, 0, len(hs))
		for o := range hs {
			others = append(others, o.String())
		}
		slices.Sort(others)
		t.cfg.Log.Info("several live workloads render the same deployment name; the record shows the last one decided, "+
			"and is decommissioned only when all are gone (add {{kind}} to DN_TEMPLATE to tell them apart)",
			"deploymentName", k.DeploymentName, "workloads", others)
	}
}

func (t *Tracker) release(k record.Key, w owner.Workload) {
	if hs := t.holders[k]; hs != nil {
		delete(hs, w)
		if len(hs) == 0 {
			delete(t.holders, k)
			delete(t.collided, k)
		}
	}
}

// otherHolder returns a live workload other than w that holds k, the first by name.
func (t *Tracker) otherHolder(k record.Key, w owner.Workload) (owner.Workload, string, bool) {
	var best owner.Workload
	var container string
	found := false
	for o, c := range t.holders[k] {
		if o == w {
			continue
		}
		if !found || o.String() < best.String() {
			best, container, found = o, c, true
		}
	}
	return best, container, found
}

// currentRevision returns w's current revision when its kind has revisions and the rollout controller knows it.
func (t *Tracker) currentRevision(ctx context.Context, w owner.Workload) (rollout.Revision, bool, error) {
	if t.cfg.Revisions == nil || !rollout.Revisioned(w) {
		return rollout.Revision{}, false, nil
	}
	rev, ok, err := t.cfg.Revisions.Current(ctx, w)
	if err != nil {
		return rollout.Revision{}, false, fmt.Errorf("reading the current revision of %s: %w", w, err)
	}
	return rev, ok && rev.Key != "", nil
}

// reportPods tells the rollout controller what the pods of each revision of w show.
func (t *Tracker) reportPods(w owner.Workload, ws *workloadState) {
	if t.cfg.Revisions == nil || !rollout.Tracked(w) {
		return
	}
	facts := map[string]rollout.PodFacts{}
	for _, ps := range ws.pods {
		if ps.revision == "" {
			continue
		}
		f := facts[ps.revision]
		if f.Submitted.IsZero() || ps.submitted.Before(f.Submitted) {
			f.Submitted, f.SubmittedBy = ps.submitted, ps.source
		}
		if f.FirstRunning.IsZero() || ps.started.Before(f.FirstRunning) {
			f.FirstRunning = ps.started
		}
		if f.Digests == nil {
			f.Digests = map[string]string{}
		}
		for name, r := range ps.containers {
			f.Digests[name] = r.Digest
		}
		f.Pods++
		facts[ps.revision] = f
	}
	if ws.reported != nil && maps.EqualFunc(facts, ws.reported, equalFacts) {
		return // pod churn that changes nothing the rollouts show: no reconcile of the rollout controller
	}
	ws.reported = facts
	t.cfg.Revisions.PodsChanged(w, facts)
}

func equalFacts(a, b rollout.PodFacts) bool {
	return a.Submitted.Equal(b.Submitted) && a.SubmittedBy == b.SubmittedBy && a.FirstRunning.Equal(b.FirstRunning) &&
		a.Pods == b.Pods && maps.Equal(a.Digests, b.Digests)
}

// requeueError asks Reconcile to look at the request again after a while, without counting a failure.
type requeueError struct{ after time.Duration }

func (e *requeueError) Error() string { return fmt.Sprintf("decided again in %s", e.after) }

// isRequeue reports whether err only asks for the workload to be decided again later.
func isRequeue(err error) bool {
	var ra *requeueError
	return errors.As(err, &ra)
}

// containers returns the recordable containers of a pod that runs or ran (its container status has an
// imageID), keyed by container name; the records are complete except for metadata and deployment name.
func (t *Tracker) containers(pod *corev1.Pod, adm observation.Admission, admitted bool, log logr.Logger) map[string]record.Record {
	ids := map[string]string{}
	for _, s := range slices.Concat(pod.Status.InitContainerStatuses, pod.Status.ContainerStatuses) {
		if s.ImageID != "" {
			ids[s.Name] = s.ImageID
		}
	}
	if len(ids) == 0 {
		return nil
	}
	submitted := map[string]string{}
	for _, c := range slices.Concat(pod.Spec.InitContainers, pod.Spec.Containers) {
		submitted[c.Name] = c.Image
	}
	if admitted { // the webhook's capture; the stored spec wins when an image was updated since
		for _, c := range adm.Containers {
			if _, ok := submitted[c.Name]; !ok {
				submitted[c.Name] = c.Image
			}
		}
	}
	out := map[string]record.Record{}
	for name, imageID := range ids {
		ref, ok := submitted[name]
		if !ok {
			continue
		}
		img, err := record.ParseImage(ref)
		if err != nil {
			t.skip("unparsable_image", log, name, err)
			continue
		}
		running, runningOK := record.RegistryDigest(imageID)
		digest := img.Digest
		switch {
		case digest != "" && runningOK && running != digest:
			t.cfg.Metrics.DigestMismatch.Inc()
			log.Info("running digest differs from the submitted one; recording the submitted digest",
				"container", name, "submitted", digest, "running", running)
		case digest == "" && runningOK:
			digest = running
		case digest == "":
			t.skip("no_digest", log, name, fmt.Errorf("imageID %q carries no registry digest", imageID))
			continue
		}
		out[name] = record.Record{
			Name:                img.Name,
			Digest:              digest,
			Version:             img.Tag,
			Status:              record.StatusDeployed,
			LogicalEnvironment:  t.cfg.LogicalEnvironment,
			PhysicalEnvironment: t.cfg.PhysicalEnvironment,
			Cluster:             t.cfg.Cluster,
		}
	}
	return out
}

// waiting returns the containers that pod declares and has not started yet (their status has no imageID). A
// pod that has finished or is being deleted starts none any more.
func waiting(pod *corev1.Pod) map[string]bool {
	if pod.DeletionTimestamp != nil || pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		return nil
	}
	started := map[string]bool{}
	for _, s := range slices.Concat(pod.Status.InitContainerStatuses, pod.Status.ContainerStatuses) {
		if s.ImageID != "" {
			started[s.Name] = true
		}
	}
	var out map[string]bool
	for _, c := range slices.Concat(pod.Spec.InitContainers, pod.Spec.Containers) {
		if !started[c.Name] {
			if out == nil {
				out = map[string]bool{}
			}
			out[c.Name] = true
		}
	}
	return out
}

func (t *Tracker) skip(reason string, log logr.Logger, container string, err error) {
	t.cfg.Metrics.ContainersSkipped.WithLabelValues(reason).Inc()
	log.V(1).Info("container not recorded", "container", container, "reason", reason, "error", err.Error())
}

func directOwner(pod *corev1.Pod) owner.Workload {
	ref := metav1.GetControllerOfNoCopy(pod)
	if ref == nil {
		return owner.Workload{Kind: "Pod", Namespace: pod.Namespace, Name: pod.Name}
	}
	gv, _ := schema.ParseGroupVersion(ref.APIVersion)
	return owner.Workload{Group: gv.Group, Kind: ref.Kind, Namespace: pod.Namespace, Name: ref.Name}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
