package owner_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/deployment-tracker/deployment-tracker/internal/owner"
)

const ns = "shop"

// The cluster holds typed objects, as the API server does; the resolver reads them as
// metav1.PartialObjectMetadata, which the fake client serves from them like a metadata informer would.

func controllerOf(apiVersion, kind, name string) []metav1.OwnerReference {
	return []metav1.OwnerReference{{
		APIVersion: apiVersion, Kind: kind, Name: name, UID: types.UID("uid-" + name),
		Controller: new(true), BlockOwnerDeletion: new(true),
	}}
}

func meta(name string, annotations map[string]string, owners []metav1.OwnerReference) metav1.ObjectMeta {
	return metav1.ObjectMeta{
		Namespace: ns, Name: name, UID: types.UID("uid-" + name), Annotations: annotations, OwnerReferences: owners,
	}
}

func deployment(name string, annotations map[string]string) *appsv1.Deployment {
	return &appsv1.Deployment{ObjectMeta: meta(name, annotations, nil)}
}

func replicaSet(name string, annotations map[string]string, owners []metav1.OwnerReference) *appsv1.ReplicaSet {
	return &appsv1.ReplicaSet{ObjectMeta: meta(name, annotations, owners)}
}

func job(name string, annotations map[string]string, owners []metav1.OwnerReference) *batchv1.Job {
	return &batchv1.Job{ObjectMeta: meta(name, annotations, owners)}
}

func cronJob(name string, annotations map[string]string) *batchv1.CronJob {
	return &batchv1.CronJob{ObjectMeta: meta(name, annotations, nil)}
}

func statefulSet(name string, annotations map[string]string) *appsv1.StatefulSet {
	return &appsv1.StatefulSet{ObjectMeta: meta(name, annotations, nil)}
}

func daemonSet(name string, annotations map[string]string) *appsv1.DaemonSet {
	return &appsv1.DaemonSet{ObjectMeta: meta(name, annotations, nil)}
}

// pod returns a pod controlled by owners, with the pod-template-hash label when hash is set.
func pod(name, hash string, owners []metav1.OwnerReference) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: meta(name, map[string]string{"metadata.github.com/team": "pod"}, owners)}
	if hash != "" {
		p.Labels = map[string]string{appsv1.DefaultDeploymentUniqueLabelKey: hash, "app": "web"}
	}
	return p
}

func newReader(t *testing.T, funcs *interceptor.Funcs, objs ...client.Object) client.Reader {
	t.Helper()
	b := fake.NewClientBuilder().WithScheme(clientgoscheme.Scheme).WithObjects(objs...)
	if funcs != nil {
		b = b.WithInterceptorFuncs(*funcs)
	}
	return b.Build()
}

var errUnavailable = errors.New("cache unavailable")

// failGets makes every read of kind fail as an unavailable cache does.
func failGets(kind string) *interceptor.Funcs {
	return &interceptor.Funcs{
		Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
			if obj.GetObjectKind().GroupVersionKind().Kind == kind {
				return errUnavailable
			}
			return c.Get(ctx, key, obj, opts...)
		},
	}
}

