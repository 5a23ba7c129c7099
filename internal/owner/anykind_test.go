package owner_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/deployment-tracker/deployment-tracker/internal/owner"
)

var (
	rolloutGVK = schema.GroupVersionKind{Group: "argoproj.io", Version: "v1alpha1", Kind: "Rollout"}
	clusterGVK = schema.GroupVersionKind{Group: "postgresql.cnpg.io", Version: "v1", Kind: "Cluster"}
	appGVK     = schema.GroupVersionKind{Group: "example.com", Version: "v1", Kind: "App"}
)

// custom is an object of a kind the tracker does not watch, as a CRD serves it.
func custom(gvk schema.GroupVersionKind, name string, annotations map[string]string, owners []metav1.OwnerReference) *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(gvk)
	u.SetNamespace(ns)
	u.SetName(name)
	u.SetUID(types.UID("uid-" + name))
	u.SetAnnotations(annotations)
	u.SetOwnerReferences(owners)
	return u
}

// apiReader serves custom kinds (and everything else) as the API server's metadata endpoint does, counting GETs.
func apiReader(t *testing.T, gets *int, forbidden map[string]bool, objs ...client.Object) client.Reader {
	t.Helper()
	mapper := apimeta.NewDefaultRESTMapper(nil)
	for _, gvk := range []schema.GroupVersionKind{rolloutGVK, clusterGVK, appGVK} {
		mapper.Add(gvk, apimeta.RESTScopeNamespace)
	}
	return fake.NewClientBuilder().WithScheme(clientgoscheme.Scheme).WithRESTMapper(mapper).WithObjects(objs...).
		WithInterceptorFuncs(interceptor.Funcs{
			Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
				*gets++
				gvk := obj.GetObjectKind().GroupVersionKind()
				if forbidden[gvk.Kind] {
					return apierrors.NewForbidden(schema.GroupResource{Group: gvk.Group, Resource: gvk.Kind}, key.Name, errors.New("RBAC: access denied"))
				}
				return c.Get(ctx, key, obj, opts...)
			},
		}).Build()
}

func TestResolveAnyKind(t *testing.T) {
	rsAnn := map[string]string{"rollout.argoproj.io/revision": "4"}
	rolloutAnn := map[string]string{"metadata.github.com/team": "web"}
	byRollout := controllerOf("argoproj.io/v1alpha1", "Rollout", "web")
	rs := replicaSet("web-6c5d8f7b9", rsAnn, byRollout)
	webRollout := owner.Workload{Group: "argoproj.io", Kind: "Rollout", Namespace: ns, Name: "web"}
	webRS := owner.Workload{Group: "apps", Kind: "ReplicaSet", Namespace: ns, Name: "web-6c5d8f7b9"}
	pg := owner.Workload{Group: "postgresql.cnpg.io", Kind: "Cluster", Namespace: ns, Name: "pg"}

	tests := []struct {
		name      string
		cached    []client.Object // what the cache holds (watched kinds)
		api       []client.Object // what the API server holds
		forbidden map[string]bool
		pod       *corev1.Pod
		want      owner.Resolution
		wantGets  int
		wantDeny  []schema.GroupKind
	}{
		{
			name:     "ReplicaSet to Argo Rollout: one name across revisions, annotations nearest first",
			cached:   []client.Object{rs},
			api:      []client.Object{custom(rolloutGVK, "web", rolloutAnn, nil)},
			pod:      pod("web-6c5d8f7b9-abcde", "", controllerOf("apps/v1", "ReplicaSet", "web-6c5d8f7b9")),
			want:     owner.Resolution{Workload: webRollout, Annotations: []map[string]string{rsAnn, rolloutAnn}, Found: true, Direct: webRS},
			wantGets: 1,
		},
		{
			name:     "pod controlled by a custom kind directly",
			api:      []client.Object{custom(clusterGVK, "pg", nil, nil)},
			pod:      pod("pg-1", "", controllerOf("postgresql.cnpg.io/v1", "Cluster", "pg")),
			want:     owner.Resolution{Workload: pg, Annotations: []map[string]string{nil}, Found: true, Direct: pg},
			wantGets: 1,
		},
		{
			name:   "custom kind controlled by a custom kind: the top controller",
			cached: []client.Object{},
			api: []client.Object{
				custom(clusterGVK, "pg", nil, controllerOf("example.com/v1", "App", "shop")),
				custom(appGVK, "shop", rolloutAnn, nil),
			},
			pod: pod("pg-1", "", controllerOf("postgresql.cnpg.io/v1", "Cluster", "pg")),
			want: owner.Resolution{Workload: owner.Workload{Group: "example.com", Kind: "App", Namespace: ns, Name: "shop"},
				Annotations: []map[string]string{nil, rolloutAnn}, Found: true, Direct: pg},
			wantGets: 2,
		},
		{
			name: "a Deployment controlled by an operator's object stays the workload",
			cached: []client.Object{
				deployment("web", nil),
				replicaSet("web-7d4b9c6f8", nil, controllerOf("apps/v1", "Deployment", "web")),
			},
			api: []client.Object{custom(appGVK, "shop", nil, nil)},
			pod: pod("web-7d4b9c6f8-x2k9p", "7d4b9c6f8", controllerOf("apps/v1", "ReplicaSet", "web-7d4b9c6f8")),
			want: owner.Resolution{Workload: owner.Workload{Group: "apps", Kind: "Deployment", Namespace: ns, Name: "web"},
				Annotations: []map[string]string{nil, nil}, Found: true,
				Direct: owner.Workload{Group: "apps", Kind: "ReplicaSet", Namespace: ns, Name: "web-7d4b9c6f8"}},
		},
		{
			name:      "access refused: the refused owner, named by its child's reference",
			cached:    []client.Object{rs},
			api:       []client.Object{custom(rolloutGVK, "web", rolloutAnn, nil)},
			forbidden: map[string]bool{"Rollout": true},
			pod:       pod("web-6c5d8f7b9-abcde", "", controllerOf("apps/v1", "ReplicaSet", "web-6c5d8f7b9")),
			want:      owner.Resolution{Workload: webRollout, Annotations: []map[string]string{rsAnn}, Denied: true, Direct: webRS},
			wantGets:  1,
			wantDeny:  []schema.GroupKind{rolloutGVK.GroupKind()},
		},
		{
			name:     "custom owner gone (API server says so): the owner, not found",
			cached:   []client.Object{rs},
			pod:      pod("web-6c5d8f7b9-abcde", "", controllerOf("apps/v1", "ReplicaSet", "web-6c5d8f7b9")),
			want:     owner.Resolution{Workload: webRollout, Annotations: []map[string]string{rsAnn}, Direct: webRS},
			wantGets: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gets := 0
			var denied []schema.GroupKind
			r := &owner.Resolver{
				Reader:    newReader(t, nil, tt.cached...),
				APIReader: apiReader(t, &gets, tt.forbidden, tt.api...),
				Denied:    func(gk schema.GroupKind, _ error) { denied = append(denied, gk) },
			}
			for range 3 { // reads of unwatched kinds are reused within the TTL; refusals are reported once
				got, err := r.Resolve(t.Context(), tt.pod)
				if err != nil {
					t.Fatalf("Resolve() error = %v", err)
				}
				if diff := cmp.Diff(tt.want, got); diff != "" {
					t.Fatalf("Resolve() mismatch (-want +got):\n%s", diff)
				}
			}
			if gets != tt.wantGets {
				t.Errorf("API GETs = %d, want %d", gets, tt.wantGets)
			}
			if diff := cmp.Diff(tt.wantDeny, denied); diff != "" {
				t.Errorf("Denied calls (-want +got):\n%s", diff)
			}
		})
	}
}

