package podwatch_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/deployment-tracker/deployment-tracker/internal/podwatch"
)

// The scope of the tracker reads the ignore annotation on pods and owners, the labels a workload selector names,
// and the labels of namespaces: the transforms keep them, and nothing more.
func TestScopeFieldsKept(t *testing.T) {
	ignoredPod := func() *corev1.Pod {
		p := fullPod(t)
		p.Annotations[podwatch.AnnotationIgnore] = "true"
		return p
	}
	ignoredOwner := func() *metav1.PartialObjectMetadata {
		m := ownerMetadata()
		m.Annotations[podwatch.AnnotationIgnore] = "true"
		return m
	}
	wantPod := func(labels map[string]string, ignored bool) *corev1.Pod {
		p := compactPod(strippedFullPod())
		for k, v := range labels {
			p.Labels[k] = v
		}
		if ignored {
			p.Annotations[podwatch.AnnotationIgnore] = "true"
		}
		return p
	}
	wantOwner := func(labels map[string]string, ignored bool) *metav1.PartialObjectMetadata {
		m := strippedOwnerMetadata()
		m.Labels = labels
		if ignored {
			m.Annotations[podwatch.AnnotationIgnore] = "true"
		}
		return m
	}
	tests := []struct {
		name      string
		transform func(any) (any, error)
		in        runtime.Object
		want      runtime.Object
	}{
		{"Strip: ignored pod", podwatch.Strip, ignoredPod(), wantPod(nil, true)},
		{"Strip: ignored owner", podwatch.Strip, ignoredOwner(), wantOwner(nil, true)},
		{"StripPod: ignored pod", podwatch.StripPod, ignoredPod(), func() *corev1.Pod {
			p := strippedFullPod()
			p.Annotations[podwatch.AnnotationIgnore] = "true"
			return p
		}()},
		{"Keeping nothing is Strip", podwatch.Keeping(), fullPod(t), wantPod(nil, false)},
		{"Keeping: pod keeps the named labels", podwatch.Keeping("app.kubernetes.io/part-of", "app", "absent", "app"), fullPod(t),
			wantPod(map[string]string{"app": "web", "app.kubernetes.io/part-of": "shop"}, false)},
		{"Keeping: owner keeps the named labels", podwatch.Keeping("app", "shard"), ignoredOwner(),
			wantOwner(map[string]string{"app": "web"}, true)},
		{"Keeping: other objects unchanged", podwatch.Keeping("app"), &corev1.ConfigMap{}, &corev1.ConfigMap{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.transform(tt.in)
			if err != nil {
				t.Fatalf("transform error = %v", err)
			}
			if p, ok := got.(*podwatch.Pod); ok {
				got = p.Unpack()
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("transform mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestKeepingInternsEqualLabels(t *testing.T) {
	keep := podwatch.Keeping("app", "tier")
	a, b := fullPod(t), fullPod(t)
	a.Labels["tier"], b.Labels["tier"] = "front", "front"
	pa, _ := keep(a)
	pb, _ := keep(b)
	if diff := cmp.Diff(pa.(*podwatch.Pod).GetLabels(), pb.(*podwatch.Pod).GetLabels()); diff != "" {
		t.Errorf("labels differ (-a +b):\n%s", diff)
	}
}

func TestStripNamespace(t *testing.T) {
	in := &metav1.PartialObjectMetadata{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"},
		ObjectMeta: metav1.ObjectMeta{
			Name: "shop", UID: "u-shop", ResourceVersion: "7", CreationTimestamp: ts("2025-01-10T08:00:00Z"),
			Labels:        map[string]string{"shard": "a", "kubernetes.io/metadata.name": "shop"},
			Annotations:   map[string]string{"kubectl.kubernetes.io/last-applied-configuration": "{}"},
			ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubectl"}},
			Finalizers:    []string{"kubernetes"},
		},
	}
	want := &metav1.PartialObjectMetadata{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"},
		ObjectMeta: metav1.ObjectMeta{
			Name: "shop", UID: "u-shop", ResourceVersion: "7", CreationTimestamp: ts("2025-01-10T08:00:00Z"),
			Labels: map[string]string{"shard": "a", "kubernetes.io/metadata.name": "shop"},
		},
	}
	got, err := podwatch.StripNamespace(in)
	if err != nil {
		t.Fatalf("StripNamespace() error = %v", err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("StripNamespace() mismatch (-want +got):\n%s", diff)
	}
	if got, _ := podwatch.StripNamespace(fullPod(t)); got.(*corev1.Pod).Spec.Containers == nil {
		t.Error("StripNamespace() changed a pod")
	}
}