func TestResolve(t *testing.T) {
	deployAnn := map[string]string{"metadata.github.com/team": "payments", "metadata.github.com/repository": "web"}
	rsAnn := map[string]string{"metadata.github.com/team": "payments-rs", "deployment.kubernetes.io/revision": "3"}
	jobAnn := map[string]string{"metadata.github.com/run": "nightly-1"}
	cronAnn := map[string]string{"metadata.github.com/team": "reports"}
	byDeployment := controllerOf("apps/v1", "Deployment", "web")
	byRS := controllerOf("apps/v1", "ReplicaSet", "web-7d4b9c6f8")
	byJob := controllerOf("batch/v1", "Job", "report-29000000")
	webDeployment := owner.Workload{Group: "apps", Kind: "Deployment", Namespace: ns, Name: "web"}
	webRS := owner.Workload{Group: "apps", Kind: "ReplicaSet", Namespace: ns, Name: "web-7d4b9c6f8"}
	reportCron := owner.Workload{Group: "batch", Kind: "CronJob", Namespace: ns, Name: "report"}
	reportJob := owner.Workload{Group: "batch", Kind: "Job", Namespace: ns, Name: "report-29000000"}

	tests := []struct {
		name    string
		objects []client.Object
		funcs   *interceptor.Funcs
		pod     *corev1.Pod
		want    owner.Resolution
		wantErr error // errors.Is target; nil for success
	}{
		{
			name: "bare pod is its own workload",
			pod:  pod("debug", "", nil),
			want: owner.Resolution{Workload: owner.Workload{Kind: "Pod", Namespace: ns, Name: "debug"}, Found: true},
		},
		{
			name: "owner reference that is not the controller: bare pod",
			pod: pod("debug", "", []metav1.OwnerReference{{
				APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "web-7d4b9c6f8", UID: "uid-web-7d4b9c6f8",
			}}),
			want: owner.Resolution{Workload: owner.Workload{Kind: "Pod", Namespace: ns, Name: "debug"}, Found: true},
		},
		{
			name: "ReplicaSet to Deployment, annotations nearest first",
			objects: []client.Object{
				deployment("web", deployAnn),
				replicaSet("web-7d4b9c6f8", rsAnn, byDeployment),
			},
			pod:  pod("web-7d4b9c6f8-x2k9p", "7d4b9c6f8", byRS),
			want: owner.Resolution{Workload: webDeployment, Annotations: []map[string]string{rsAnn, deployAnn}, Found: true},
		},
		{
			name: "Deployment without annotations",
			objects: []client.Object{
				deployment("web", nil),
				replicaSet("web-7d4b9c6f8", nil, byDeployment),
			},
			pod:  pod("web-7d4b9c6f8-x2k9p", "7d4b9c6f8", byRS),
			want: owner.Resolution{Workload: webDeployment, Annotations: []map[string]string{nil, nil}, Found: true},
		},
		{
			name: "Deployment being deleted is still read",
			objects: []client.Object{
				deleting(deployment("web", deployAnn)),
				replicaSet("web-7d4b9c6f8", rsAnn, byDeployment),
			},
			pod:  pod("web-7d4b9c6f8-x2k9p", "7d4b9c6f8", byRS),
			want: owner.Resolution{Workload: webDeployment, Annotations: []map[string]string{rsAnn, deployAnn}, Found: true},
		},
		{
			name:    "ReplicaSet whose Deployment is gone: the Deployment, not found",
			objects: []client.Object{replicaSet("web-7d4b9c6f8", rsAnn, byDeployment)},
			pod:     pod("web-7d4b9c6f8-x2k9p", "7d4b9c6f8", byRS),
			want:    owner.Resolution{Workload: webDeployment, Annotations: []map[string]string{rsAnn}},
		},
		{
			name:    "ReplicaSet without controller is the workload",
			objects: []client.Object{replicaSet("web-7d4b9c6f8", rsAnn, nil)},
			pod:     pod("web-7d4b9c6f8-x2k9p", "7d4b9c6f8", byRS),
			want:    owner.Resolution{Workload: webRS, Annotations: []map[string]string{rsAnn}, Found: true},
		},
		{
			name: "ReplicaSet controlled by an unwatched kind, no API reader: that owner, not read",
			objects: []client.Object{replicaSet("web-7d4b9c6f8", rsAnn,
				controllerOf("argoproj.io/v1alpha1", "Rollout", "web"))},
			pod: pod("web-7d4b9c6f8-x2k9p", "7d4b9c6f8", byRS),
			want: owner.Resolution{Workload: owner.Workload{Group: "argoproj.io", Kind: "Rollout", Namespace: ns, Name: "web"},
				Annotations: []map[string]string{rsAnn}, Denied: true},
		},
		{
			name: "ReplicaSet controlled by a Deployment of another group: that owner, not read",
			objects: []client.Object{replicaSet("web-7d4b9c6f8", rsAnn,
				controllerOf("example.com/v1", "Deployment", "web"))},
			pod: pod("web-7d4b9c6f8-x2k9p", "7d4b9c6f8", byRS),
			want: owner.Resolution{Workload: owner.Workload{Group: "example.com", Kind: "Deployment", Namespace: ns, Name: "web"},
				Annotations: []map[string]string{rsAnn}, Denied: true},
		},
		{
			name:    "ReplicaSet not in the cache: Deployment inferred from pod-template-hash",
			objects: []client.Object{deployment("web", deployAnn)},
			pod:     pod("web-7d4b9c6f8-x2k9p", "7d4b9c6f8", byRS),
			want:    owner.Resolution{Workload: webDeployment},
		},
		{
			name:    "ReplicaSet not in the cache, no pod-template-hash label",
			pod:     pod("web-7d4b9c6f8-x2k9p", "", byRS),
			wantErr: owner.ErrNotResolved,
		},
		{
			name:    "ReplicaSet not in the cache, hash is not the name's suffix",
			pod:     pod("web-7d4b9c6f8-x2k9p", "5f6d7c8b9", byRS),
			wantErr: owner.ErrNotResolved,
		},
		{
			name:    "ReplicaSet not in the cache, name is only the hash",
			pod:     pod("x", "7d4b9c6f8", controllerOf("apps/v1", "ReplicaSet", "-7d4b9c6f8")),
			wantErr: owner.ErrNotResolved,
		},
		{
			name: "Job to CronJob",
			objects: []client.Object{
				cronJob("report", cronAnn),
				job("report-29000000", jobAnn, controllerOf("batch/v1", "CronJob", "report")),
			},
			pod:  pod("report-29000000-q7wz4", "", byJob),
			want: owner.Resolution{Workload: reportCron, Annotations: []map[string]string{jobAnn, cronAnn}, Found: true},
		},
		{
			name:    "Job whose CronJob is gone: the CronJob, not found",
			objects: []client.Object{job("report-29000000", jobAnn, controllerOf("batch/v1", "CronJob", "report"))},
			pod:     pod("report-29000000-q7wz4", "", byJob),
			want:    owner.Resolution{Workload: reportCron, Annotations: []map[string]string{jobAnn}},
		},
		{
			name:    "Job without controller is the workload",
			objects: []client.Object{job("report-29000000", jobAnn, nil)},
			pod:     pod("report-29000000-q7wz4", "", byJob),
			want:    owner.Resolution{Workload: reportJob, Annotations: []map[string]string{jobAnn}, Found: true},
		},
		{
			name:    "Job not in the cache: no naming rule to infer from",
			objects: []client.Object{cronJob("report", cronAnn)},
			pod:     pod("report-29000000-q7wz4", "", byJob),
			wantErr: owner.ErrNotResolved,
		},
		{
			name:    "StatefulSet",
			objects: []client.Object{statefulSet("db", deployAnn)},
			pod:     pod("db-0", "", controllerOf("apps/v1", "StatefulSet", "db")),
			want: owner.Resolution{
				Workload:    owner.Workload{Group: "apps", Kind: "StatefulSet", Namespace: ns, Name: "db"},
				Annotations: []map[string]string{deployAnn}, Found: true,
			},
		},
		{
			name: "StatefulSet gone: the StatefulSet, not found",
			pod:  pod("db-0", "", controllerOf("apps/v1", "StatefulSet", "db")),
			want: owner.Resolution{Workload: owner.Workload{Group: "apps", Kind: "StatefulSet", Namespace: ns, Name: "db"}},
		},
		{
			name:    "DaemonSet",
			objects: []client.Object{daemonSet("node-agent", deployAnn)},
			pod:     pod("node-agent-4xk2p", "", controllerOf("apps/v1", "DaemonSet", "node-agent")),
			want: owner.Resolution{
				Workload:    owner.Workload{Group: "apps", Kind: "DaemonSet", Namespace: ns, Name: "node-agent"},
				Annotations: []map[string]string{deployAnn}, Found: true,
			},
		},
		{
			name: "pod directly controlled by a Deployment (not how the controller does it, but readable)",
			objects: []client.Object{
				deployment("web", deployAnn),
			},
			pod:  pod("web-direct", "", byDeployment),
			want: owner.Resolution{Workload: webDeployment, Annotations: []map[string]string{deployAnn}, Found: true},
		},
		{
			name: "unwatched kind, no API reader: the direct owner, not read",
			pod:  pod("wf-step-1", "", controllerOf("argoproj.io/v1alpha1", "Workflow", "wf")),
			want: owner.Resolution{Workload: owner.Workload{Group: "argoproj.io", Kind: "Workflow", Namespace: ns, Name: "wf"}, Denied: true},
		},
		{
			name: "core ReplicationController is an unknown kind",
			pod:  pod("legacy-x1", "", controllerOf("v1", "ReplicationController", "legacy")),
			want: owner.Resolution{Workload: owner.Workload{Kind: "ReplicationController", Namespace: ns, Name: "legacy"}, Denied: true},
		},
		{
			name:    "unparsable owner apiVersion",
			pod:     pod("odd", "", controllerOf("a/b/c", "Thing", "odd")),
			wantErr: errAny,
		},
		{
			name:    "ReplicaSet read fails: the error, not ErrNotResolved",
			objects: []client.Object{replicaSet("web-7d4b9c6f8", rsAnn, byDeployment)},
			funcs:   failGets("ReplicaSet"),
			pod:     pod("web-7d4b9c6f8-x2k9p", "7d4b9c6f8", byRS),
			wantErr: errUnavailable,
		},
		{
			name: "Deployment read fails",
			objects: []client.Object{
				deployment("web", deployAnn),
				replicaSet("web-7d4b9c6f8", rsAnn, byDeployment),
			},
			funcs:   failGets("Deployment"),
			pod:     pod("web-7d4b9c6f8-x2k9p", "7d4b9c6f8", byRS),
			wantErr: errUnavailable,
		},
		{
			name:    "StatefulSet read fails",
			objects: []client.Object{statefulSet("db", nil)},
			funcs:   failGets("StatefulSet"),
			pod:     pod("db-0", "", controllerOf("apps/v1", "StatefulSet", "db")),
			wantErr: errUnavailable,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &owner.Resolver{Reader: newReader(t, tt.funcs, tt.objects...)}
			got, err := r.Resolve(t.Context(), tt.pod)
			if !matchErr(err, tt.wantErr) {
				t.Fatalf("Resolve() error = %v, want %v", err, tt.wantErr)
			}
			if tt.wantErr != nil {
				if tt.wantErr != owner.ErrNotResolved && errors.Is(err, owner.ErrNotResolved) {
					t.Errorf("Resolve() error = %v is ErrNotResolved; the caller would fall back instead of retrying", err)
				}
				return
			}
			if got.Direct.Kind == "" && tt.pod.OwnerReferences != nil && metav1.GetControllerOfNoCopy(tt.pod) != nil {
				t.Errorf("Resolve() Direct is empty for a pod with a controller")
			}
			got.Direct = owner.Workload{} // checked by TestResolveAnyKind
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Resolve() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// errAny matches any non-nil error.
var errAny = errors.New("any error")

func matchErr(err, want error) bool {
	switch want {
	case nil:
		return err == nil
	case errAny:
		return err != nil
	}
	return errors.Is(err, want)
}

// deleting marks obj as being deleted; the API server (and the fake client) holds it only while a finalizer does.
func deleting[T client.Object](obj T) T {
	obj.SetDeletionTimestamp(&metav1.Time{Time: time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)})
	obj.SetFinalizers([]string{"foregroundDeletion"})
	return obj
}

func TestExists(t *testing.T) {
	web := owner.Workload{Group: "apps", Kind: "Deployment", Namespace: ns, Name: "web"}
	tests := []struct {
		name     string
		objects  []client.Object
		funcs    *interceptor.Funcs
		workload owner.Workload
		want     bool
		wantErr  error
	}{
		{
			name:     "Deployment exists",
			objects:  []client.Object{deployment("web", nil)},
			workload: web,
			want:     true,
		},
		{
			name:     "Deployment being deleted counts as gone",
			objects:  []client.Object{deleting(deployment("web", nil))},
			workload: web,
		},
		{
			name:     "Deployment gone",
			workload: web,
		},
		{
			name:     "same name in another namespace does not count",
			objects:  []client.Object{&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "other", Name: "web"}}},
			workload: web,
		},
		{
			name:     "same name, another kind does not count",
			objects:  []client.Object{statefulSet("web", nil)},
			workload: web,
		},
		{
			name:     "ReplicaSet",
			objects:  []client.Object{replicaSet("web-7d4b9c6f8", nil, nil)},
			workload: owner.Workload{Group: "apps", Kind: "ReplicaSet", Namespace: ns, Name: "web-7d4b9c6f8"},
			want:     true,
		},
		{
			name:     "StatefulSet",
			objects:  []client.Object{statefulSet("db", nil)},
			workload: owner.Workload{Group: "apps", Kind: "StatefulSet", Namespace: ns, Name: "db"},
			want:     true,
		},
		{
			name:     "DaemonSet",
			objects:  []client.Object{daemonSet("node-agent", nil)},
			workload: owner.Workload{Group: "apps", Kind: "DaemonSet", Namespace: ns, Name: "node-agent"},
			want:     true,
		},
		{
			name:     "Job",
			objects:  []client.Object{job("report-29000000", nil, nil)},
			workload: owner.Workload{Group: "batch", Kind: "Job", Namespace: ns, Name: "report-29000000"},
			want:     true,
		},
		{
			name:     "CronJob being deleted",
			objects:  []client.Object{deleting(cronJob("report", nil))},
			workload: owner.Workload{Group: "batch", Kind: "CronJob", Namespace: ns, Name: "report"},
		},
		{
			name:     "unwatched kind without an API reader: existence unknown, never taken to be gone",
			workload: owner.Workload{Group: "argoproj.io", Kind: "Workflow", Namespace: ns, Name: "wf"},
			wantErr:  owner.ErrExistenceUnknown,
		},
		{
			name:     "bare pod: decided by the pod itself, not here",
			objects:  []client.Object{&corev1.Pod{ObjectMeta: meta("debug", nil, nil)}},
			workload: owner.Workload{Kind: "Pod", Namespace: ns, Name: "debug"},
		},
		{
			name:     "read fails",
			objects:  []client.Object{deployment("web", nil)},
			funcs:    failGets("Deployment"),
			workload: web,
			wantErr:  errUnavailable,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &owner.Resolver{Reader: newReader(t, tt.funcs, tt.objects...)}
			got, err := r.Exists(t.Context(), tt.workload)
			if !matchErr(err, tt.wantErr) {
				t.Fatalf("Exists() error = %v, want %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("Exists() = %t, want %t", got, tt.want)
			}
		})
	}
}

