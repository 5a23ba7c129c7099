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
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/deployment-tracker/deployment-tracker/internal/metrics"
	"github.com/deployment-tracker/deployment-tracker/internal/observation"
	"github.com/deployment-tracker/deployment-tracker/internal/owner"
	"github.com/deployment-tracker/deployment-tracker/internal/podwatch"
	"github.com/deployment-tracker/deployment-tracker/internal/record"
)

// The tracker is driven the way its controller drives it: the cluster (a fake client) changes, then the request
// the informer would enqueue is reconciled. Reads go through podwatch.Strip, as they do through the manager's
// cache, and the recorder is what the dispatcher would receive.

const ns = "shop"

var (
	t0  = time.Date(2025, 6, 1, 11, 0, 0, 0, time.UTC) // pods start at t0 + offset
	now = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC) // the tracker's clock
)

func digest(c byte) string { return "sha256:" + strings.Repeat(string(c), 64) }

var (
	dMigrate = digest('1')
	dApp1    = digest('a')
	dApp2    = digest('b')
	dEnvoy   = digest('e')
	dOther   = digest('f')
)

// ctr is a container of a pod: its image as written in the spec, and the imageID of its status once started
// ("" while it has not started).
type ctr struct {
	name, image, imageID string
	init                 bool
}

func (c ctr) notStarted() ctr { c.imageID = ""; return c }

var (
	migrate = ctr{name: "migrate", image: "ghcr.io/octo-org/web-migrate:1.4.2", imageID: "ghcr.io/octo-org/web-migrate@" + dMigrate, init: true}
	appV1   = ctr{name: "app", image: "ghcr.io/octo-org/web:1.4.2", imageID: "ghcr.io/octo-org/web@" + dApp1}
	appV2   = ctr{name: "app", image: "ghcr.io/octo-org/web:1.5.0", imageID: "ghcr.io/octo-org/web@" + dApp2}
	proxy   = ctr{name: "proxy", image: "docker.io/envoyproxy/envoy:v1.30.2", imageID: "docker-pullable://docker.io/envoyproxy/envoy@" + dEnvoy}
	v1      = []ctr{migrate, appV1, proxy}
	v2      = []ctr{migrate, appV2, proxy}
)

type podOpt func(*corev1.Pod)

func newPod(name string, opts ...podOpt) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: ns, Name: name, UID: types.UID("uid-" + name), CreationTimestamp: metav1.NewTime(t0),
			Labels:      map[string]string{"app": "web"},
			Annotations: map[string]string{"kubectl.kubernetes.io/default-container": "app"},
		},
		Status: corev1.PodStatus{Phase: corev1.PodPending},
	}
	for _, o := range opts {
		o(p)
	}
	return p
}

func controlledBy(apiVersion, kind, name string) podOpt {
	return func(p *corev1.Pod) {
		p.OwnerReferences = append(p.OwnerReferences, metav1.OwnerReference{
			APIVersion: apiVersion, Kind: kind, Name: name, UID: types.UID("uid-" + name),
			Controller: new(true), BlockOwnerDeletion: new(true),
		})
	}
}

// runs gives the pod its containers; the kubelet started it at t0+at. It is Running once every container has
// started.
func runs(at time.Duration, cs ...ctr) podOpt {
	return func(p *corev1.Pod) {
		p.Status.StartTime = &metav1.Time{Time: t0.Add(at)}
		p.Spec.Containers, p.Spec.InitContainers = nil, nil
		p.Status.ContainerStatuses, p.Status.InitContainerStatuses = nil, nil
		running := true
		for _, c := range cs {
			spec := corev1.Container{Name: c.name, Image: c.image, Env: []corev1.EnvVar{{Name: "LOG_LEVEL", Value: "info"}}}
			st := corev1.ContainerStatus{Name: c.name, Image: c.image, ImageID: c.imageID}
			if c.imageID == "" {
				running = false
				st.State.Waiting = &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}
			} else {
				st.State.Running = &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(t0.Add(at + time.Second))}
				st.ContainerID = "containerd://" + strings.Repeat("0", 64)
			}
			if c.init {
				p.Spec.InitContainers = append(p.Spec.InitContainers, spec)
				p.Status.InitContainerStatuses = append(p.Status.InitContainerStatuses, st)
			} else {
				p.Spec.Containers = append(p.Spec.Containers, spec)
				p.Status.ContainerStatuses = append(p.Status.ContainerStatuses, st)
			}
		}
		p.Status.Phase = corev1.PodPending
		if running {
			p.Status.Phase = corev1.PodRunning
		}
	}
}

// declares gives a pod its containers before the kubelet has started it.
func declares(cs ...ctr) podOpt {
	return func(p *corev1.Pod) {
		for _, c := range cs {
			spec := corev1.Container{Name: c.name, Image: c.image}
			if c.init {
				p.Spec.InitContainers = append(p.Spec.InitContainers, spec)
			} else {
				p.Spec.Containers = append(p.Spec.Containers, spec)
			}
		}
	}
}

func annotated(kv ...string) podOpt {
	return func(p *corev1.Pod) {
		for i := 0; i < len(kv); i += 2 {
			p.Annotations[kv[i]] = kv[i+1]
		}
	}
}

func withUID(uid string) podOpt { return func(p *corev1.Pod) { p.UID = types.UID(uid) } }

func inNamespace(n string) podOpt { return func(p *corev1.Pod) { p.Namespace = n } }

func withFinalizer() podOpt {
	return func(p *corev1.Pod) { p.Finalizers = append(p.Finalizers, "example.com/drain") }
}

// webPod is a pod of the Deployment web, created by its ReplicaSet web-<hash>.
func webPod(hash, suffix string, at time.Duration, cs []ctr, opts ...podOpt) *corev1.Pod {
	opts = append([]podOpt{
		controlledBy("apps/v1", "ReplicaSet", "web-"+hash),
		func(p *corev1.Pod) { p.Labels[appsv1.DefaultDeploymentUniqueLabelKey] = hash },
		runs(at, cs...),
	}, opts...)
	return newPod("web-"+hash+"-"+suffix, opts...)
}

const (
	hash1 = "7d4b9c6f8"
	hash2 = "5f6d7c8b9"
)

