package podwatch_test

import (
	"encoding/json"
	"os"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/cache"

	"github.com/deployment-tracker/deployment-tracker/internal/podwatch"
)

// fullPod is a running Deployment pod as the API server returns it (testdata/pod.json): managed fields, env,
// volumes, probes, resources, many labels and annotations, conditions and container states.
func fullPod(tb testing.TB) *corev1.Pod {
	tb.Helper()
	b, err := os.ReadFile("testdata/pod.json")
	if err != nil {
		tb.Fatal(err)
	}
	pod := &corev1.Pod{}
	if err := json.Unmarshal(b, pod); err != nil {
		tb.Fatalf("decoding testdata/pod.json: %v", err)
	}
	return pod
}

func ts(s string) metav1.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return metav1.NewTime(t)
}

func tsp(s string) *metav1.Time {
	t := ts(s)
	return &t
}

// strippedFullPod is what the cache keeps of fullPod.
func strippedFullPod() *corev1.Pod {
	return &corev1.Pod{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{
			Name:              "web-7d4b9c6f8-x2k9p",
			Namespace:         "shop",
			UID:               "6c1f0a52-1b7e-4f3e-9a43-2f1d5c0b8e11",
			ResourceVersion:   "48213377",
			CreationTimestamp: ts("2025-06-01T11:58:02Z"),
			Labels:            map[string]string{"pod-template-hash": "7d4b9c6f8"},
			Annotations: map[string]string{
				"metadata.github.com/team":          "payments",
				"metadata.github.com/runtime-risks": "internet-exposed,sensitive-data",
				"metadata.github.com/repository":    "octo-org/web",
			},
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "web-7d4b9c6f8",
				UID: "0f4e2d1c-9b8a-4c7d-8e6f-5a4b3c2d1e0f", Controller: new(true),
			}},
		},
		Spec: corev1.PodSpec{
			InitContainers: []corev1.Container{{Name: "migrate", Image: "ghcr.io/octo-org/web-migrate:1.4.2"}},
			Containers: []corev1.Container{
				{Name: "app", Image: "ghcr.io/octo-org/web:1.4.2"},
				{Name: "istio-proxy", Image: "docker.io/istio/proxyv2:1.22.1@sha256:2b9f1f2a5a6c7d8e9f0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60"},
			},
		},
		Status: corev1.PodStatus{
			Phase:     corev1.PodRunning,
			StartTime: tsp("2025-06-01T11:58:03Z"),
			InitContainerStatuses: []corev1.ContainerStatus{{
				Name:    "migrate",
				Image:   "ghcr.io/octo-org/web-migrate:1.4.2",
				ImageID: "ghcr.io/octo-org/web-migrate@sha256:1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f809",
			}},
			ContainerStatuses: []corev1.ContainerStatus{
				{
					Name:    "app",
					Image:   "ghcr.io/octo-org/web:1.4.2",
					ImageID: "ghcr.io/octo-org/web@sha256:9f8e7d6c5b4a39281706f5e4d3c2b1a09f8e7d6c5b4a39281706f5e4d3c2b1a0",
				},
				{
					Name:    "istio-proxy",
					Image:   "docker.io/istio/proxyv2:1.22.1",
					ImageID: "docker.io/istio/proxyv2@sha256:2b9f1f2a5a6c7d8e9f0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60",
				},
			},
		},
	}
}

