package controller

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/deployment-tracker/deployment-tracker/internal/ledger"
	"github.com/deployment-tracker/deployment-tracker/internal/owner"
	"github.com/deployment-tracker/deployment-tracker/internal/podwatch"
	"github.com/deployment-tracker/deployment-tracker/internal/rollout"
)

// The pod-template-hash of the three templates of the Deployment the tests follow.
const (
	hashV140 = "6d8f7b9c4d" // ghcr.io/octo-org/web:1.4.0
	hashV150 = "58c9d7f6b5" // ghcr.io/octo-org/web:1.5.0
	hashV160 = "7f4b6c8d9e" // ghcr.io/octo-org/web:1.6.0
)

var (
	t0  = time.Date(2025, 6, 2, 9, 0, 0, 0, time.UTC)
	web = owner.Workload{Group: "apps", Kind: "Deployment", Namespace: "shop", Name: "web"}
)

// at returns the time n minutes after t0.
func at(n int) time.Time { return t0.Add(time.Duration(n) * time.Minute) }

// version is the image tag of the template of hash.
func version(hash string) string {
	return map[string]string{hashV140: "1.4.0", hashV150: "1.5.0", hashV160: "1.6.0"}[hash]
}

// templateOf returns the containers of the pod template of hash, init container first, digests empty.
func templateOf(hash string) []rollout.Container {
	return []rollout.Container{
		{Name: "migrate", Image: "ghcr.io/octo-org/web-migrate:" + version(hash), Init: true},
		{Name: "app", Image: "ghcr.io/octo-org/web:" + version(hash)},
	}
}

// deployState is where the Deployment of the tests stands.
type deployState int

const (
	rollingOut       deployState = iota // 1 of 3 replicas updated and ready
	available                           // complete: what kstatus calls Current
	deadlineExceeded                    // Progressing False, ProgressDeadlineExceeded
)

// deployment returns the Deployment shop/web at generation, its template that of hash, in state s.
func deployment(generation int64, hash string, s deployState) *appsv1.Deployment {
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: web.Namespace, Name: web.Name, UID: "uid-web", Generation: generation,
			CreationTimestamp: metav1.NewTime(at(-5)),
		},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](3),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
				Spec: corev1.PodSpec{
					InitContainers: []corev1.Container{{Name: "migrate", Image: "ghcr.io/octo-org/web-migrate:" + version(hash)}},
					Containers:     []corev1.Container{{Name: "app", Image: "ghcr.io/octo-org/web:" + version(hash)}},
				},
			},
		},
		Status: appsv1.DeploymentStatus{ObservedGeneration: generation, Replicas: 3},
	}
	switch s {
	case rollingOut:
		d.Status.UpdatedReplicas, d.Status.ReadyReplicas, d.Status.AvailableReplicas = 1, 1, 1
		d.Status.Conditions = []appsv1.DeploymentCondition{
			{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionTrue, Reason: "MinimumReplicasAvailable"},
			{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionTrue, Reason: "ReplicaSetUpdated"},
		}
	case available:
		d.Status.UpdatedReplicas, d.Status.ReadyReplicas, d.Status.AvailableReplicas = 3, 3, 3
		d.Status.Conditions = []appsv1.DeploymentCondition{
			{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionTrue, Reason: "MinimumReplicasAvailable"},
			{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionTrue, Reason: "NewReplicaSetAvailable"},
		}
	case deadlineExceeded:
		d.Status.UpdatedReplicas, d.Status.ReadyReplicas, d.Status.AvailableReplicas = 1, 1, 1
		d.Status.Conditions = []appsv1.DeploymentCondition{
			{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionTrue, Reason: "MinimumReplicasAvailable"},
			{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionFalse, Reason: "ProgressDeadlineExceeded"},
		}
	}
	return d
}

// controllerRef is a controller owner reference to the workload of apiVersion and kind named name.
func controllerRef(apiVersion, kind, name string) metav1.OwnerReference {
	return metav1.OwnerReference{
		APIVersion: apiVersion, Kind: kind, Name: name, UID: types.UID("uid-" + name), Controller: ptr.To(true),
	}
}

