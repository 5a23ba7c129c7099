package tracker

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	v1alpha1 "github.com/deployment-tracker/deployment-tracker/internal/apis/records/v1alpha1"
	"github.com/deployment-tracker/deployment-tracker/internal/ledger"
	"github.com/deployment-tracker/deployment-tracker/internal/observation"
	"github.com/deployment-tracker/deployment-tracker/internal/podwatch"
	"github.com/deployment-tracker/deployment-tracker/internal/record"
)

// scopedReader reads the cluster as the manager's cache of a scoped install does: pods and owner metadata
// keep the labels the workload selector names (podwatch.Keeping), Namespace metadata its labels
// (podwatch.StripNamespace).
type scopedReader struct {
	client.Reader
	transform func(any) (any, error)
}

func (c scopedReader) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	if err := c.Reader.Get(ctx, key, obj, opts...); err != nil {
		return err
	}
	transform := c.transform
	if m, ok := obj.(*metav1.PartialObjectMetadata); ok && m.Kind == "Namespace" {
		transform = podwatch.StripNamespace
	}
	out, err := transform(obj)
	if err != nil {
		return fmt.Errorf("cache transform: %w", err)
	}
	switch o := obj.(type) {
	case *corev1.Pod:
		*o = *out.(*podwatch.Pod).Unpack()
	case *metav1.PartialObjectMetadata:
		*o = *out.(*metav1.PartialObjectMetadata)
	}
	return nil
}

// scoped configures the tracker with scope s, reading through a cache that keeps what s reads.
func scoped(s Scope) func(*Config) {
	return func(c *Config) {
		var keys []string
		if s.WorkloadSelector != nil {
			reqs, _ := s.WorkloadSelector.Requirements()
			for _, r := range reqs {
				keys = append(keys, r.Key())
			}
		}
		c.Reader = scopedReader{Reader: c.Reader.(cacheReader).Reader, transform: podwatch.Keeping(keys...)}
		c.Scope = s
	}
}

func mustSelector(t *testing.T, s string) labels.Selector {
	t.Helper()
	sel, err := labels.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return sel
}

func namespace(name string, lbls map[string]string) *corev1.Namespace {
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: lbls}}
}

func labelled[T client.Object](obj T, lbls map[string]string) T {
	obj.SetLabels(lbls)
	return obj
}