func objectMeta(name string, annotations map[string]string, owners ...metav1.OwnerReference) metav1.ObjectMeta {
	return metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID("uid-" + name), Annotations: annotations, OwnerReferences: owners}
}

func controllerRef(apiVersion, kind, name string) metav1.OwnerReference {
	return metav1.OwnerReference{APIVersion: apiVersion, Kind: kind, Name: name, UID: types.UID("uid-" + name), Controller: new(true)}
}

func webDeployment(annotations map[string]string) *appsv1.Deployment {
	return &appsv1.Deployment{ObjectMeta: objectMeta("web", annotations)}
}

func webRS(hash string, annotations map[string]string) *appsv1.ReplicaSet {
	return &appsv1.ReplicaSet{ObjectMeta: objectMeta("web-"+hash, annotations, controllerRef("apps/v1", "Deployment", "web"))}
}

// Records as the dispatcher should receive them.

func deployed(deploymentName, name, version, digest string) record.Record {
	return record.Record{
		Name: name, Digest: digest, Version: version, Status: record.StatusDeployed,
		LogicalEnvironment: "production", PhysicalEnvironment: "eu-west-1", Cluster: "prod-1",
		DeploymentName: deploymentName,
	}
}

func decommissioned(rs ...record.Record) []record.Record {
	out := make([]record.Record, len(rs))
	for i, r := range rs {
		r.Status = record.StatusDecommissioned
		out[i] = r
	}
	return out
}

func withMetadata(r record.Record, tags map[string]string, risks []string, repo string) record.Record {
	r.Tags, r.RuntimeRisks, r.GitHubRepository = tags, risks, repo
	return r
}

var (
	webApp1    = deployed("shop/web/app", "ghcr.io/octo-org/web", "1.4.2", dApp1)
	webApp2    = deployed("shop/web/app", "ghcr.io/octo-org/web", "1.5.0", dApp2)
	webMigrate = deployed("shop/web/migrate", "ghcr.io/octo-org/web-migrate", "1.4.2", dMigrate)
	webProxy   = deployed("shop/web/proxy", "docker.io/envoyproxy/envoy", "v1.30.2", dEnvoy)
)

// The fakes.

// recorder is the dispatcher as the tracker sees it. Like the dispatcher's sink it refuses records the API
// would reject; every decision is stamped with the tracker's clock.
type recorder struct {
	t   *testing.T
	mu  sync.Mutex
	got []record.Record
}

func (r *recorder) Desire(rec record.Record, observed time.Time) {
	if err := rec.Validate(); err != nil {
		r.t.Errorf("Desire(%+v): the API would reject the record: %v", rec, err)
	}
	if !observed.Equal(now) {
		r.t.Errorf("Desire(%s): observed = %v, want the tracker's clock %v", rec.DeploymentName, observed, now)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, rec)
}

func (r *recorder) take() []record.Record {
	r.mu.Lock()
	defer r.mu.Unlock()
	got := r.got
	r.got = nil
	return got
}

// cacheReader reads the cluster as the manager's cache does: objects pass through the cache transform, and
// pods, kept compact, are read as the pods they stand for (podwatch.NewInformer).
type cacheReader struct{ client.Reader }

func (c cacheReader) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	if err := c.Reader.Get(ctx, key, obj, opts...); err != nil {
		return err
	}
	out, err := podwatch.Strip(obj)
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

var errUnavailable = errors.New("cache unavailable")

type env struct {
	client  client.Client
	tracker *Tracker
	rec     *recorder
	metrics *metrics.Metrics

	mu       sync.Mutex
	failures map[string]int // kind → reads still to fail
}

func newEnv(t *testing.T, configure func(*Config), objects ...client.Object) *env {
	t.Helper()
	e := &env{rec: &recorder{t: t}, metrics: metrics.New(prometheus.NewRegistry()), failures: map[string]int{}}
	copies := make([]client.Object, len(objects))
	for i, o := range objects {
		copies[i] = o.DeepCopyObject().(client.Object) // the builder sets resource versions on what it is given
	}
	e.client = fake.NewClientBuilder().
		WithScheme(clientgoscheme.Scheme).
		WithObjects(copies...).
		WithInterceptorFuncs(interceptor.Funcs{Get: e.get}).
		Build()
	cfg := Config{
		Reader:              cacheReader{e.client},
		Desirer:             e.rec,
		Org:                 "octo-org",
		LogicalEnvironment:  "production",
		PhysicalEnvironment: "eu-west-1",
		Cluster:             "prod-1",
		Metrics:             e.metrics,
		Now:                 func() time.Time { return now },
	}
	if configure != nil {
		configure(&cfg)
	}
	tr, err := New(cfg)
	if err != nil {
		t.Fatalf("New() error = %v", err)
	}
	e.tracker = tr
	return e
}