// replicaSet returns the ReplicaSet of the Deployment shop/<deploymentName> for the template of hash,
// numbered revision ("" for none), created at created.
func replicaSet(deploymentName, hash, revision string, created time.Time) *appsv1.ReplicaSet {
	rs := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{
		Namespace: web.Namespace, Name: deploymentName + "-" + hash,
		Labels:            map[string]string{"app": deploymentName, podwatch.LabelPodTemplateHash: hash},
		CreationTimestamp: metav1.NewTime(created),
		OwnerReferences:   []metav1.OwnerReference{controllerRef("apps/v1", "Deployment", deploymentName)},
	}}
	if revision != "" {
		rs.Annotations = map[string]string{podwatch.AnnotationDeploymentRevision: revision}
	}
	return rs
}

// cluster is the manager's cache as the controller reads it: a fake client, replaced at each step of a test
// by one holding what the cluster shows then.
type cluster struct {
	mu sync.Mutex
	r  client.Reader
}

var _ client.Reader = (*cluster)(nil)

// newCluster returns a cluster holding objects.
func newCluster(t *testing.T, objects ...client.Object) *cluster {
	t.Helper()
	c := &cluster{}
	c.set(objects...)
	return c
}

// set makes objects all the cluster shows, with the controller's indexes.
func (c *cluster) set(objects ...client.Object) {
	copies := make([]client.Object, len(objects))
	for i, o := range objects {
		copies[i] = o.DeepCopyObject().(client.Object) // the builder sets resource versions on what it is given
	}
	rs := &metav1.PartialObjectMetadata{}
	rs.SetGroupVersionKind(owner.ReplicaSet)
	r := fake.NewClientBuilder().
		WithScheme(clientgoscheme.Scheme).
		WithObjects(copies...).
		WithIndex(rs, IndexController, indexController).
		WithIndex(&appsv1.ControllerRevision{}, IndexController, indexController).
		Build()
	c.mu.Lock()
	c.r = r
	c.mu.Unlock()
}

func (c *cluster) reader() client.Reader {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.r
}

func (c *cluster) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	return c.reader().Get(ctx, key, obj, opts...)
}

func (c *cluster) List(ctx context.Context, list client.ObjectList, opts ...client.ListOption) error {
	return c.reader().List(ctx, list, opts...)
}

var errLedgerDown = errors.New("ledger unavailable")

// fakeLedger records the rollouts written; it fails the writes of the revisions in failing.
type fakeLedger struct {
	mu      sync.Mutex
	failing []int64
	puts    []rollout.Rollout
	entries []ledger.RolloutEntry
	prunes  []pruneCall
	pruned  chan struct{} // a value per PruneRollouts call, when not nil
}

var _ Ledger = (*fakeLedger)(nil)

type pruneCall struct {
	Keep   int
	MaxAge time.Duration
}

func (l *fakeLedger) PutRollout(_ context.Context, r rollout.Rollout) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if slices.Contains(l.failing, r.Revision) {
		return errLedgerDown
	}
	r.Containers = slices.Clone(r.Containers)
	l.puts = append(l.puts, r)
	return nil
}

func (l *fakeLedger) ListRollouts(context.Context) ([]ledger.RolloutEntry, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.entries), nil
}

func (l *fakeLedger) PruneRollouts(_ context.Context, keep int, maxAge time.Duration) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.prunes = append(l.prunes, pruneCall{Keep: keep, MaxAge: maxAge})
	if l.pruned != nil {
		select {
		case l.pruned <- struct{}{}:
		default:
		}
	}
	return 0, nil
}

// fail makes the writes of revisions fail.
func (l *fakeLedger) fail(revisions []int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.failing = revisions
}

// take returns the rollouts written since the last call.
func (l *fakeLedger) take() []rollout.Rollout {
	l.mu.Lock()
	defer l.mu.Unlock()
	puts := l.puts
	l.puts = nil
	return puts
}