func TestReconcileScope(t *testing.T) {
	pod1 := webPod(hash1, "aaaaa", 0, v1)
	ignoredPod := webPod(hash1, "aaaaa", 0, v1, annotated(AnnotationIgnore, "true"))
	web := func(lbls map[string]string, annotations map[string]string) *appsv1.Deployment {
		return labelled(webDeployment(annotations), lbls)
	}
	ignore := map[string]string{AnnotationIgnore: "true"}
	shardA, shardB := map[string]string{"shard": "a"}, map[string]string{"shard": "b"}
	running := []record.Record{webApp1, webMigrate, webProxy}
	for _, sc := range []scenario{
		{
			name:    "ignore annotation on the pod: no records",
			objects: []client.Object{webDeployment(nil), webRS(hash1, nil), ignoredPod},
			steps: []step{
				{name: "running", req: podReq(pod1.Name)},
				{name: "deleted", do: []action{remove(ignoredPod)}, req: podReq(pod1.Name)},
			},
		},
		{
			name:    "ignore annotation on the Deployment: no records",
			objects: []client.Object{webDeployment(ignore), webRS(hash1, nil), pod1},
			steps:   []step{{name: "running", req: podReq(pod1.Name)}},
		},
		{
			name:    "ignore annotation on the ReplicaSet: no records",
			objects: []client.Object{webDeployment(nil), webRS(hash1, ignore), pod1},
			steps:   []step{{name: "running", req: podReq(pod1.Name)}},
		},
		{
			name:     "annotated at runtime: no longer tracked, nothing decommissioned when it goes",
			counters: map[string]float64{"first_seen/informer": 1},
			objects:  []client.Object{webDeployment(nil), webRS(hash1, nil), pod1},
			steps: []step{
				{name: "running", req: podReq(pod1.Name), want: running},
				{name: "Deployment annotated", do: []action{change(webDeployment(nil), func(d *appsv1.Deployment) { d.Annotations = ignore })}, req: podReq(pod1.Name)},
				{name: "pod deleted", do: []action{remove(pod1)}, req: podReq(pod1.Name)},
				{name: "Deployment deleted", do: []action{remove(webDeployment(nil))}, req: workloadReq("apps", "Deployment", "web")},
			},
		},
		{
			name:      "workload selector: a Deployment not selected gets no records until it is",
			counters:  map[string]float64{"first_seen/informer": 1},
			configure: scoped(Scope{WorkloadSelector: mustSelector(t, "shard=a")}),
			objects:   []client.Object{web(shardB, nil), webRS(hash1, nil), pod1},
			steps: []step{
				{name: "not selected", req: podReq(pod1.Name)},
				{name: "relabelled", do: []action{change(webDeployment(nil), func(d *appsv1.Deployment) { d.Labels = shardA })}, req: podReq(pod1.Name), want: running},
			},
		},
		{
			name:      "workload selector: a Deployment that leaves the scope keeps its records",
			counters:  map[string]float64{"first_seen/informer": 1},
			configure: scoped(Scope{WorkloadSelector: mustSelector(t, "shard=a")}),
			objects:   []client.Object{web(shardA, nil), webRS(hash1, nil), pod1},
			steps: []step{
				{name: "selected", req: podReq(pod1.Name), want: running},
				{name: "relabelled", do: []action{change(webDeployment(nil), func(d *appsv1.Deployment) { d.Labels = shardB })}, req: podReq(pod1.Name)},
				{name: "pod deleted", do: []action{remove(pod1)}, req: podReq(pod1.Name)},
				{name: "Deployment deleted", do: []action{remove(webDeployment(nil))}, req: workloadReq("apps", "Deployment", "web")},
			},
		},
		{
			name:      "workload selector: a selected Deployment deleted first is decommissioned (its labels are not known then)",
			counters:  map[string]float64{"first_seen/informer": 1},
			configure: scoped(Scope{WorkloadSelector: mustSelector(t, "shard=a")}),
			objects:   []client.Object{web(shardA, nil), webRS(hash1, nil), pod1},
			steps: []step{
				{name: "selected", req: podReq(pod1.Name), want: running},
				{name: "owners gone, then the pod", do: []action{remove(webDeployment(nil), webRS(hash1, nil), pod1)}, req: podReq(pod1.Name),
					want: decommissioned(webApp1, webMigrate, webProxy)},
			},
		},
		{
			name:      "workload selector on a bare pod: its own labels",
			counters:  map[string]float64{"first_seen/informer": 1},
			configure: scoped(Scope{WorkloadSelector: mustSelector(t, "shard=a")}),
			objects:   []client.Object{newPod("debug", runs(0, appV1)), newPod("tool", runs(0, appV1), func(p *corev1.Pod) { p.Labels["shard"] = "a" })},
			steps: []step{
				{name: "not selected", req: podReq("debug")},
				{name: "selected", req: podReq("tool"), want: []record.Record{deployed("shop/tool/app", "ghcr.io/octo-org/web", "1.4.2", dApp1)}},
			},
		},
		{
			name:      "namespace selector: the pods of a namespace that leaves it keep their records",
			counters:  map[string]float64{"first_seen/informer": 2},
			configure: scoped(Scope{NamespaceSelector: mustSelector(t, "shard=a")}),
			objects:   []client.Object{namespace(ns, shardA), webDeployment(nil), webRS(hash1, nil), pod1},
			steps: []step{
				{name: "selected", req: podReq(pod1.Name), want: running},
				{name: "namespace relabelled", do: []action{change(namespace(ns, nil), func(n *corev1.Namespace) { n.Labels = shardB })}, req: podReq(pod1.Name)},
				{name: "pod deleted", do: []action{remove(pod1)}, req: podReq(pod1.Name)},
				{name: "Deployment deleted", do: []action{remove(webDeployment(nil))}, req: workloadReq("apps", "Deployment", "web")},
				{name: "pod back, namespace selected again", do: []action{create(pod1), create(webDeployment(nil)),
					change(namespace(ns, nil), func(n *corev1.Namespace) { n.Labels = shardA })}, req: podReq(pod1.Name), want: running},
			},
		},
		{
			name:      "namespaced install: pods of other namespaces are not tracked",
			configure: scoped(Scope{Namespace: "payments"}),
			objects:   []client.Object{webDeployment(nil), webRS(hash1, nil), pod1},
			steps:     []step{{name: "running", req: podReq(pod1.Name)}},
		},
	} {
		t.Run(sc.name, func(t *testing.T) { run(t, sc) })
	}
}

// A namespaced tracker behind a cluster-wide webhook: admissions of other namespaces are dropped without
// using the hand-off buffer.
func TestObserveScope(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.AdmissionBuffer = 1; c.Scope = Scope{Namespace: ns} })
	for range 3 {
		if !e.tracker.Observe(observation.Admission{Namespace: "other", Name: "p", UID: "u", Operation: observation.Create}) {
			t.Fatal("Observe(other namespace) = false, want true (dropped, not refused)")
		}
	}
	if e.tracker.InScope("other") || !e.tracker.InScope(ns) {
		t.Errorf("InScope(other), InScope(%s) = %t, %t; want false, true", ns, e.tracker.InScope("other"), e.tracker.InScope(ns))
	}
	if n := len(e.tracker.admitted); n != 0 {
		t.Errorf("%d admissions queued, want 0", n)
	}
}

