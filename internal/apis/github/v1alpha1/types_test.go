package v1alpha1

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/yaml"
)

// TestSpecFieldNames pins the JSON names of the spec: the source tool's objects (sourceRef, extract,
// repository) must decode unchanged but for their apiVersion, and the tracker's own fields are what the README
// documents. Decoding is strict, so a renamed field fails here.
func TestSpecFieldNames(t *testing.T) {
	const doc = `
apiVersion: github.deployment-tracker.io/v1alpha1
kind: GitHubDeployment
metadata: {name: checkout, namespace: shop}
spec:
  sourceRef: {apiVersion: apps/v1, kind: Deployment, name: checkout, namespace: shop}
  extract: {containerName: app, jsonPath: "", regexp: '^(\d+\.\d+\.\d+)', template: 'v{}'}
  repository: {name: octo-org/checkout, environment: production}
  environmentURL: https://shop.example.com
  productionEnvironment: true
  transientEnvironment: false
  description: the checkout service
  payloadAnnotationPrefix: deploy.example.com/
status:
  observedGeneration: 2
  phase: Current
  ref: v1.4.2
  deploymentID: 42
  lastState: success
  lastSent: "2025-01-02T03:04:05Z"
  conditions:
    - {type: Ready, status: "True", reason: Synced, message: "", lastTransitionTime: "2025-01-02T03:04:05Z"}
`
	var got GitHubDeployment
	if err := yaml.UnmarshalStrict([]byte(doc), &got); err != nil {
		t.Fatalf("UnmarshalStrict() error = %v", err)
	}
	yes, no := true, false
	sent := metav1.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	want := GitHubDeployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: GroupVersion.String(), Kind: "GitHubDeployment"},
		ObjectMeta: metav1.ObjectMeta{Name: "checkout", Namespace: "shop"},
		Spec: GitHubDeploymentSpec{
			SourceRef:               SourceRef{APIVersion: "apps/v1", Kind: "Deployment", Name: "checkout", Namespace: "shop"},
			Extract:                 Extract{ContainerName: "app", Regexp: `^(\d+\.\d+\.\d+)`, Template: "v{}"},
			Repository:              Repository{Name: "octo-org/checkout", Environment: "production"},
			EnvironmentURL:          "https://shop.example.com",
			ProductionEnvironment:   &yes,
			TransientEnvironment:    &no,
			Description:             "the checkout service",
			PayloadAnnotationPrefix: "deploy.example.com/",
		},
		Status: GitHubDeploymentStatus{
			ObservedGeneration: 2, Phase: "Current", Ref: "v1.4.2", DeploymentID: 42, LastState: "success", LastSent: &sent,
			Conditions: []metav1.Condition{{Type: ConditionReady, Status: metav1.ConditionTrue, Reason: ReasonSynced, LastTransitionTime: sent}},
		},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("decoded GitHubDeployment (-want +got):\n%s", diff)
	}
}

func TestSource(t *testing.T) {
	tests := []struct {
		name    string
		ref     SourceRef
		wantGVK schema.GroupVersionKind
		wantKey types.NamespacedName
		wantErr error // nil: no error; errAny: some error
	}{
		{
			name:    "namespace defaults to the object's",
			ref:     SourceRef{APIVersion: "apps/v1", Kind: "Deployment", Name: "web"},
			wantGVK: schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"},
			wantKey: types.NamespacedName{Namespace: "shop", Name: "web"},
		},
		{
			name:    "own namespace spelt out",
			ref:     SourceRef{APIVersion: "argoproj.io/v1alpha1", Kind: "Rollout", Name: "web", Namespace: "shop"},
			wantGVK: schema.GroupVersionKind{Group: "argoproj.io", Version: "v1alpha1", Kind: "Rollout"},
			wantKey: types.NamespacedName{Namespace: "shop", Name: "web"},
		},
		{
			name:    "core group",
			ref:     SourceRef{APIVersion: "v1", Kind: "Pod", Name: "one"},
			wantGVK: schema.GroupVersionKind{Version: "v1", Kind: "Pod"},
			wantKey: types.NamespacedName{Namespace: "shop", Name: "one"},
		},
		{
			name:    "another namespace",
			ref:     SourceRef{APIVersion: "apps/v1", Kind: "Deployment", Name: "web", Namespace: "payments"},
			wantErr: ErrOtherNamespace,
		},
		{name: "apiVersion with two slashes", ref: SourceRef{APIVersion: "a/b/c", Kind: "Deployment", Name: "web"}, wantErr: errAny},
		{name: "group without version", ref: SourceRef{APIVersion: "apps/", Kind: "Deployment", Name: "web"}, wantErr: errAny},
		{name: "no apiVersion", ref: SourceRef{Kind: "Deployment", Name: "web"}, wantErr: errAny},
		{name: "no kind", ref: SourceRef{APIVersion: "apps/v1", Name: "web"}, wantErr: errAny},
		{name: "no name", ref: SourceRef{APIVersion: "apps/v1", Kind: "Deployment"}, wantErr: errAny},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := &GitHubDeployment{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "ghd"}, Spec: GitHubDeploymentSpec{SourceRef: tt.ref}}
			gvk, key, err := d.Source()
			switch {
			case tt.wantErr == nil && err != nil:
				t.Fatalf("Source() error = %v", err)
			case tt.wantErr == nil:
			case err == nil:
				t.Fatalf("Source() = %v %v, want an error", gvk, key)
			case tt.wantErr != errAny && !errors.Is(err, tt.wantErr):
				t.Fatalf("Source() error = %v, want %v", err, tt.wantErr)
			default:
				return
			}
			if diff := cmp.Diff(tt.wantGVK, gvk); diff != "" {
				t.Errorf("Source() kind (-want +got):\n%s", diff)
			}
			if key != tt.wantKey {
				t.Errorf("Source() key = %v, want %v", key, tt.wantKey)
			}
			if gk := tt.ref.GroupKind(); gk != tt.wantGVK.GroupKind() {
				t.Errorf("GroupKind() = %v, want %v", gk, tt.wantGVK.GroupKind())
			}
		})
	}
}

var errAny = errors.New("any error")

// TestAddToScheme: the kinds are registered under the group's version, so clients and caches can use them.
func TestAddToScheme(t *testing.T) {
	s := runtime.NewScheme()
	if err := AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	for _, obj := range []runtime.Object{&GitHubDeployment{}, &GitHubDeploymentList{}} {
		gvks, _, err := s.ObjectKinds(obj)
		if err != nil || len(gvks) != 1 || gvks[0].GroupVersion() != GroupVersion {
			t.Errorf("ObjectKinds(%T) = %v, %v; want one kind of %s", obj, gvks, err, GroupVersion)
		}
	}
}