// seeded is one call of Notifier.Seed.
type seeded struct {
	Sink         string
	Rollout      rollout.Rollout
	Acknowledged rollout.Phase
	State        map[string]string
	Synced       bool
}

// forgotten is one call of Notifier.Forget.
type forgotten struct {
	Workload owner.Workload
	Revision int64
}

// fakeNotifier records what the controller hands to the dispatcher, and in which order (calls).
type fakeNotifier struct {
	mu        sync.Mutex
	notified  []rollout.Rollout
	seeded    []seeded
	forgotten []forgotten
	calls     []string
}

var _ Notifier = (*fakeNotifier)(nil)

func (n *fakeNotifier) Notify(r rollout.Rollout) {
	n.mu.Lock()
	defer n.mu.Unlock()
	r.Containers = slices.Clone(r.Containers)
	n.notified = append(n.notified, r)
	n.calls = append(n.calls, "Notify "+r.Workload.String()+" "+itoa(r.Revision)+" "+string(r.Phase))
}

func (n *fakeNotifier) Seed(sinkName string, r rollout.Rollout, acknowledged rollout.Phase, state map[string]string, synced bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.seeded = append(n.seeded, seeded{Sink: sinkName, Rollout: r, Acknowledged: acknowledged, State: state, Synced: synced})
}

func (n *fakeNotifier) Forget(w owner.Workload, revision int64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.forgotten = append(n.forgotten, forgotten{Workload: w, Revision: revision})
	n.calls = append(n.calls, "Forget "+w.String()+" "+itoa(revision))
}

// take returns the rollouts notified and the revisions forgotten since the last call.
func (n *fakeNotifier) take() ([]rollout.Rollout, []forgotten) {
	n.mu.Lock()
	defer n.mu.Unlock()
	notified, forgot := n.notified, n.forgotten
	n.notified, n.forgotten = nil, nil
	return notified, forgot
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// clock is the controller's Now, set by the test.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// env is a Controller with fakes around it, its clock at t0 when it was created.
type env struct {
	cluster  *cluster
	ledger   *fakeLedger
	notifier *fakeNotifier
	recorder *record.FakeRecorder
	clock    *clock
	c        *Controller
}

// newEnv returns an env whose controller is configured by configure (nil: the defaults).
func newEnv(t *testing.T, configure func(*Config)) *env {
	t.Helper()
	e := &env{
		cluster:  newCluster(t),
		ledger:   &fakeLedger{pruned: make(chan struct{}, 1)},
		notifier: &fakeNotifier{},
		recorder: record.NewFakeRecorder(100),
		clock:    &clock{now: t0},
	}
	cfg := Config{
		Reader:            e.cluster,
		Ledger:            e.ledger,
		Notifier:          e.notifier,
		Sinks:             []string{"github", "slack"},
		Recorder:          e.recorder,
		ExcludeNamespaces: []string{"kube-system"},
		Now:               e.clock.Now,
	}
	if configure != nil {
		configure(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatalf("New() error = %v", err)
	}
	e.c = c
	return e
}

// events returns the Events emitted since the last call.
func (e *env) events() []string {
	var out []string
	for {
		select {
		case ev := <-e.recorder.Events:
			out = append(out, ev)
		default:
			return out
		}
	}
}

// enqueued returns the workloads on the controller's channel, in order, emptying it.
func (e *env) enqueued() []owner.Workload {
	var out []owner.Workload
	for {
		select {
		case ev := <-e.c.changed:
			out = append(out, ev.Object)
		default:
			return out
		}
	}
}

// start runs the controller's Start until the test ends and waits until it resumed from the ledger and pruned
// it once: Reconcile runs from then on, and nothing else happens in the background for ten minutes.
func (e *env) start(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	var err error
	go func() {
		defer close(done)
		err = e.c.Start(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		if err != nil {
			t.Errorf("Start() error = %v", err)
		}
	})
	select {
	case <-e.ledger.pruned:
	case <-done:
		t.Fatal("Start() returned before pruning the ledger")
	}
}