func TestResolveAnyKindTTL(t *testing.T) {
	gets := 0
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	r := &owner.Resolver{
		Reader:    newReader(t, nil),
		APIReader: apiReader(t, &gets, nil, custom(clusterGVK, "pg", nil, nil)),
		TTL:       time.Minute,
		Now:       func() time.Time { return now },
	}
	p := pod("pg-1", "", controllerOf("postgresql.cnpg.io/v1", "Cluster", "pg"))
	for _, step := range []struct {
		advance  time.Duration
		wantGets int
	}{{0, 1}, {30 * time.Second, 1}, {31 * time.Second, 2}} {
		now = now.Add(step.advance)
		if _, err := r.Resolve(t.Context(), p); err != nil {
			t.Fatal(err)
		}
		if gets != step.wantGets {
			t.Errorf("after %v: GETs = %d, want %d", step.advance, gets, step.wantGets)
		}
	}
}

func TestExistsAnyKind(t *testing.T) {
	pg := owner.Workload{Group: "postgresql.cnpg.io", Kind: "Cluster", Namespace: ns, Name: "pg"}
	mapper := apimeta.NewDefaultRESTMapper([]schema.GroupVersion{clusterGVK.GroupVersion()})
	mapper.Add(clusterGVK, apimeta.RESTScopeNamespace)
	tests := []struct {
		name      string
		api       []client.Object
		forbidden map[string]bool
		mapper    apimeta.RESTMapper
		learn     bool // a pod's reference named the version first
		want      bool
		wantErr   error
	}{
		{name: "exists (version from a reference)", api: []client.Object{custom(clusterGVK, "pg", nil, nil)}, learn: true, want: true},
		{name: "exists (version from the RESTMapper)", api: []client.Object{custom(clusterGVK, "pg", nil, nil)}, mapper: mapper, want: true},
		{name: "gone", learn: true},
		{name: "being deleted counts as gone", api: []client.Object{deletingU(custom(clusterGVK, "pg", nil, nil))}, learn: true},
		{name: "access refused: unknown", api: []client.Object{custom(clusterGVK, "pg", nil, nil)}, forbidden: map[string]bool{"Cluster": true},
			learn: true, wantErr: owner.ErrExistenceUnknown},
		{name: "no version known: unknown", wantErr: owner.ErrExistenceUnknown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gets := 0
			r := &owner.Resolver{Reader: newReader(t, nil), APIReader: apiReader(t, &gets, tt.forbidden, tt.api...), Mapper: tt.mapper}
			if tt.learn {
				_, _ = r.Resolve(t.Context(), pod("pg-1", "", controllerOf("postgresql.cnpg.io/v1", "Cluster", "pg")))
			}
			for i := range 2 { // never cached: each call asks
				before := gets
				got, err := r.Exists(t.Context(), pg)
				if !matchErr(err, tt.wantErr) {
					t.Fatalf("Exists() error = %v, want %v", err, tt.wantErr)
				}
				if got != tt.want {
					t.Errorf("Exists() = %t, want %t", got, tt.want)
				}
				if tt.wantErr == nil && gets != before+1 {
					t.Errorf("call %d: Exists() made %d GETs, want 1", i, gets-before)
				}
			}
		})
	}
}

func deletingU(u *unstructured.Unstructured) *unstructured.Unstructured {
	u.SetDeletionTimestamp(&metav1.Time{Time: time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)})
	u.SetFinalizers([]string{"example.com/hold"})
	return u
}