// stripPodTests are pods and what StripPod keeps of them.
func stripPodTests() []struct {
	name string
	in   func(t *testing.T) *corev1.Pod
	want *corev1.Pod
} {
	return []struct {
		name string
		in   func(t *testing.T) *corev1.Pod
		want *corev1.Pod
	}{
		{
			name: "running Deployment pod keeps exactly what the tracker reads",
			in:   func(t *testing.T) *corev1.Pod { return fullPod(t) },
			want: strippedFullPod(),
		},
		{
			name: "terminating pod keeps its deletion timestamp",
			in: func(t *testing.T) *corev1.Pod {
				p := fullPod(t)
				p.DeletionTimestamp = tsp("2025-06-01T13:00:00Z")
				p.DeletionGracePeriodSeconds = new(int64(30))
				return p
			},
			want: func() *corev1.Pod {
				p := strippedFullPod()
				p.DeletionTimestamp = tsp("2025-06-01T13:00:00Z")
				return p
			}(),
		},
		{
			name: "pending pod: no start time, statuses without imageID",
			in: func(t *testing.T) *corev1.Pod {
				p := fullPod(t)
				p.Status = corev1.PodStatus{
					Phase: corev1.PodPending,
					Conditions: []corev1.PodCondition{{
						Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: "Unschedulable",
					}},
					ContainerStatuses: []corev1.ContainerStatus{{
						Name: "app", Image: "ghcr.io/octo-org/web:1.4.2",
						State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}},
					}},
				}
				return p
			},
			want: func() *corev1.Pod {
				p := strippedFullPod()
				p.Status = corev1.PodStatus{
					Phase:             corev1.PodPending,
					ContainerStatuses: []corev1.ContainerStatus{{Name: "app", Image: "ghcr.io/octo-org/web:1.4.2"}},
				}
				return p
			}(),
		},
		{
			name: "bare pod without labels, annotations or owners",
			in: func(*testing.T) *corev1.Pod {
				return &corev1.Pod{
					ObjectMeta: metav1.ObjectMeta{
						Name: "debug", Namespace: "shop", UID: "u-debug", ResourceVersion: "7",
						Labels:      map[string]string{"run": "debug"},
						Annotations: map[string]string{"kubectl.kubernetes.io/last-applied-configuration": "{}"},
					},
					Spec: corev1.PodSpec{
						Containers: []corev1.Container{{Name: "debug", Image: "busybox", Command: []string{"sleep", "3600"}}},
					},
				}
			},
			want: &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: "debug", Namespace: "shop", UID: "u-debug", ResourceVersion: "7"},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "debug", Image: "busybox"}}},
			},
		},
		{
			name: "StatefulSet pod keeps controller-revision-hash, not the other StatefulSet labels",
			in: func(t *testing.T) *corev1.Pod {
				p := fullPod(t)
				delete(p.Labels, podwatch.LabelPodTemplateHash)
				p.Labels[podwatch.LabelControllerRevisionHash] = "db-6b8f5d7c9"
				p.Labels["statefulset.kubernetes.io/pod-name"] = "db-0"
				p.Labels["apps.kubernetes.io/pod-index"] = "0"
				p.OwnerReferences = []metav1.OwnerReference{{
					APIVersion: "apps/v1", Kind: "StatefulSet", Name: "db", UID: "u-db", Controller: new(true), BlockOwnerDeletion: new(true),
				}}
				return p
			},
			want: func() *corev1.Pod {
				p := strippedFullPod()
				p.Labels = map[string]string{podwatch.LabelControllerRevisionHash: "db-6b8f5d7c9"}
				p.OwnerReferences = []metav1.OwnerReference{{
					APIVersion: "apps/v1", Kind: "StatefulSet", Name: "db", UID: "u-db", Controller: new(true),
				}}
				return p
			}(),
		},
		{
			name: "Argo Rollouts pod keeps rollouts-pod-template-hash beside pod-template-hash",
			in: func(t *testing.T) *corev1.Pod {
				p := fullPod(t)
				p.Labels[podwatch.LabelRolloutsPodTemplateHash] = "5c8d7f9b64"
				p.Labels["rollouts-pod-template-hash-canary"] = "x" // a look-alike is not kept
				return p
			},
			want: func() *corev1.Pod {
				p := strippedFullPod()
				p.Labels[podwatch.LabelRolloutsPodTemplateHash] = "5c8d7f9b64"
				return p
			}(),
		},
		{
			name: "revision annotations are owner metadata: a pod does not keep them",
			in: func(t *testing.T) *corev1.Pod {
				p := fullPod(t)
				p.Annotations[podwatch.AnnotationDeploymentRevision] = "14"
				p.Annotations[podwatch.AnnotationRolloutRevision] = "3"
				return p
			},
			want: strippedFullPod(),
		},
		{
			name: "owner references that are not the controller are dropped",
			in: func(*testing.T) *corev1.Pod {
				return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{
					Name: "p", Namespace: "shop",
					OwnerReferences: []metav1.OwnerReference{
						{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "former", UID: "u1", Controller: new(false)},
						{APIVersion: "example.com/v1", Kind: "Tracker", Name: "t", UID: "u2"},
					},
				}}
			},
			want: &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "shop"}},
		},
	}
}