// After a change of scope, resume leaves the ledger entries of workloads out of it as they are: nothing is
// decommissioned or desired for them, and nothing is read from the API server.
func TestResumeOutOfScope(t *testing.T) {
	pgWorkload := v1alpha1.Workload{Group: "postgresql.cnpg.io", Kind: "Cluster", Namespace: ns, Name: "pg"}
	pgRecord := deployed("shop/pg/postgres", "ghcr.io/octo-org/postgres", "16.2", dOther)
	pgEntry := ledger.Entry{Want: pgRecord, Meta: ledger.Meta{Workload: pgWorkload, Container: "postgres", PodStarted: t0, Source: v1alpha1.SourceInformer},
		Have: &pgRecord, Synced: true}
	unsynced := entry(webProxy, 0, nil)
	entries := []ledger.Entry{syncedEntry(webApp1, 0), syncedEntry(webMigrate, 0), unsynced, pgEntry}
	// The pod runs a newer digest than the ledger's: a tracker that adopted the workload would desire it.
	pod2 := webPod(hash2, "bbbbb", 5*time.Minute, v2)
	tests := []struct {
		name      string
		configure func(*Config)
		objects   []client.Object // what the cache holds
		// wantAPICalls: resolving the pod of the custom kind reads it once, to learn its labels (the
		// resolution is reused by the reconcile); its existence is never read.
		wantAPICalls int32
	}{
		{
			name:      "namespace excluded: the cache holds nothing of it",
			configure: func(c *Config) { c.ExcludeNamespaces = []string{ns} },
		},
		{
			name:      "install made namespaced: the cache holds nothing of the namespace",
			configure: func(c *Config) { c.Scope = Scope{Namespace: "payments"} },
		},
		{
			name:      "namespace no longer selected",
			configure: scoped(Scope{NamespaceSelector: mustSelector(t, "shard=a")}),
			objects:   []client.Object{namespace(ns, map[string]string{"shard": "b"}), webDeployment(nil), webRS(hash2, nil), pod2},
		},
		{
			name:      "workload no longer selected; the custom kind is let go with its pods",
			configure: scoped(Scope{WorkloadSelector: mustSelector(t, "shard=a")}),
			objects: []client.Object{labelled(webDeployment(nil), map[string]string{"shard": "b"}), webRS(hash2, nil), pod2,
				newPod("pg-1", runs(0, ctr{name: "postgres", image: "ghcr.io/octo-org/postgres:16.2", imageID: "ghcr.io/octo-org/postgres@" + dOther}),
					controlledBy("postgresql.cnpg.io/v1", "Cluster", "pg"))},
			wantAPICalls: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var apiCalls atomic.Int32
			mapper := apimeta.NewDefaultRESTMapper(nil)
			pgGVK := schema.GroupVersionKind{Group: "postgresql.cnpg.io", Version: "v1", Kind: "Cluster"}
			mapper.Add(pgGVK, apimeta.RESTScopeNamespace)
			pg := &unstructured.Unstructured{}
			pg.SetGroupVersionKind(pgGVK)
			pg.SetNamespace(ns)
			pg.SetName("pg")
			pg.SetLabels(map[string]string{"shard": "b"})
			api := fake.NewClientBuilder().WithScheme(clientgoscheme.Scheme).WithRESTMapper(mapper).WithObjects(pg).
				WithInterceptorFuncs(interceptor.Funcs{Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
					apiCalls.Add(1)
					return c.Get(ctx, key, obj, opts...)
				}}).Build()
			l, s := newFakeLedger(entries...), &seeder{}
			e := newEnv(t, func(c *Config) {
				withLedger(l, s)(c)
				c.APIReader, c.Mapper = api, mapper
				tt.configure(c)
			}, tt.objects...)
			startResumed(t, e)
			e.settle(t)
			if got := e.rec.take(); len(got) != 0 {
				t.Errorf("desired %v, want nothing: the workloads left the scope, they did not stop", got)
			}
			if puts := l.takePuts(); len(puts) != 0 {
				t.Errorf("ledger writes %v, want none", puts)
			}
			if n := apiCalls.Load(); n != tt.wantAPICalls {
				t.Errorf("%d reads of the API server, want %d", n, tt.wantAPICalls)
			}
			// The dispatcher still learns what the sink holds.
			if diff := cmp.Diff([]record.Record{webApp1, webMigrate, pgRecord}, s.seeds(), sortRecords, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("seeds (-want +got):\n%s", diff)
			}
			e.tracker.mu.Lock()
			defer e.tracker.mu.Unlock()
			if len(e.tracker.workloads) != 0 || len(e.tracker.holders) != 0 {
				t.Errorf("tracked after resume: %d workloads, %d keys; want none", len(e.tracker.workloads), len(e.tracker.holders))
			}
		})
	}
}
