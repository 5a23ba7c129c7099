package podwatch_test

import (
	"testing"
	"unsafe"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/deployment-tracker/deployment-tracker/internal/podwatch"
)

// compactPod is what reading a compact Pod gives of a pod that StripPod returned as stripped: the same but the
// images of its container statuses, and its TypeMeta.
func compactPod(stripped *corev1.Pod) *corev1.Pod {
	p := stripped.DeepCopy()
	p.TypeMeta = metav1.TypeMeta{}
	for _, ss := range [][]corev1.ContainerStatus{p.Status.InitContainerStatuses, p.Status.ContainerStatuses} {
		for i := range ss {
			ss[i].Image = ""
		}
	}
	return p
}

// TestCompactPod checks that a compact Pod stands for what StripPod keeps of a pod (but the images of container
// statuses), for every pod of TestStripPod.
func TestCompactPod(t *testing.T) {
	for _, tt := range stripPodTests() {
		t.Run(tt.name, func(t *testing.T) {
			in := tt.in(t)
			before := in.DeepCopy()
			p := podwatch.Compact(in)
			got := p.Unpack()
			if diff := cmp.Diff(compactPod(tt.want), got); diff != "" {
				t.Errorf("Compact().Unpack() mismatch (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(before, in); diff != "" {
				t.Errorf("Compact() modified its input (-before +after):\n%s", diff)
			}
			if diff := cmp.Diff(got, podwatch.Compact(got).Unpack()); diff != "" {
				t.Errorf("Compact(Unpack()) is not Unpack() (-once +twice):\n%s", diff)
			}
			// The metadata handlers read is the pod's.
			meta := metav1.ObjectMeta{
				Name: p.GetName(), Namespace: p.GetNamespace(), UID: p.GetUID(), ResourceVersion: p.GetResourceVersion(),
				CreationTimestamp: p.GetCreationTimestamp(), DeletionTimestamp: p.GetDeletionTimestamp(),
				Labels: p.GetLabels(), Annotations: p.GetAnnotations(), OwnerReferences: p.GetOwnerReferences(),
			}
			if diff := cmp.Diff(got.ObjectMeta, meta); diff != "" {
				t.Errorf("metav1.Object of the compact Pod (-unpacked +getters):\n%s", diff)
			}
			// Each Unpack is a pod of its own: changing one changes neither the Pod nor another.
			want := p.Unpack()
			for k := range got.Labels {
				got.Labels[k] = "changed"
			}
			for i := range got.Spec.Containers {
				got.Spec.Containers[i].Image = "changed"
			}
			for i := range got.Status.ContainerStatuses {
				got.Status.ContainerStatuses[i].ImageID = "changed"
			}
			if diff := cmp.Diff(want, p.Unpack()); diff != "" {
				t.Errorf("a change to an unpacked pod reached the compact Pod (-before +after):\n%s", diff)
			}
		})
	}
}

func TestPodObject(t *testing.T) {
	full := fullPod(t)
	p := podwatch.Compact(full)

	c, ok := p.DeepCopyObject().(*podwatch.Pod)
	if !ok || c == p {
		t.Fatalf("DeepCopyObject() = %T %p, want another *podwatch.Pod than %p", c, c, p)
	}
	if diff := cmp.Diff(p.Unpack(), c.Unpack()); diff != "" {
		t.Errorf("DeepCopyObject() (-original +copy):\n%s", diff)
	}
	if gvk := p.GetObjectKind().GroupVersionKind(); !gvk.Empty() {
		t.Errorf("GetObjectKind() = %v, want empty", gvk)
	}

	// The setters keep what the transform keeps.
	c.SetName("renamed")
	c.SetNamespace("elsewhere")
	c.SetUID("u2")
	c.SetResourceVersion("99")
	c.SetCreationTimestamp(ts("2025-06-02T00:00:00Z"))
	c.SetDeletionTimestamp(tsp("2025-06-02T01:00:00Z"))
	c.SetLabels(map[string]string{"app": "web", podwatch.LabelControllerRevisionHash: "db-1"})
	c.SetAnnotations(map[string]string{"prometheus.io/scrape": "true", "metadata.github.com/team": "other"})
	c.SetOwnerReferences([]metav1.OwnerReference{
		{APIVersion: "example.com/v1", Kind: "Tracker", Name: "t", UID: "u3"},
		{APIVersion: "apps/v1", Kind: "StatefulSet", Name: "db", UID: "u4", Controller: ptr.To(true)},
	})
	c.SetGenerateName("web-")
	c.SetGeneration(3)
	c.SetSelfLink("/x")
	c.SetDeletionGracePeriodSeconds(ptr.To[int64](30))
	c.SetFinalizers([]string{"f"})
	c.SetManagedFields(full.ManagedFields)
	want := metav1.ObjectMeta{
		Name: "renamed", Namespace: "elsewhere", UID: "u2", ResourceVersion: "99",
		CreationTimestamp: ts("2025-06-02T00:00:00Z"), DeletionTimestamp: tsp("2025-06-02T01:00:00Z"),
		Labels:          map[string]string{podwatch.LabelControllerRevisionHash: "db-1"},
		Annotations:     map[string]string{"metadata.github.com/team": "other"},
		OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "StatefulSet", Name: "db", UID: "u4", Controller: ptr.To(true)}},
	}
	if diff := cmp.Diff(want, c.Unpack().ObjectMeta); diff != "" {
		t.Errorf("after the setters (-want +got):\n%s", diff)
	}
	if c.GetGenerateName() != "" || c.GetGeneration() != 0 || c.GetSelfLink() != "" || c.GetDeletionGracePeriodSeconds() != nil ||
		c.GetFinalizers() != nil || c.GetManagedFields() != nil {
		t.Error("a field the compact Pod does not keep was kept")
	}
	c.SetDeletionTimestamp(nil)
	c.SetCreationTimestamp(metav1.Time{})
	c.SetLabels(nil)
	c.SetAnnotations(nil)
	c.SetOwnerReferences(nil)
	if got := c.Unpack().ObjectMeta; got.DeletionTimestamp != nil || !got.CreationTimestamp.IsZero() || got.Labels != nil ||
		got.Annotations != nil || got.OwnerReferences != nil {
		t.Errorf("after clearing: %+v, want no timestamps, labels, annotations or owners", got)
	}
	if diff := cmp.Diff(compactPod(strippedFullPod()), p.Unpack()); diff != "" {
		t.Errorf("changing the copy changed the original (-want +got):\n%s", diff)
	}

	// The zero Pod (as a type argument, or decoded from nothing) reads as an empty pod.
	var zero podwatch.Pod
	if diff := cmp.Diff(&corev1.Pod{}, zero.Unpack()); diff != "" {
		t.Errorf("zero Pod (-want +got):\n%s", diff)
	}
}