func TestStripPod(t *testing.T) {
	for _, tt := range stripPodTests() {
		t.Run(tt.name, func(t *testing.T) {
			in := tt.in(t)
			before := in.DeepCopy()
			got, err := podwatch.StripPod(in)
			if err != nil {
				t.Fatalf("StripPod() error = %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("StripPod() mismatch (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(before, in); diff != "" {
				t.Errorf("StripPod() modified its input (-before +after):\n%s", diff)
			}
			// The informer may hand an object it already stored back (resync, relist): stripping is idempotent.
			again, err := podwatch.StripPod(got)
			if err != nil {
				t.Fatalf("StripPod(StripPod()) error = %v", err)
			}
			if diff := cmp.Diff(got, again); diff != "" {
				t.Errorf("StripPod() is not idempotent (-once +twice):\n%s", diff)
			}
		})
	}
}

// ownerMetadata is a Deployment's metadata as a metadata informer receives it.
func ownerMetadata() *metav1.PartialObjectMetadata {
	return &metav1.PartialObjectMetadata{
		TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: metav1.ObjectMeta{
			Name: "web", Namespace: "shop", UID: "u-web", ResourceVersion: "9001", Generation: 14,
			CreationTimestamp: ts("2025-01-10T08:00:00Z"),
			Labels:            map[string]string{"app": "web", "app.kubernetes.io/managed-by": "Helm"},
			Annotations: map[string]string{
				"deployment.kubernetes.io/revision":                "14",
				"meta.helm.sh/release-name":                        "web",
				"kubectl.kubernetes.io/last-applied-configuration": `{"apiVersion":"apps/v1","kind":"Deployment"}`,
				"metadata.github.com/team":                         "payments",
			},
			OwnerReferences: []metav1.OwnerReference{
				{APIVersion: "example.com/v1", Kind: "App", Name: "shop", UID: "u-app", Controller: new(true), BlockOwnerDeletion: new(true)},
				{APIVersion: "example.com/v1", Kind: "Tracker", Name: "t", UID: "u-t"},
			},
			Finalizers: []string{"example.com/protect"},
			ManagedFields: []metav1.ManagedFieldsEntry{{
				Manager: "helm", Operation: metav1.ManagedFieldsOperationUpdate, APIVersion: "apps/v1",
				FieldsType: "FieldsV1", FieldsV1: &metav1.FieldsV1{Raw: []byte(`{"f:metadata":{}}`)},
			}},
		},
	}
}

// strippedOwnerMetadata is what the cache keeps of ownerMetadata.
func strippedOwnerMetadata() *metav1.PartialObjectMetadata {
	return &metav1.PartialObjectMetadata{
		TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: metav1.ObjectMeta{
			Name: "web", Namespace: "shop", UID: "u-web", ResourceVersion: "9001",
			CreationTimestamp: ts("2025-01-10T08:00:00Z"),
			Annotations: map[string]string{
				"deployment.kubernetes.io/revision": "14",
				"metadata.github.com/team":          "payments",
			},
			OwnerReferences: []metav1.OwnerReference{
				{APIVersion: "example.com/v1", Kind: "App", Name: "shop", UID: "u-app", Controller: new(true)},
			},
		},
	}
}

// replicaSetMetadata is a Deployment's ReplicaSet as a metadata informer receives it.
func replicaSetMetadata() *metav1.PartialObjectMetadata {
	return &metav1.PartialObjectMetadata{
		TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "ReplicaSet"},
		ObjectMeta: metav1.ObjectMeta{
			Name: "web-7d4b9c6f8", Namespace: "shop", UID: "0f4e2d1c-9b8a-4c7d-8e6f-5a4b3c2d1e0f",
			ResourceVersion: "48213301", Generation: 3,
			CreationTimestamp: ts("2025-06-01T11:58:01Z"),
			Labels: map[string]string{
				"app": "web", "app.kubernetes.io/name": "web", "app.kubernetes.io/managed-by": "Helm",
				"pod-template-hash": "7d4b9c6f8",
			},
			Annotations: map[string]string{
				"deployment.kubernetes.io/desired-replicas": "3",
				"deployment.kubernetes.io/max-replicas":     "4",
				"deployment.kubernetes.io/revision":         "14",
				"deployment.kubernetes.io/revision-history": "9,11",
				"meta.helm.sh/release-name":                 "web",
				"metadata.github.com/team":                  "payments",
			},
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: "apps/v1", Kind: "Deployment", Name: "web", UID: "u-web", Controller: new(true), BlockOwnerDeletion: new(true),
			}},
			ManagedFields: []metav1.ManagedFieldsEntry{{
				Manager: "kube-controller-manager", Operation: metav1.ManagedFieldsOperationUpdate, APIVersion: "apps/v1",
				FieldsType: "FieldsV1", FieldsV1: &metav1.FieldsV1{Raw: []byte(`{"f:metadata":{"f:annotations":{}}}`)},
			}},
		},
	}
}

