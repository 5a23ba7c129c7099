package manifest_test

import (
	"strings"
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/deployment-tracker/deployment-tracker/deploy/manifest"
)

func TestLoad(t *testing.T) {
	tests := []struct {
		name      string
		files     fstest.MapFS
		wantNames []string
		wantErr   string
	}{
		{
			name: "files in lexical order, documents in file order, comment-only documents skipped",
			files: fstest.MapFS{
				"20-b.yaml":  {Data: []byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n---\n# only a comment\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: d\n")},
				"10-a.yaml":  {Data: []byte("# header\n---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: a\n")},
				"README.md":  {Data: []byte("not a manifest")},
				"sub/x.yaml": {Data: []byte("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: not-loaded\n")},
			},
			wantNames: []string{"a", "c", "d"},
		},
		{
			name:    "duplicate key",
			files:   fstest.MapFS{"a.yaml": {Data: []byte("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: a\n  name: b\n")}},
			wantErr: `a.yaml: document 1`,
		},
		{
			name:    "no name",
			files:   fstest.MapFS{"a.yaml": {Data: []byte("---\napiVersion: v1\nkind: Namespace\nmetadata: {}\n")}},
			wantErr: "a.yaml: document 1: /v1, Kind=Namespace without metadata.name",
		},
		{
			name:    "no kind",
			files:   fstest.MapFS{"a.yaml": {Data: []byte("apiVersion: v1\nmetadata:\n  name: a\n")}},
			wantErr: "a.yaml: document 1: Object 'Kind' is missing",
		},
		{
			name:    "not YAML",
			files:   fstest.MapFS{"a.yaml": {Data: []byte("apiVersion: [v1\n")}},
			wantErr: "a.yaml: document 1",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			objs, err := manifest.Load(tt.files)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Load() error = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Load() error = %v", err)
			}
			var names []string
			for _, o := range objs {
				names = append(names, o.GetName())
			}
			if diff := cmp.Diff(tt.wantNames, names); diff != "" {
				t.Errorf("Load() names (-want +got):\n%s", diff)
			}
		})
	}
}

func TestFindTyped(t *testing.T) {
	objs, err := manifest.Parse([]byte(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: ok
spec:
  replicas: 2
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: typo
spec:
  replicaz: 2
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: twice
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: twice
`))
	if err != nil {
		t.Fatalf("Parse() error = %v", err)
	}
	deployment := schema.GroupKind{Group: "apps", Kind: "Deployment"}
	configMap := schema.GroupKind{Kind: "ConfigMap"}

	d, err := manifest.FindTyped[appsv1.Deployment](objs, deployment, "ok")
	if err != nil {
		t.Fatalf("FindTyped(ok) error = %v", err)
	}
	if d.Spec.Replicas == nil || *d.Spec.Replicas != 2 || d.Kind != "Deployment" {
		t.Errorf("FindTyped(ok) = %+v, want a Deployment with 2 replicas", d)
	}

	errTests := []struct {
		name    string
		find    func() error
		wantErr string
	}{
		{
			name: "unknown field",
			find: func() error {
				_, err := manifest.FindTyped[appsv1.Deployment](objs, deployment, "typo")
				return err
			},
			wantErr: `unknown field "spec.replicaz"`,
		},
		{
			name: "not found",
			find: func() error {
				_, err := manifest.FindTyped[appsv1.Deployment](objs, deployment, "missing")
				return err
			},
			wantErr: `Deployment.apps "missing": not found`,
		},
		{
			name: "same kind and name twice",
			find: func() error {
				_, err := manifest.FindTyped[corev1.ConfigMap](objs, configMap, "twice")
				return err
			},
			wantErr: `ConfigMap "twice": defined more than once`,
		},
	}
	for _, tt := range errTests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.find(); err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error = %v, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}
