package tracker

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/deployment-tracker/deployment-tracker/internal/metrics"
	"github.com/deployment-tracker/deployment-tracker/internal/owner"
	"github.com/deployment-tracker/deployment-tracker/internal/podwatch"
	"github.com/deployment-tracker/deployment-tracker/internal/record"
	"github.com/deployment-tracker/deployment-tracker/internal/rollout"
)

// BenchmarkReconcilePod measures one Reconcile of a pod update, the tracker's most frequent request: the
// Deployment web runs N pods of one ReplicaSet (webPod, containers v1), all tracked and decided, and every
// iteration reconciles the middle pod after a change of its status (a container restarted, as the kubelet
// reports it), which decides nothing new. revisions=off runs without Config.Revisions (the newest pod decides);
// revisions=on with a rollout controller that knows the current revision (the pods' ReplicaSet) and hears
// every PodsChanged. Reads are served as the manager's cache serves them: the objects the informers hold,
// pods unpacked from their compact form, deep-copied on every Get (see cacheStore).
func BenchmarkReconcilePod(b *testing.B) {
	for _, n := range []int{10, 100} {
		for _, revisions := range []bool{false, true} {
			name := fmt.Sprintf("pods=%d/revisions=off", n)
			if revisions {
				name = fmt.Sprintf("pods=%d/revisions=on", n)
			}
			b.Run(name, func(b *testing.B) { benchmarkReconcilePod(b, n, revisions) })
		}
	}
}

func benchmarkReconcilePod(b *testing.B, n int, revisions bool) {
	ctx := b.Context()
	objects := []client.Object{webDeployment(nil), webRS(hash1, nil)}
	pods := make([]*corev1.Pod, n)
	for i := range pods {
		pods[i] = webPod(hash1, fmt.Sprintf("%05d", i), time.Duration(i)*time.Second, v1)
		objects = append(objects, pods[i])
	}
	target := pods[n/2]
	c := fake.NewClientBuilder().WithScheme(clientgoscheme.Scheme).WithObjects(objects...).Build()
	store, err := newCacheStore(ctx, c, objects...)
	if err != nil {
		b.Fatal(err)
	}
	// The pod's two states the iterations alternate between, as the informer stores them: before and after
	// the kubelet's status update.
	var states [2]client.Object
	if states[0], err = store.load(ctx, c, target); err != nil {
		b.Fatal(err)
	}
	restarted := target.DeepCopy()
	if err := c.Get(ctx, client.ObjectKeyFromObject(target), restarted); err != nil {
		b.Fatal(err)
	}
	restarted.Status.ContainerStatuses[0].RestartCount++
	if err := c.Status().Update(ctx, restarted); err != nil {
		b.Fatal(err)
	}
	if states[1], err = store.load(ctx, c, target); err != nil {
		b.Fatal(err)
	}

	desirer := &countingDesirer{}
	cfg := Config{
		Reader:              store,
		Desirer:             desirer,
		Org:                 "octo-org",
		LogicalEnvironment:  "production",
		PhysicalEnvironment: "eu-west-1",
		Cluster:             "prod-1",
		Metrics:             metrics.New(prometheus.NewRegistry()),
		Now:                 func() time.Time { return now },
	}
	var revs *countingRevisions
	if revisions {
		revs = &countingRevisions{fakeRevisions: newFakeRevisions()}
		revs.current[deploymentWeb] = rollout.Revision{Number: 1, Key: hash1, Created: now}
		cfg.Revisions = revs
	}
	tr, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	for _, p := range pods {
		if _, err := tr.Reconcile(ctx, podReq(p.Name)); err != nil {
			b.Fatal(err)
		}
	}
	if desirer.calls != len(v1) {
		b.Fatalf("setup: %d records desired, want %d (one per container)", desirer.calls, len(v1))
	}
	desirer.calls = 0
	reports := revs.takeCalls()

	req := podReq(target.Name)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		store.put(states[i%2])
		if _, err := tr.Reconcile(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if desirer.calls != 0 {
		b.Fatalf("%d records desired over %d unchanged pod updates, want none", desirer.calls, b.N)
	}
	if revisions {
		calls, last := revs.takeCalls(), revs.last[hash1]
		// The facts do not change with a restart count: the rollout controller is not told again.
		if calls != 0 || last.Pods != n {
			b.Fatalf("PodsChanged called %d times over %d unchanged reconciles (setup: %d), the last with %d pods of %s; want none, with %d",
				calls, b.N, reports, last.Pods, hash1, n)
		}
	}
}

// countingDesirer is the dispatcher of a benchmark: it counts the records desired, keeping none.
type countingDesirer struct{ calls int }

func (d *countingDesirer) Desire(record.Record, time.Time) { d.calls++ }

// countingRevisions is fakeRevisions (Current answers what current holds) whose PodsChanged keeps only a
// count and the last facts, so that a benchmark allocates nothing of its own per call.
type countingRevisions struct {
	*fakeRevisions
	calls int
	last  map[string]rollout.PodFacts
}

func (r *countingRevisions) PodsChanged(_ owner.Workload, facts map[string]rollout.PodFacts) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	r.last = facts
}

