package flux

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func readKustomization(t *testing.T, file string) *unstructured.Unstructured {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", file))
	if err != nil {
		t.Fatal(err)
	}
	u := &unstructured.Unstructured{}
	if err := json.Unmarshal(data, &u.Object); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return u
}

func TestApplied(t *testing.T) {
	tests := []struct {
		file   string
		want   Applied
		wantOK bool
	}{
		{file: "kustomization-git.json", wantOK: true, want: Applied{
			Revision: "main@sha1:" + sha1A, Commit: sha1A, At: time.Date(2025, 6, 1, 10, 4, 30, 0, time.UTC),
		}},
		{file: "kustomization-oci.json", wantOK: true, want: Applied{
			Revision: "latest@sha256:3b6cdcc7adcc9a84d3214ee1c029543789d90b5ae69debe9efa3f66e982875de",
			Commit:   sha1B, At: time.Date(2025, 6, 2, 8, 0, 0, 0, time.UTC),
		}},
		{file: "kustomization-progressing.json"},
		{file: "kustomization-failed.json"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			u := readKustomization(t, tt.file)
			for name, obj := range map[string]*unstructured.Unstructured{"object": u, "trimmed": trimmed(t, u)} {
				got, ok := FromUnstructured(obj).Applied()
				if ok != tt.wantOK {
					t.Fatalf("%s: Applied() ok = %t, want %t", name, ok, tt.wantOK)
				}
				if diff := cmp.Diff(tt.want, got); diff != "" {
					t.Errorf("%s: Applied() (-want +got):\n%s", name, diff)
				}
			}
		})
	}
}

func trimmed(t *testing.T, u *unstructured.Unstructured) *unstructured.Unstructured {
	t.Helper()
	out, err := Trim(u.DeepCopy())
	if err != nil {
		t.Fatal(err)
	}
	return out.(*unstructured.Unstructured)
}

func TestFromUnstructured(t *testing.T) {
	got := FromUnstructured(readKustomization(t, "kustomization-oci.json"))
	want := Kustomization{
		Namespace: "flux-system", Name: "infra", Repository: "octo-org/infra",
		Source:                    SourceRef{Kind: "OCIRepository", Name: "infra-manifests", Namespace: "sources"},
		LastAppliedRevision:       "latest@sha256:3b6cdcc7adcc9a84d3214ee1c029543789d90b5ae69debe9efa3f66e982875de",
		LastAppliedOriginRevision: "main@sha1:" + sha1B,
		Ready: &Condition{Status: "True", Reason: ReasonReconciliationSucceeded, LastTransitionTime: time.Date(2025, 6, 2, 8, 0, 0, 0, time.UTC),
			Message: "Applied revision: latest@sha256:3b6cdcc7adcc9a84d3214ee1c029543789d90b5ae69debe9efa3f66e982875de"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("FromUnstructured (-want +got):\n%s", diff)
	}
	// The source namespace defaults to the Kustomization's.
	if got := FromUnstructured(readKustomization(t, "kustomization-git.json")).Source; got != (SourceRef{Kind: "GitRepository", Name: "fleet", Namespace: "flux-system"}) {
		t.Errorf("Source = %+v", got)
	}
}

// TestTrim: the cache keeps what FromUnstructured reads and the identity, not the rest.
func TestTrim(t *testing.T) {
	u := readKustomization(t, "kustomization-git.json")
	u.SetAnnotations(map[string]string{AnnotationCommitTime: "2025-06-01T10:00:00Z", "other": "x"})
	got := trimmed(t, u)
	if diff := cmp.Diff(FromUnstructured(u), FromUnstructured(got)); diff != "" {
		t.Errorf("FromUnstructured differs after Trim (-before +after):\n%s", diff)
	}
	if got.GetManagedFields() != nil || got.GetAnnotations()["other"] != "" {
		t.Errorf("Trim kept managed fields or other annotations: %v", got.Object["metadata"])
	}
	if _, ok, _ := unstructured.NestedMap(got.Object, "status", "inventory"); ok {
		t.Error("Trim kept status.inventory")
	}
	if conds, _, _ := unstructured.NestedSlice(got.Object, "status", "conditions"); len(conds) != 1 {
		t.Errorf("Trim kept %d conditions, want Ready only", len(conds))
	}
	if got.GetName() != "apps" || got.GetNamespace() != "flux-system" || got.GetResourceVersion() != "48213" || got.GetUID() == "" {
		t.Errorf("Trim lost the identity: %v", got.Object["metadata"])
	}
	if tomb, err := Trim("not an object"); err != nil || tomb != "not an object" {
		t.Errorf("Trim of another type = %v, %v; want it unchanged", tomb, err)
	}
}