func TestStripMetadata(t *testing.T) {
	tests := []struct {
		name string
		in   func() *metav1.PartialObjectMetadata
		want *metav1.PartialObjectMetadata
	}{
		{
			name: "identity, controller reference and metadata.github.com annotations",
			in:   ownerMetadata,
			want: strippedOwnerMetadata(),
		},
		{
			name: "being deleted: the deletion timestamp is what Exists reads",
			in: func() *metav1.PartialObjectMetadata {
				m := ownerMetadata()
				m.DeletionTimestamp = tsp("2025-06-01T13:00:00Z")
				m.Annotations = nil
				m.OwnerReferences = nil
				return m
			},
			want: &metav1.PartialObjectMetadata{
				TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
				ObjectMeta: metav1.ObjectMeta{
					Name: "web", Namespace: "shop", UID: "u-web", ResourceVersion: "9001",
					CreationTimestamp: ts("2025-01-10T08:00:00Z"),
					DeletionTimestamp: tsp("2025-06-01T13:00:00Z"),
				},
			},
		},
		{
			name: "Deployment's ReplicaSet keeps pod-template-hash and deployment.kubernetes.io/revision",
			in:   replicaSetMetadata,
			want: &metav1.PartialObjectMetadata{
				TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "ReplicaSet"},
				ObjectMeta: metav1.ObjectMeta{
					Name: "web-7d4b9c6f8", Namespace: "shop", UID: "0f4e2d1c-9b8a-4c7d-8e6f-5a4b3c2d1e0f",
					ResourceVersion:   "48213301",
					CreationTimestamp: ts("2025-06-01T11:58:01Z"),
					Labels:            map[string]string{"pod-template-hash": "7d4b9c6f8"},
					Annotations: map[string]string{
						"deployment.kubernetes.io/revision": "14",
						"metadata.github.com/team":          "payments",
					},
					OwnerReferences: []metav1.OwnerReference{{
						APIVersion: "apps/v1", Kind: "Deployment", Name: "web", UID: "u-web", Controller: new(true),
					}},
				},
			},
		},
		{
			name: "Argo Rollout's ReplicaSet keeps rollouts-pod-template-hash and rollout.argoproj.io/revision",
			in: func() *metav1.PartialObjectMetadata {
				m := replicaSetMetadata()
				m.Name = "checkout-5c8d7f9b64"
				m.Labels = map[string]string{
					"app": "checkout", "rollouts-pod-template-hash": "5c8d7f9b64",
				}
				m.Annotations = map[string]string{
					"rollout.argoproj.io/desired-replicas": "5",
					"rollout.argoproj.io/revision":         "3",
					"rollout.argoproj.io/revision-history": "1",
				}
				m.OwnerReferences = []metav1.OwnerReference{{
					APIVersion: "argoproj.io/v1alpha1", Kind: "Rollout", Name: "checkout", UID: "u-checkout", Controller: new(true),
				}}
				return m
			},
			want: &metav1.PartialObjectMetadata{
				TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "ReplicaSet"},
				ObjectMeta: metav1.ObjectMeta{
					Name: "checkout-5c8d7f9b64", Namespace: "shop", UID: "0f4e2d1c-9b8a-4c7d-8e6f-5a4b3c2d1e0f",
					ResourceVersion:   "48213301",
					CreationTimestamp: ts("2025-06-01T11:58:01Z"),
					Labels:            map[string]string{"rollouts-pod-template-hash": "5c8d7f9b64"},
					Annotations:       map[string]string{"rollout.argoproj.io/revision": "3"},
					OwnerReferences: []metav1.OwnerReference{{
						APIVersion: "argoproj.io/v1alpha1", Kind: "Rollout", Name: "checkout", UID: "u-checkout", Controller: new(true),
					}},
				},
			},
		},
		{
			name: "StatefulSet's ControllerRevision keeps controller-revision-hash",
			in: func() *metav1.PartialObjectMetadata {
				m := &metav1.PartialObjectMetadata{}
				m.SetGroupVersionKind(appsv1.SchemeGroupVersion.WithKind("ControllerRevision"))
				m.Name, m.Namespace = "db-6b8f5d7c9", "shop"
				m.Labels = map[string]string{"app": "db", "controller-revision-hash": "db-6b8f5d7c9"}
				return m
			},
			want: &metav1.PartialObjectMetadata{
				TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "ControllerRevision"},
				ObjectMeta: metav1.ObjectMeta{
					Name: "db-6b8f5d7c9", Namespace: "shop",
					Labels: map[string]string{"controller-revision-hash": "db-6b8f5d7c9"},
				},
			},
		},
		{
			name: "labels without a revision label are dropped entirely",
			in: func() *metav1.PartialObjectMetadata {
				m := &metav1.PartialObjectMetadata{}
				m.SetGroupVersionKind(appsv1.SchemeGroupVersion.WithKind("StatefulSet"))
				m.Name, m.Namespace = "db", "shop"
				m.Labels = map[string]string{"app": "db", "pod-template-hash-old": "x"}
				m.Annotations = map[string]string{"deployment.kubernetes.io/revision-history": "1,2"}
				return m
			},
			want: &metav1.PartialObjectMetadata{
				TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "StatefulSet"},
				ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: "shop"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := tt.in()
			before := in.DeepCopy()
			got, err := podwatch.StripMetadata(in)
			if err != nil {
				t.Fatalf("StripMetadata() error = %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("StripMetadata() mismatch (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(before, in); diff != "" {
				t.Errorf("StripMetadata() modified its input (-before +after):\n%s", diff)
			}
			again, err := podwatch.StripMetadata(got)
			if err != nil {
				t.Fatalf("StripMetadata(StripMetadata()) error = %v", err)
			}
			if diff := cmp.Diff(got, again); diff != "" {
				t.Errorf("StripMetadata() is not idempotent (-once +twice):\n%s", diff)
			}
		})
	}
}