// settle waits until the tracker's ledger writes are done: a decision is desired once it is written.
func (e *env) settle(t *testing.T) {
	t.Helper()
	if e.tracker.writes == nil {
		return
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := e.tracker.writes.wait(ctx); err != nil {
		t.Fatalf("the ledger writes did not settle: %v", err)
	}
}

// get fails reads of a kind as an unavailable cache does, as often as failReads asked.
func (e *env) get(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	gvk, err := apiutil.GVKForObject(obj, c.Scheme())
	if err != nil {
		return err
	}
	kind := gvk.Kind
	e.mu.Lock()
	fail := e.failures[kind] > 0
	if fail {
		e.failures[kind]--
	}
	e.mu.Unlock()
	if fail {
		return fmt.Errorf("get %s %s: %w", kind, key, errUnavailable)
	}
	return c.Get(ctx, key, obj, opts...)
}

// deliverAdmissions does what the controller's channel source does with the webhook's observations.
func (e *env) deliverAdmissions() {
	for {
		select {
		case ev := <-e.tracker.admitted:
			e.tracker.admit(ev.Object)
		default:
			return
		}
	}
}

// counters are the tracker's counters that are not zero, by metric/label.
func (e *env) counters() map[string]float64 {
	m := e.metrics
	all := map[string]prometheus.Collector{
		"digest_mismatch":          m.DigestMismatch,
		"skipped/no_digest":        m.ContainersSkipped.WithLabelValues("no_digest"),
		"skipped/unparsable_image": m.ContainersSkipped.WithLabelValues("unparsable_image"),
		"skipped/invalid_record":   m.ContainersSkipped.WithLabelValues("invalid_record"),
		"first_seen/informer":      m.PodsFirstSeen.WithLabelValues("informer"),
		"first_seen/webhook":       m.PodsFirstSeen.WithLabelValues("webhook"),
	}
	out := map[string]float64{}
	for k, c := range all {
		if v := testutil.ToFloat64(c); v != 0 {
			out[k] = v
		}
	}
	return out
}

// events are the processed-event counters that are not zero, by outcome/event_type.
func (e *env) events() map[string]float64 {
	out := map[string]float64{}
	for _, ev := range []string{metrics.EventPodRunning, metrics.EventPodGone, metrics.EventAdmission} {
		if v := testutil.ToFloat64(e.metrics.EventsProcessedOK.WithLabelValues(ev)); v != 0 {
			out["ok/"+ev] = v
		}
		if v := testutil.ToFloat64(e.metrics.EventsProcessedFailed.WithLabelValues(ev)); v != 0 {
			out["failed/"+ev] = v
		}
	}
	return out
}

// Actions on the cluster.

type action func(ctx context.Context, e *env) error

func create(objs ...client.Object) action {
	return func(ctx context.Context, e *env) error {
		for _, o := range objs {
			if err := e.client.Create(ctx, o.DeepCopyObject().(client.Object)); err != nil {
				return fmt.Errorf("create %s: %w", o.GetName(), err)
			}
		}
		return nil
	}
}

// remove deletes objects; one held by a finalizer gets a deletion timestamp, as in the API server.
func remove(objs ...client.Object) action {
	return func(ctx context.Context, e *env) error {
		for _, o := range objs {
			if err := e.client.Delete(ctx, o.DeepCopyObject().(client.Object)); err != nil {
				return fmt.Errorf("delete %s: %w", o.GetName(), err)
			}
		}
		return nil
	}
}

// change reads obj's current state from the cluster, applies f and updates it.
func change[T client.Object](obj T, f func(T)) action {
	return func(ctx context.Context, e *env) error {
		cur := obj.DeepCopyObject().(T)
		if err := e.client.Get(ctx, client.ObjectKeyFromObject(obj), cur); err != nil {
			return fmt.Errorf("get %s: %w", obj.GetName(), err)
		}
		pod, isPod := any(cur).(*corev1.Pod)
		var before corev1.PodStatus
		if isPod {
			before = *pod.Status.DeepCopy()
		}
		f(cur)
		var status corev1.PodStatus
		if isPod {
			status = *pod.Status.DeepCopy()
		}
		if err := e.client.Update(ctx, cur); err != nil {
			return fmt.Errorf("update %s: %w", obj.GetName(), err)
		}
		// The kubelet's part: the API server takes a pod's status only through the subresource.
		if isPod && !equality.Semantic.DeepEqual(before, status) {
			pod.Status = status
			if err := e.client.Status().Update(ctx, pod); err != nil {
				return fmt.Errorf("update status of %s: %w", obj.GetName(), err)
			}
		}
		return nil
	}
}

// replacePod updates a pod to the state of p (same name), keeping the API server's bookkeeping.
func replacePod(p *corev1.Pod) action {
	return change(p, func(cur *corev1.Pod) {
		rv, dt := cur.ResourceVersion, cur.DeletionTimestamp
		*cur = *p.DeepCopy()
		cur.ResourceVersion, cur.DeletionTimestamp = rv, dt
	})
}

// release removes the finalizers of obj, so that a deleted object goes.
func release[T client.Object](obj T) action {
	return change(obj, func(cur T) { cur.SetFinalizers(nil) })
}

func failReads(kind string, n int) action {
	return func(_ context.Context, e *env) error {
		e.mu.Lock()
		defer e.mu.Unlock()
		e.failures[kind] = n
		return nil
	}
}

func podReq(name string) Request {
	return Request{Pod: types.NamespacedName{Namespace: ns, Name: name}}
}

func workloadReq(group, kind, name string) Request {
	return Request{Workload: owner.Workload{Group: group, Kind: kind, Namespace: ns, Name: name}}
}

type step struct {
	name    string
	do      []action
	admit   []observation.Admission // observed by the webhook and delivered before the reconcile
	req     Request
	wantErr error // errors.Is target
	want    []record.Record
}

type scenario struct {
	name      string
	configure func(*Config)
	objects   []client.Object
	steps     []step
	// counters are the non-zero counters at the end (see env.counters); events, when set, the event counters.
	counters map[string]float64
	events   map[string]float64
}

func run(t *testing.T, sc scenario) {
	t.Helper()
	e := newEnv(t, sc.configure, sc.objects...)
	for i, s := range sc.steps {
		ok := t.Run(fmt.Sprintf("%d %s", i+1, s.name), func(t *testing.T) {
			ctx := t.Context()
			for _, a := range s.do {
				if err := a(ctx, e); err != nil {
					t.Fatal(err)
				}
			}
			for _, a := range s.admit {
				if !e.tracker.Observe(a) {
					t.Fatalf("Observe(%s/%s) = false", a.Namespace, a.Name)
				}
			}
			e.deliverAdmissions()
			res, err := e.tracker.Reconcile(ctx, s.req)
			if s.wantErr == nil && err != nil || s.wantErr != nil && !errors.Is(err, s.wantErr) {
				t.Fatalf("Reconcile(%+v) error = %v, want %v", s.req, err, s.wantErr)
			}
			if !res.IsZero() {
				t.Errorf("Reconcile() result = %+v, want zero (requeues come from errors)", res)
			}
			if diff := cmp.Diff(s.want, e.rec.take(), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("desired records mismatch (-want +got):\n%s", diff)
			}
		})
		if !ok {
			return
		}
	}
	if diff := cmp.Diff(sc.counters, e.counters(), cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("counters mismatch (-want +got):\n%s", diff)
	}
	if sc.events != nil {
		if diff := cmp.Diff(sc.events, e.events()); diff != "" {
			t.Errorf("event counters mismatch (-want +got):\n%s", diff)
		}
	}
}

func TestReconcile(t *testing.T) {
	pod1 := webPod(hash1, "aaaaa", 0, v1)
	pod2 := webPod(hash2, "bbbbb", 5*time.Minute, v2)

	// rollout: the Deployment web rolls from ReplicaSet 1 (app 1.4.2) to ReplicaSet 2 (app 1.5.0).
	rollout := []step{
		{name: "first pod of revision 1", do: []action{create(pod1)}, req: podReq(pod1.Name), want: []record.Record{webApp1, webMigrate, webProxy}},
		{name: "newer pod of revision 2", do: []action{create(pod2)}, req: podReq(pod2.Name), want: []record.Record{webApp2}},
		{name: "old pod deleted", do: []action{remove(pod1)}, req: podReq(pod1.Name)},
	}
	webObjects := func() []client.Object {
		return []client.Object{webDeployment(nil), webRS(hash1, nil), webRS(hash2, nil)}
	}

	deployAnn := map[string]string{
		"metadata.github.com/team":          "payments-deploy",
		"metadata.github.com/tier":          "frontend",
		"metadata.github.com/cost-center":   "cc-42",
		"metadata.github.com/runtime-risks": "internet-exposed",
		"metadata.github.com/repository":    "octo-org/web",
		"meta.helm.sh/release-name":         "web",
	}
	rsAnn := map[string]string{
		"metadata.github.com/team":          "payments-rs",
		"metadata.github.com/runtime-risks": "sensitive-data, lateral-movement",
		"deployment.kubernetes.io/revision": "3",
	}
	podAnn := annotated(
		"metadata.github.com/team", "payments-pod",
		"metadata.github.com/repository", "other-org/fork", // another owner than the org: skipped
		"prometheus.io/scrape", "true",
	)
	annotatedPod := webPod(hash1, "aaaaa", 0, v1, podAnn)
	meta := func(r record.Record, team string) record.Record {
		return withMetadata(r,
			map[string]string{"team": team, "tier": "frontend", "cost-center": "cc-42"},
			[]string{"lateral-movement", "sensitive-data"}, "web")
	}

	report := newPod("report-29000000-q7wz4",
		controlledBy("batch/v1", "Job", "report-29000000"),
		runs(0, ctr{name: "report", image: "ghcr.io/octo-org/report:3.1", imageID: "ghcr.io/octo-org/report@" + dApp1}))
	cronReport := deployed("shop/report/report", "ghcr.io/octo-org/report", "3.1", dApp1)
	cronJob := &batchv1.CronJob{ObjectMeta: objectMeta("report", map[string]string{"metadata.github.com/team": "reports"})}
	job := &batchv1.Job{ObjectMeta: objectMeta("report-29000000", nil, controllerRef("batch/v1", "CronJob", "report"))}

	debug := newPod("debug", runs(0, ctr{name: "debug", image: "ghcr.io/octo-org/toolbox:2.1", imageID: "ghcr.io/octo-org/toolbox@" + dOther}))
	debugRec := deployed("shop/debug/debug", "ghcr.io/octo-org/toolbox", "2.1", dOther)

	postgres := func(version string, d string) ctr {
		return ctr{name: "postgres", image: "docker.io/library/postgres:" + version, imageID: "docker.io/library/postgres@" + d}
	}
	exporter := ctr{name: "exporter", image: "quay.io/prometheuscommunity/postgres-exporter:v0.15.0", imageID: "quay.io/prometheuscommunity/postgres-exporter@" + dEnvoy}
	db := &appsv1.StatefulSet{ObjectMeta: objectMeta("db", nil)}
	dbPod := func(uid string, cs ...ctr) *corev1.Pod {
		return newPod("db-0", withUID(uid), controlledBy("apps/v1", "StatefulSet", "db"), runs(time.Hour, cs...))
	}
	dbPostgres163 := deployed("shop/db/postgres", "docker.io/library/postgres", "16.3", dApp1)
	dbPostgres164 := deployed("shop/db/postgres", "docker.io/library/postgres", "16.4", dApp2)
	dbExporter := deployed("shop/db/exporter", "quay.io/prometheuscommunity/postgres-exporter", "v0.15.0", dEnvoy)

	tests := []scenario{
		{
			name:     "first running pod: one record per container, init containers too",
			objects:  webObjects(),
			steps:    rollout[:1],
			counters: map[string]float64{"first_seen/informer": 1},
			events:   map[string]float64{"ok/pod_running": 1},
		},
		{
			name:    "more replicas and pod updates: nothing",
			objects: webObjects(),
			steps: []step{
				rollout[0],
				{name: "second replica", do: []action{create(webPod(hash1, "ccccc", time.Minute, v1))}, req: podReq("web-" + hash1 + "-ccccc")},
				{name: "first replica updated", do: []action{change(pod1, func(p *corev1.Pod) {
					p.Status.ContainerStatuses[0].RestartCount = 3
					p.Labels["extra"] = "label"
				})}, req: podReq(pod1.Name)},
				{name: "unknown pod gone", req: podReq("web-" + hash1 + "-zzzzz")},
			},
			counters: map[string]float64{"first_seen/informer": 2},
			events:   map[string]float64{"ok/pod_running": 3, "ok/pod_gone": 1},
		},
		{
			name:    "pending pod: nothing until its containers start",
			objects: webObjects(),
			steps: []step{
				{name: "scheduled, pulling", do: []action{create(newPod(pod1.Name,
					controlledBy("apps/v1", "ReplicaSet", "web-"+hash1), declares(v1...)))}, req: podReq(pod1.Name)},
				{name: "started", do: []action{replacePod(pod1)}, req: podReq(pod1.Name), want: []record.Record{webApp1, webMigrate, webProxy}},
			},
			counters: map[string]float64{"first_seen/informer": 1},
		},
		{
			name:     "rollout: the newest pod's digest, nothing when old pods go",
			objects:  webObjects(),
			steps:    rollout,
			counters: map[string]float64{"first_seen/informer": 2},
		},
		{
			name:    "rollback: the old revision's pods are newer now",
			objects: webObjects(),
			steps: slices.Concat(rollout, []step{
				{name: "revision 1 scaled up again", do: []action{create(webPod(hash1, "ddddd", 10*time.Minute, v1))},
					req: podReq("web-" + hash1 + "-ddddd"), want: []record.Record{webApp1}},
				{name: "revision 2 pod deleted", do: []action{remove(pod2)}, req: podReq(pod2.Name)},
			}),
			counters: map[string]float64{"first_seen/informer": 3},
		},
		{
			name:    "a newer pod seen first is not overridden by an older one",
			objects: webObjects(),
			steps: []step{
				{name: "newer pod", do: []action{create(pod2)}, req: podReq(pod2.Name), want: []record.Record{webApp2, webMigrate, webProxy}},
				{name: "older pod", do: []action{create(pod1)}, req: podReq(pod1.Name)},
			},
			counters: map[string]float64{"first_seen/informer": 2},
		},
		{
			name:    "same start time: the pod seen running last wins",
			objects: webObjects(),
			steps: []step{
				rollout[0],
				{name: "same start, new digest", do: []action{create(webPod(hash2, "bbbbb", 0, v2))}, req: podReq(pod2.Name), want: []record.Record{webApp2}},
				{name: "first pod updated", do: []action{change(pod1, func(p *corev1.Pod) { p.Labels["x"] = "y" })}, req: podReq(pod1.Name)},
			},
			counters: map[string]float64{"first_seen/informer": 2},
		},
		{
			name:    "scaled to zero while the Deployment exists: nothing; deleted later: decommissioned",
			objects: webObjects(),
			steps: []step{
				rollout[0],
				{name: "last pod gone", do: []action{remove(pod1)}, req: podReq(pod1.Name)},
				{name: "workload request while it exists", req: workloadReq("apps", "Deployment", "web")},
				{name: "scaled up again", do: []action{create(webPod(hash1, "eeeee", time.Hour, v1))}, req: podReq("web-" + hash1 + "-eeeee")},
				{name: "scaled to zero again", do: []action{remove(webPod(hash1, "eeeee", time.Hour, v1))}, req: podReq("web-" + hash1 + "-eeeee")},
				{name: "Deployment deleted", do: []action{remove(webDeployment(nil), webRS(hash1, nil), webRS(hash2, nil))},
					req: workloadReq("apps", "Deployment", "web"), want: decommissioned(webApp1, webMigrate, webProxy)},
				{name: "late ReplicaSet deletion", req: workloadReq("apps", "ReplicaSet", "web-"+hash1)},
			},
			counters: map[string]float64{"first_seen/informer": 2},
			events:   map[string]float64{"ok/pod_running": 2, "ok/pod_gone": 5},
		},
		{
			name: "Deployment deleted, then its last pod: decommissioned with the same digest and metadata",
			objects: []client.Object{
				webDeployment(deployAnn), webRS(hash1, rsAnn),
				webPod(hash1, "aaaaa", 0, v1, withFinalizer(), podAnn),
			},
			steps: []step{
				{name: "pod running", req: podReq(pod1.Name), want: []record.Record{
					meta(webApp1, "payments-pod"), meta(webMigrate, "payments-pod"), meta(webProxy, "payments-pod"),
				}},
				{name: "Deployment deleted", do: []action{remove(webDeployment(nil))}, req: workloadReq("apps", "Deployment", "web")},
				{name: "ReplicaSet deleted, pod terminating: inferred from pod-template-hash, unchanged",
					do: []action{remove(webRS(hash1, nil), pod1)}, req: podReq(pod1.Name)},
				{name: "pod gone", do: []action{release(pod1)}, req: podReq(pod1.Name), want: decommissioned(
					meta(webApp1, "payments-pod"), meta(webMigrate, "payments-pod"), meta(webProxy, "payments-pod"),
				)},
			},
			counters: map[string]float64{"first_seen/informer": 1},
		},
		{
			name: "Deployment being deleted in the foreground counts as gone",
			objects: []client.Object{
				&appsv1.Deployment{ObjectMeta: func() metav1.ObjectMeta {
					m := objectMeta("web", nil)
					m.Finalizers = []string{metav1.FinalizerDeleteDependents}
					return m
				}()},
				webRS(hash1, nil),
			},
			steps: []step{
				rollout[0],
				{name: "deletion started", do: []action{remove(webDeployment(nil))}, req: workloadReq("apps", "Deployment", "web")},
				{name: "pods deleted first", do: []action{remove(pod1)}, req: podReq(pod1.Name), want: decommissioned(webApp1, webMigrate, webProxy)},
			},
			counters: map[string]float64{"first_seen/informer": 1},
		},
		{
			name: "annotations: pod, then ReplicaSet, then Deployment; a change re-desires",
			objects: []client.Object{
				webDeployment(deployAnn), webRS(hash1, rsAnn), annotatedPod,
			},
			steps: []step{
				{name: "pod running", req: podReq(annotatedPod.Name), want: []record.Record{
					meta(webApp1, "payments-pod"), meta(webMigrate, "payments-pod"), meta(webProxy, "payments-pod"),
				}},
				{name: "pod annotation removed: the ReplicaSet's team", do: []action{change(annotatedPod, func(p *corev1.Pod) {
					delete(p.Annotations, "metadata.github.com/team")
				})}, req: podReq(annotatedPod.Name), want: []record.Record{
					meta(webApp1, "payments-rs"), meta(webMigrate, "payments-rs"), meta(webProxy, "payments-rs"),
				}},
			},
			counters: map[string]float64{"first_seen/informer": 1},
		},
		{
			name: "bare pod deleted: decommissioned",
			steps: []step{
				{name: "running", do: []action{create(debug)}, req: podReq("debug"), want: []record.Record{debugRec}},
				{name: "deleted", do: []action{remove(debug)}, req: podReq("debug"), want: decommissioned(debugRec)},
				{name: "gone twice", req: podReq("debug")},
			},
			counters: map[string]float64{"first_seen/informer": 1},
		},
		{
			name:    "container removed in the new revision: decommissioned once the old pods are gone",
			objects: webObjects(),
			steps: []step{
				rollout[0],
				{name: "revision 2 without proxy", do: []action{create(webPod(hash2, "bbbbb", 5*time.Minute, []ctr{migrate, appV2}))},
					req: podReq(pod2.Name), want: []record.Record{webApp2}},
				{name: "old pod deleted", do: []action{remove(pod1)}, req: podReq(pod1.Name), want: decommissioned(webProxy)},
			},
			counters: map[string]float64{"first_seen/informer": 2},
		},
		{
			name:    "Recreate rollout with an init container: nothing is decommissioned while the new pod starts",
			objects: webObjects(),
			steps: []step{
				rollout[0],
				{name: "old pod gone first", do: []action{remove(pod1)}, req: podReq(pod1.Name)},
				{name: "new pod in its init container", do: []action{create(webPod(hash2, "bbbbb", 5*time.Minute,
					[]ctr{migrate, appV2.notStarted(), proxy.notStarted()}))}, req: podReq(pod2.Name)},
				{name: "app started, proxy still pulling", do: []action{replacePod(webPod(hash2, "bbbbb", 5*time.Minute,
					[]ctr{migrate, appV2, proxy.notStarted()}))}, req: podReq(pod2.Name), want: []record.Record{webApp2}},
				{name: "all started", do: []action{replacePod(pod2)}, req: podReq(pod2.Name)},
			},
			counters: map[string]float64{"first_seen/informer": 2},
		},
		{
			name:    "StatefulSet pod replaced under the same name",
			objects: []client.Object{db},
			steps: []step{
				{name: "db-0 running", do: []action{create(dbPod("uid-1", postgres("16.3", dApp1), exporter))}, req: podReq("db-0"),
					want: []record.Record{dbExporter, dbPostgres163}},
				{name: "db-0 deleted by the rolling update", do: []action{remove(dbPod("uid-1"))}, req: podReq("db-0")},
				{name: "db-0 recreated, exporter not started", do: []action{create(dbPod("uid-2", postgres("16.4", dApp2), exporter.notStarted()))},
					req: podReq("db-0"), want: []record.Record{dbPostgres164}},
				{name: "exporter started", do: []action{replacePod(dbPod("uid-2", postgres("16.4", dApp2), exporter))}, req: podReq("db-0")},
			},
			counters: map[string]float64{"first_seen/informer": 2},
		},
		{
			name:    "pod replaced under the same name before the tracker saw it go",
			objects: []client.Object{db},
			steps: []step{
				{name: "db-0 running", do: []action{create(dbPod("uid-1", postgres("16.3", dApp1), exporter))}, req: podReq("db-0"),
					want: []record.Record{dbExporter, dbPostgres163}},
				{name: "db-0 replaced", do: []action{remove(dbPod("uid-1")), create(dbPod("uid-2", postgres("16.4", dApp2), exporter))},
					req: podReq("db-0"), want: []record.Record{dbPostgres164}},
			},
			counters: map[string]float64{"first_seen/informer": 2},
		},
		{
			name:    "pinned digest differs from the running imageID: the submitted digest, counted",
			objects: webObjects(),
			steps: []step{
				{name: "running", do: []action{create(webPod(hash1, "aaaaa", 0, []ctr{
					{name: "app", image: "ghcr.io/octo-org/web:1.4.2@" + dApp1, imageID: "ghcr.io/octo-org/web@" + dOther},
					{name: "proxy", image: "docker.io/envoyproxy/envoy@" + dEnvoy, imageID: "docker.io/envoyproxy/envoy@" + dEnvoy},
				}))}, req: podReq(pod1.Name), want: []record.Record{
					webApp1, deployed("shop/web/proxy", "docker.io/envoyproxy/envoy", "", dEnvoy),
				}},
			},
			counters: map[string]float64{"first_seen/informer": 1, "digest_mismatch": 1},
		},
		{
			name:    "imageID without a registry digest: skipped, counted",
			objects: webObjects(),
			steps: []step{
				{name: "running", do: []action{create(webPod(hash1, "aaaaa", 0, []ctr{
					{name: "app", image: "web:dev", imageID: dApp1}, // loaded into the node, not pulled
					proxy,
				}))}, req: podReq(pod1.Name), want: []record.Record{webProxy}},
			},
			counters: map[string]float64{"first_seen/informer": 1, "skipped/no_digest": 1},
		},
		{
			name: "deployment name too long for the API: skipped, counted",
			steps: []step{
				{name: "running", do: []action{create(newPod(strings.Repeat("x", 250),
					runs(0, ctr{name: "debug", image: "ghcr.io/octo-org/toolbox:2.1", imageID: "ghcr.io/octo-org/toolbox@" + dOther})))},
					req: podReq(strings.Repeat("x", 250))},
			},
			counters: map[string]float64{"first_seen/informer": 1, "skipped/invalid_record": 1},
		},
		{
			name:      "owner not in the cache: requeued, then the direct owner after ResolveAttempts",
			configure: func(c *Config) { c.ResolveAttempts = 3 },
			steps: []step{
				{name: "attempt 1", do: []action{create(report)}, req: podReq(report.Name), wantErr: owner.ErrNotResolved},
				{name: "attempt 2", req: podReq(report.Name), wantErr: owner.ErrNotResolved},
				{name: "attempt 3: the Job", req: podReq(report.Name), want: []record.Record{
					deployed("shop/report-29000000/report", "ghcr.io/octo-org/report", "3.1", dApp1),
				}},
				{name: "pod gone", do: []action{remove(report)}, req: podReq(report.Name), want: decommissioned(
					deployed("shop/report-29000000/report", "ghcr.io/octo-org/report", "3.1", dApp1),
				)},
			},
			counters: map[string]float64{"first_seen/informer": 1},
			events:   map[string]float64{"failed/pod_running": 2, "ok/pod_running": 1, "ok/pod_gone": 1},
		},
		{
			name:      "owner resolved on a retry: no fallback",
			configure: func(c *Config) { c.ResolveAttempts = 3 },
			steps: []step{
				{name: "attempt 1", do: []action{create(report)}, req: podReq(report.Name), wantErr: owner.ErrNotResolved},
				{name: "Job and CronJob in the cache", do: []action{create(cronJob, job)}, req: podReq(report.Name),
					want: []record.Record{withMetadata(cronReport, map[string]string{"team": "reports"}, nil, "")}},
			},
			counters: map[string]float64{"first_seen/informer": 1},
		},
		{
			name:    "ReplicaSet not in the cache: the Deployment from the pod-template-hash",
			objects: []client.Object{webDeployment(nil)},
			steps: []step{
				{name: "running", do: []action{create(pod1)}, req: podReq(pod1.Name), want: []record.Record{webApp1, webMigrate, webProxy}},
				{name: "ReplicaSet arrives", do: []action{create(webRS(hash1, nil))}, req: podReq(pod1.Name)},
				{name: "scaled to zero", do: []action{remove(pod1)}, req: podReq(pod1.Name)},
			},
			counters: map[string]float64{"first_seen/informer": 1},
		},
		{
			name:    "Job pod keeps its CronJob when the Job and CronJob vanish first",
			objects: []client.Object{cronJob, job},
			steps: []step{
				{name: "running", do: []action{create(report)}, req: podReq(report.Name),
					want: []record.Record{withMetadata(cronReport, map[string]string{"team": "reports"}, nil, "")}},
				{name: "CronJob and Job deleted, pod finishing", do: []action{remove(cronJob, job), change(report, func(p *corev1.Pod) {
					p.Status.Phase = corev1.PodSucceeded
				})}, req: podReq(report.Name)},
				{name: "pod gone", do: []action{remove(report)}, req: podReq(report.Name),
					want: decommissioned(withMetadata(cronReport, map[string]string{"team": "reports"}, nil, ""))},
			},
			counters: map[string]float64{"first_seen/informer": 1},
			events:   map[string]float64{"ok/pod_running": 2, "ok/pod_gone": 1},
		},
		{
			name:    "Deployment deleted orphaning its ReplicaSet: the records move to the ReplicaSet",
			objects: webObjects(),
			steps: []step{
				rollout[0],
				{name: "orphaned", do: []action{remove(webDeployment(nil)), change(webRS(hash1, nil), func(rs *appsv1.ReplicaSet) {
					rs.OwnerReferences = nil
				})}, req: workloadReq("apps", "Deployment", "web")},
				{name: "pod updated", do: []action{change(pod1, func(p *corev1.Pod) { p.Labels["x"] = "y" })}, req: podReq(pod1.Name),
					want: slices.Concat(decommissioned(webApp1, webMigrate, webProxy), []record.Record{
						deployed("shop/web-"+hash1+"/app", webApp1.Name, webApp1.Version, dApp1),
						deployed("shop/web-"+hash1+"/migrate", webMigrate.Name, webMigrate.Version, dMigrate),
						deployed("shop/web-"+hash1+"/proxy", webProxy.Name, webProxy.Version, dEnvoy),
					})},
			},
			counters: map[string]float64{"first_seen/informer": 1},
		},
		{
			name:    "workload existence unreadable when the last pod goes: requeued, the retry decommissions",
			objects: webObjects(),
			steps: []step{
				rollout[0],
				{name: "Deployment and pod deleted, cache unavailable", do: []action{
					remove(webDeployment(nil), webRS(hash1, nil), pod1), failReads("Deployment", 1),
				}, req: podReq(pod1.Name), wantErr: errUnavailable},
				{name: "retry", req: podReq(pod1.Name), want: decommissioned(webApp1, webMigrate, webProxy)},
			},
			counters: map[string]float64{"first_seen/informer": 1},
			events:   map[string]float64{"ok/pod_running": 1, "failed/pod_gone": 1, "ok/pod_gone": 1},
		},
		{
			name:    "pod unreadable: requeued",
			objects: webObjects(),
			steps: []step{
				{name: "cache unavailable", do: []action{create(pod1), failReads("Pod", 1)}, req: podReq(pod1.Name), wantErr: errUnavailable},
				{name: "retry", req: podReq(pod1.Name), want: []record.Record{webApp1, webMigrate, webProxy}},
			},
			counters: map[string]float64{"first_seen/informer": 1},
			events:   map[string]float64{"failed/pod_running": 1, "ok/pod_running": 1},
		},
		{
			name:      "excluded namespace: ignored",
			configure: func(c *Config) { c.ExcludeNamespaces = []string{"kube-system"} },
			steps: []step{
				{name: "running", do: []action{create(newPod("coredns-5d78c9869d-abcde", inNamespace("kube-system"),
					controlledBy("apps/v1", "ReplicaSet", "coredns-5d78c9869d"),
					runs(0, ctr{name: "coredns", image: "registry.k8s.io/coredns/coredns:v1.11.1", imageID: "registry.k8s.io/coredns/coredns@" + dApp1})))},
					req: Request{Pod: types.NamespacedName{Namespace: "kube-system", Name: "coredns-5d78c9869d-abcde"}}},
				{name: "deleted", do: []action{remove(newPod("coredns-5d78c9869d-abcde", inNamespace("kube-system")))},
					req: Request{Pod: types.NamespacedName{Namespace: "kube-system", Name: "coredns-5d78c9869d-abcde"}}},
			},
		},
		{
			name:    "webhook saw the pod first",
			objects: webObjects(),
			steps: []step{
				{name: "admitted, pending", admit: []observation.Admission{{
					Operation: observation.Create, Namespace: ns, Name: pod1.Name, UID: pod1.UID, Time: now,
					Containers: []observation.Container{{Name: "migrate", Image: migrate.image, Init: true}, {Name: "app", Image: appV1.image}, {Name: "proxy", Image: proxy.image}},
				}}, do: []action{create(newPod(pod1.Name, controlledBy("apps/v1", "ReplicaSet", "web-"+hash1), declares(v1...)))}, req: podReq(pod1.Name)},
				{name: "running", do: []action{replacePod(pod1)}, req: podReq(pod1.Name), want: []record.Record{webApp1, webMigrate, webProxy}},
				{name: "second pod, not admitted through the webhook", do: []action{create(pod2)}, req: podReq(pod2.Name), want: []record.Record{webApp2}},
			},
			counters: map[string]float64{"first_seen/webhook": 1, "first_seen/informer": 1},
		},
		{
			name: "image updated in place since admission: the stored spec wins",
			steps: []step{
				{name: "running", admit: []observation.Admission{{
					Operation: observation.Create, Namespace: ns, Name: "debug", UID: debug.UID, Time: now,
					Containers: []observation.Container{{Name: "debug", Image: "ghcr.io/octo-org/toolbox:2.0"}},
				}}, do: []action{create(debug)}, req: podReq("debug"), want: []record.Record{debugRec}},
			},
			counters: map[string]float64{"first_seen/webhook": 1},
		},
		{
			name:      "deployment-name template",
			configure: func(c *Config) { c.Template = mustTemplate(t, "{{namespace}}-{{deploymentName}}/{{ containerName }}") },
			steps: []step{
				{name: "running", do: []action{create(debug)}, req: podReq("debug"), want: []record.Record{
					deployed("shop-debug/debug", debugRec.Name, debugRec.Version, debugRec.Digest),
				}},
			},
			counters: map[string]float64{"first_seen/informer": 1},
		},
	}
	for _, sc := range tests {
		t.Run(sc.name, func(t *testing.T) { run(t, sc) })
	}
}

func mustTemplate(t *testing.T, s string) *record.Template {
	t.Helper()
	tpl, err := record.ParseTemplate(s)
	if err != nil {
		t.Fatal(err)
	}
	return tpl
}

func TestObserve(t *testing.T) {
	adm := func(namespace, name string) observation.Admission {
		return observation.Admission{Operation: observation.Create, Namespace: namespace, Name: name, UID: types.UID("uid-" + name), Time: now}
	}
	many := make([]observation.Admission, 4097)
	wantMany := make([]bool, len(many))
	for i := range many {
		many[i] = adm(ns, fmt.Sprintf("p%d", i))
		wantMany[i] = i < 4096
	}
	tests := []struct {
		name    string
		buffer  int
		exclude []string
		observe []observation.Admission
		want    []bool
	}{
		{
			name:    "buffer full: false",
			buffer:  2,
			observe: []observation.Admission{adm(ns, "a"), adm(ns, "b"), adm(ns, "c")},
			want:    []bool{true, true, false},
		},
		{
			name:    "excluded namespace: accepted without using the buffer",
			buffer:  1,
			exclude: []string{"kube-system"},
			observe: []observation.Admission{adm("kube-system", "x"), adm(ns, "a"), adm("kube-system", "y"), adm(ns, "b")},
			want:    []bool{true, true, true, false},
		},
		{
			name:    "default buffer",
			observe: many,
			want:    wantMany,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, func(c *Config) { c.AdmissionBuffer, c.ExcludeNamespaces = tt.buffer, tt.exclude })
			got := make([]bool, len(tt.observe))
			for i, a := range tt.observe {
				got[i] = e.tracker.Observe(a)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Observe() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// TestObserveConcurrent hands observations over from many goroutines, as the webhook server does, while the
// controller consumes them.
func TestObserveConcurrent(t *testing.T) {
	// 8 goroutines observe 50 pods each through a buffer of 8 while the controller's source drains it: every
	// observation is either accepted and stored once, or refused (Observe reports false, the informer still
	// sees the pod); none is lost or stored twice, and nothing races (go test -race).
	e := newEnv(t, func(c *Config) { c.AdmissionBuffer = 8 })
	var wg sync.WaitGroup
	var accepted sync.Map
	stop := make(chan struct{})
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		for {
			select {
			case <-stop:
				e.deliverAdmissions()
				return
			default:
				e.deliverAdmissions()
				time.Sleep(100 * time.Microsecond)
			}
		}
	}()
	for g := range 8 {
		wg.Go(func() {
			for i := range 50 {
				uid := types.UID(fmt.Sprintf("u-%d-%d", g, i))
				if e.tracker.Observe(observation.Admission{
					Operation: observation.Create, Namespace: ns, Name: fmt.Sprintf("p-%d-%d", g, i), UID: uid, Time: now,
				}) {
					accepted.Store(uid, true)
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	<-drained
	n := 0
	accepted.Range(func(k, _ any) bool {
		n++
		if _, ok := e.tracker.admission(k.(types.UID)); !ok {
			t.Errorf("admission %s was accepted but not stored", k)
		}
		return true
	})
	e.tracker.amu.Lock()
	stored := len(e.tracker.admissions)
	e.tracker.amu.Unlock()
	if stored != n {
		t.Errorf("stored %d admissions, accepted %d", stored, n)
	}
	if n == 0 {
		t.Errorf("no observation was accepted")
	}
}

func TestNew(t *testing.T) {
	valid := func() Config {
		return Config{
			Reader: fake.NewClientBuilder().Build(), Desirer: &recorder{t: t}, Metrics: metrics.New(prometheus.NewRegistry()),
			Cluster: "prod-1", LogicalEnvironment: "production",
		}
	}
	tests := []struct {
		name    string
		mutate  func(*Config)
		wantErr bool
	}{
		{name: "valid", mutate: func(*Config) {}},
		{name: "no Reader", mutate: func(c *Config) { c.Reader = nil }, wantErr: true},
		{name: "no Desirer", mutate: func(c *Config) { c.Desirer = nil }, wantErr: true},
		{name: "no Metrics", mutate: func(c *Config) { c.Metrics = nil }, wantErr: true},
		{name: "no Cluster", mutate: func(c *Config) { c.Cluster = "" }, wantErr: true},
		{name: "no LogicalEnvironment", mutate: func(c *Config) { c.LogicalEnvironment = "" }, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := valid()
			tt.mutate(&cfg)
			tr, err := New(cfg)
			if (err != nil) != tt.wantErr {
				t.Fatalf("New() error = %v, want error %t", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if tr.cfg.Template == nil || tr.cfg.AdmissionBuffer != 4096 || tr.cfg.ResolveAttempts != 5 || tr.cfg.Now == nil {
				t.Errorf("New() defaults not filled: template %v, buffer %d, attempts %d", tr.cfg.Template, tr.cfg.AdmissionBuffer, tr.cfg.ResolveAttempts)
			}
		})
	}
}