// TestExistsAfterDelete deletes through the client, as the garbage collector does: a finalizer holds the object
// with a deletion timestamp, and it is gone once the finalizer is removed.
func TestExistsAfterDelete(t *testing.T) {
	d := deployment("web", nil)
	d.Finalizers = []string{"example.com/hold"}
	c := fake.NewClientBuilder().WithScheme(clientgoscheme.Scheme).WithObjects(d).Build()
	r := &owner.Resolver{Reader: c}
	w := owner.Workload{Group: "apps", Kind: "Deployment", Namespace: ns, Name: "web"}

	steps := []struct {
		name string
		do   func(ctx context.Context) error
		want bool
	}{
		{name: "created", do: func(context.Context) error { return nil }, want: true},
		{name: "deleted, held by a finalizer", do: func(ctx context.Context) error { return c.Delete(ctx, d.DeepCopy()) }},
		{name: "finalizer removed", do: func(ctx context.Context) error {
			cur := &appsv1.Deployment{}
			if err := c.Get(ctx, client.ObjectKeyFromObject(d), cur); err != nil {
				return err
			}
			cur.Finalizers = nil
			return c.Update(ctx, cur)
		}},
	}
	for _, s := range steps {
		if err := s.do(t.Context()); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		got, err := r.Exists(t.Context(), w)
		if err != nil {
			t.Fatalf("%s: Exists() error = %v", s.name, err)
		}
		if got != s.want {
			t.Errorf("%s: Exists() = %t, want %t", s.name, got, s.want)
		}
	}
}