// TestTransformsPassThrough checks that each transform returns objects it does not handle unchanged (the same
// pointer), and that Strip picks the transform by type.
func TestTransformsPassThrough(t *testing.T) {
	deploy := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop", Labels: map[string]string{"app": "web"}}}
	tombstone := cache.DeletedFinalStateUnknown{Key: "shop/web-7d4b9c6f8-x2k9p", Obj: fullPod(t)}
	tests := []struct {
		name      string
		transform cache.TransformFunc
		in        any
	}{
		{"StripPod: typed Deployment", podwatch.StripPod, deploy},
		{"StripPod: owner metadata", podwatch.StripPod, ownerMetadata()},
		{"StripPod: tombstone", podwatch.StripPod, tombstone},
		{"StripPod: nil", podwatch.StripPod, nil},
		{"StripPod: nil pod", podwatch.StripPod, (*corev1.Pod)(nil)},
		{"StripMetadata: nil metadata", podwatch.StripMetadata, (*metav1.PartialObjectMetadata)(nil)},
		{"StripMetadata: pod", podwatch.StripMetadata, fullPod(t)},
		{"StripMetadata: typed Deployment", podwatch.StripMetadata, deploy},
		{"CompactPod: typed Deployment", podwatch.CompactPod, deploy},
		{"CompactPod: owner metadata", podwatch.CompactPod, ownerMetadata()},
		{"CompactPod: tombstone", podwatch.CompactPod, tombstone},
		{"CompactPod: nil", podwatch.CompactPod, nil},
		{"CompactPod: nil pod", podwatch.CompactPod, (*corev1.Pod)(nil)},
		{"CompactPod: compact pod", podwatch.CompactPod, podwatch.Compact(fullPod(t))},
		{"Strip: typed Deployment", podwatch.Strip, deploy},
		{"Strip: node", podwatch.Strip, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1", Labels: map[string]string{"zone": "a"}}}},
		{"Strip: tombstone", podwatch.Strip, tombstone},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.transform(tt.in)
			if err != nil {
				t.Fatalf("transform error = %v", err)
			}
			if o, ok := tt.in.(runtime.Object); ok {
				if got != o {
					t.Errorf("transform returned %T %p, want the input %p", got, got, o)
				}
				return
			}
			if diff := cmp.Diff(tt.in, got); diff != "" {
				t.Errorf("transform changed its input (-in +out):\n%s", diff)
			}
		})
	}
}

func TestStrip(t *testing.T) {
	tests := []struct {
		name string
		in   runtime.Object
		want runtime.Object
	}{
		{"pod", fullPod(t), compactPod(strippedFullPod())},
		{"owner metadata", ownerMetadata(), strippedOwnerMetadata()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := podwatch.Strip(tt.in)
			if err != nil {
				t.Fatalf("Strip() error = %v", err)
			}
			if p, ok := got.(*podwatch.Pod); ok {
				got = p.Unpack() // compared as the pod it stands for
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Strip() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func BenchmarkStripPod(b *testing.B) {
	pod := fullPod(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := podwatch.StripPod(pod); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCompactPod(b *testing.B) {
	pod := fullPod(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := podwatch.CompactPod(pod); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkUnpack is what the cache does for each pod it is asked for (before its deep copy).
func BenchmarkUnpack(b *testing.B) {
	p := podwatch.Compact(fullPod(b))
	b.ReportAllocs()
	for b.Loop() {
		_ = p.Unpack()
	}
}