// takeCalls returns the number of PodsChanged calls since the last takeCalls (0 on a nil r).
func (r *countingRevisions) takeCalls() int {
	if r == nil {
		return 0
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	n := r.calls
	r.calls = 0
	return n
}

// cacheStore serves reads as the manager's cache does between two events: each object once through the
// cache transform (as the informer stores it), then on every Get a pod unpacked from its compact form
// (podwatch.NewInformer's store) and deep-copied, owner metadata deep-copied. The fake client itself would
// round-trip every Get through JSON, which costs several times the reconcile.
type cacheStore struct{ objects map[cacheKey]client.Object }

type cacheKey struct {
	gvk schema.GroupVersionKind
	nn  types.NamespacedName
}

var _ client.Reader = (*cacheStore)(nil)

// newCacheStore returns a cacheStore holding objects as read from c: pods whole, the others as the metadata
// of the owners.
func newCacheStore(ctx context.Context, c client.Client, objects ...client.Object) (*cacheStore, error) {
	s := &cacheStore{objects: map[cacheKey]client.Object{}}
	for _, o := range objects {
		if _, err := s.load(ctx, c, o); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// load reads obj's current state from c through the cache transform, stores it and returns it.
func (s *cacheStore) load(ctx context.Context, c client.Client, obj client.Object) (client.Object, error) {
	if _, isPod := obj.(*corev1.Pod); isPod {
		pod := &corev1.Pod{}
		if err := c.Get(ctx, client.ObjectKeyFromObject(obj), pod); err != nil {
			return nil, err
		}
		p, err := podwatch.Strip(pod)
		if err != nil {
			return nil, err
		}
		s.put(p.(*podwatch.Pod))
		return p.(*podwatch.Pod), nil
	}
	gvk, err := apiutil.GVKForObject(obj, c.Scheme())
	if err != nil {
		return nil, err
	}
	into := &metav1.PartialObjectMetadata{}
	into.SetGroupVersionKind(gvk)
	if err := (cacheReader{c}).Get(ctx, client.ObjectKeyFromObject(obj), into); err != nil {
		return nil, err
	}
	if keyOf(into).gvk.Kind == "" {
		return nil, fmt.Errorf("cache store: %s read without its kind", obj.GetName())
	}
	s.put(into)
	return into, nil
}

// put stores obj as the informer does on an event: it replaces what the store held.
func (s *cacheStore) put(obj client.Object) { s.objects[keyOf(obj)] = obj }

func keyOf(obj client.Object) cacheKey {
	gvk := obj.GetObjectKind().GroupVersionKind()
	switch obj.(type) {
	case *corev1.Pod, *podwatch.Pod:
		gvk = corev1.SchemeGroupVersion.WithKind("Pod")
	}
	return cacheKey{gvk: gvk, nn: client.ObjectKeyFromObject(obj)}
}

func (s *cacheStore) Get(_ context.Context, key client.ObjectKey, obj client.Object, _ ...client.GetOption) error {
	k := keyOf(obj)
	k.nn = key
	src, ok := s.objects[k]
	if !ok {
		return apierrors.NewNotFound(schema.GroupResource{Group: k.gvk.Group, Resource: k.gvk.Kind}, key.Name)
	}
	switch o := obj.(type) {
	case *corev1.Pod:
		*o = *src.(*podwatch.Pod).Unpack().DeepCopy()
	case *metav1.PartialObjectMetadata:
		*o = *src.(*metav1.PartialObjectMetadata).DeepCopy()
	default:
		return fmt.Errorf("cache store: cannot read a %T", obj)
	}
	return nil
}

func (s *cacheStore) List(context.Context, client.ObjectList, ...client.ListOption) error {
	return errors.New("cache store: List is not served")
}