func TestWorkload(t *testing.T) {
	tests := []struct {
		workload  owner.Workload
		wantText  string
		wantKnown bool
	}{
		{owner.Workload{Group: "apps", Kind: "Deployment", Namespace: ns, Name: "web"}, "Deployment.apps/shop/web", true},
		{owner.Workload{Group: "batch", Kind: "CronJob", Namespace: ns, Name: "report"}, "CronJob.batch/shop/report", true},
		{owner.Workload{Kind: "Pod", Namespace: ns, Name: "debug"}, "Pod/shop/debug", true},
		{owner.Workload{Kind: "ReplicationController", Namespace: ns, Name: "legacy"}, "ReplicationController/shop/legacy", false},
		{owner.Workload{Group: "argoproj.io", Kind: "Rollout", Namespace: ns, Name: "web"}, "Rollout.argoproj.io/shop/web", false},
		{owner.Workload{Group: "apps", Kind: "Pod", Namespace: ns, Name: "odd"}, "Pod.apps/shop/odd", false},
	}
	for _, tt := range tests {
		t.Run(tt.wantText, func(t *testing.T) {
			if got := tt.workload.String(); got != tt.wantText {
				t.Errorf("String() = %q, want %q", got, tt.wantText)
			}
			if got := tt.workload.Known(); got != tt.wantKnown {
				t.Errorf("Known() = %t, want %t", got, tt.wantKnown)
			}
		})
	}
}