// TestCompactShares checks that pods of one ReplicaSet share what they have in common: a second pod costs its
// own identity only.
func TestCompactShares(t *testing.T) {
	a, b := fullPod(t), fullPod(t)
	b.Name, b.UID, b.ResourceVersion = "web-7d4b9c6f8-zzzzz", "another-uid", "48213378"
	pa, pb := podwatch.Compact(a), podwatch.Compact(b)
	for name, get := range map[string]func(*podwatch.Pod) string{
		"namespace":   (*podwatch.Pod).GetNamespace,
		"owner name":  func(p *podwatch.Pod) string { return p.GetOwnerReferences()[0].Name },
		"label":       func(p *podwatch.Pod) string { return p.GetLabels()[podwatch.LabelPodTemplateHash] },
		"annotation":  func(p *podwatch.Pod) string { return p.GetAnnotations()["metadata.github.com/team"] },
		"image":       func(p *podwatch.Pod) string { return p.Unpack().Spec.Containers[0].Image },
		"imageID":     func(p *podwatch.Pod) string { return p.Unpack().Status.ContainerStatuses[0].ImageID },
		"init image":  func(p *podwatch.Pod) string { return p.Unpack().Spec.InitContainers[0].Image },
		"owner's UID": func(p *podwatch.Pod) string { return string(p.GetOwnerReferences()[0].UID) },
	} {
		if x, y := get(pa), get(pb); x != y || !sameString(x, y) {
			t.Errorf("%s: %q and %q are not one string", name, x, y)
		}
	}
	if sameString(pa.GetName(), pb.GetName()) || pa.GetName() == pb.GetName() {
		t.Error("the pods' names are one string")
	}
}

// sameString reports whether a and b are one string in memory.
func sameString(a, b string) bool {
	return len(a) > 0 && len(a) == len(b) && unsafe.StringData(a) == unsafe.StringData(b)
}
