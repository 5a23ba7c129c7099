package rollout_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/tools/cache"

	"github.com/deployment-tracker/deployment-tracker/internal/rollout"
)

// load decodes testdata/name, a whole object as the API server returns it (managed fields, env, volumes,
// probes, many labels and annotations), into a new T. Unknown fields are an error, so that the testdata stays
// true to the API.
func load[T any](tb testing.TB, name string) *T {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		tb.Fatal(err)
	}
	obj := new(T)
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(obj); err != nil {
		tb.Fatalf("decoding testdata/%s: %v", name, err)
	}
	return obj
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

func ptr[T any](v T) *T { return &v }

// The containers of the web and checkout Deployments' pod template, as Transform keeps them.
func webContainers(app, version string) (initContainers, containers []corev1.Container) {
	return []corev1.Container{{Name: "migrate", Image: "ghcr.io/octo-org/" + app + "-migrate:" + version}},
		[]corev1.Container{
			{Name: "app", Image: "ghcr.io/octo-org/" + app + ":" + version},
			{Name: "log-shipper", Image: "docker.io/fluent/fluent-bit:3.0.7@sha256:4a8b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b"},
		}
}

// trimmedDeployment is what Transform keeps of testdata/deployment-*.json.
func trimmedDeployment(name, uid, resourceVersion string, generation int64, version string, replicas int32, status appsv1.DeploymentStatus) *appsv1.Deployment {
	initContainers, containers := webContainers(name, version)
	return &appsv1.Deployment{
		TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: "shop", UID: types.UID(uid), ResourceVersion: resourceVersion, Generation: generation,
			CreationTimestamp: ts("2025-01-10T08:00:00Z"),
			Annotations: map[string]string{
				"deployment.kubernetes.io/revision": strconv.FormatInt(generation, 10),
				"metadata.github.com/team":          "payments",
				"metadata.github.com/runtime-risks": "internet-exposed,sensitive-data",
			},
		},
		Spec: appsv1.DeploymentSpec{
			Replicas:                ptr(replicas),
			ProgressDeadlineSeconds: ptr(int32(600)),
			Strategy:                appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{
					"metadata.github.com/team":       "payments",
					"metadata.github.com/repository": "octo-org/" + name,
				}},
				Spec: corev1.PodSpec{InitContainers: initContainers, Containers: containers},
			},
		},
		Status: status,
	}
}

func deploymentRollout() *appsv1.Deployment {
	return trimmedDeployment("web", "9b3c2a1d-4e5f-4a6b-8c7d-1e2f3a4b5c6d", "48213410", 15, "1.5.0", 3, appsv1.DeploymentStatus{
		ObservedGeneration: 15, Replicas: 4, UpdatedReplicas: 2, ReadyReplicas: 3, AvailableReplicas: 3, UnavailableReplicas: 1,
		Conditions: []appsv1.DeploymentCondition{
			{
				Type: appsv1.DeploymentAvailable, Status: corev1.ConditionTrue, Reason: "MinimumReplicasAvailable",
				Message:        "Deployment has minimum availability.",
				LastUpdateTime: ts("2025-05-20T09:12:44Z"), LastTransitionTime: ts("2025-05-20T09:12:44Z"),
			},
			{
				Type: appsv1.DeploymentProgressing, Status: corev1.ConditionTrue, Reason: "ReplicaSetUpdated",
				Message:        `ReplicaSet "web-5f9c7b8d46" is progressing.`,
				LastUpdateTime: ts("2025-06-01T12:04:31Z"), LastTransitionTime: ts("2025-01-10T08:00:00Z"),
			},
		},
	})
}

func deploymentDeadline() *appsv1.Deployment {
	return trimmedDeployment("checkout", "2c4e6a8b-0d1f-4e3a-9b5c-7d9e1f3a5b7c", "48220017", 8, "2.3.1", 2, appsv1.DeploymentStatus{
		ObservedGeneration: 8, Replicas: 3, UpdatedReplicas: 1, ReadyReplicas: 2, AvailableReplicas: 2, UnavailableReplicas: 1,
		Conditions: []appsv1.DeploymentCondition{
			{
				Type: appsv1.DeploymentAvailable, Status: corev1.ConditionTrue, Reason: "MinimumReplicasAvailable",
				Message:        "Deployment has minimum availability.",
				LastUpdateTime: ts("2025-05-02T14:30:11Z"), LastTransitionTime: ts("2025-05-02T14:30:11Z"),
			},
			{
				Type: appsv1.DeploymentProgressing, Status: corev1.ConditionFalse, Reason: "ProgressDeadlineExceeded",
				Message:        `ReplicaSet "checkout-6f7b9d8c5" has timed out progressing.`,
				LastUpdateTime: ts("2025-06-01T12:14:02Z"), LastTransitionTime: ts("2025-06-01T12:14:02Z"),
			},
		},
	})
}

func deploymentComplete() *appsv1.Deployment {
	return trimmedDeployment("web", "9b3c2a1d-4e5f-4a6b-8c7d-1e2f3a4b5c6d", "48199872", 14, "1.4.2", 3, appsv1.DeploymentStatus{
		ObservedGeneration: 14, Replicas: 3, UpdatedReplicas: 3, ReadyReplicas: 3, AvailableReplicas: 3,
		Conditions: []appsv1.DeploymentCondition{
			{
				Type: appsv1.DeploymentAvailable, Status: corev1.ConditionTrue, Reason: "MinimumReplicasAvailable",
				Message:        "Deployment has minimum availability.",
				LastUpdateTime: ts("2025-05-20T09:12:44Z"), LastTransitionTime: ts("2025-05-20T09:12:44Z"),
			},
			{
				Type: appsv1.DeploymentProgressing, Status: corev1.ConditionTrue, Reason: "NewReplicaSetAvailable",
				Message:        `ReplicaSet "web-7d4b9c6f8" has successfully progressed.`,
				LastUpdateTime: ts("2025-05-20T09:13:20Z"), LastTransitionTime: ts("2025-01-10T08:00:00Z"),
			},
		},
	})
}

// trimmedStatefulSet is what Transform keeps of testdata/statefulset-*.json.
func trimmedStatefulSet(resourceVersion string, status appsv1.StatefulSetStatus) *appsv1.StatefulSet {
	return &appsv1.StatefulSet{
		TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "StatefulSet"},
		ObjectMeta: metav1.ObjectMeta{
			Name: "db", Namespace: "shop", UID: "5d7f9b1c-3e5a-4c7e-9a1b-3c5e7a9b1d3f", ResourceVersion: resourceVersion,
			Generation: 6, CreationTimestamp: ts("2024-11-03T16:20:00Z"),
			Annotations: map[string]string{
				"metadata.github.com/team":       "data",
				"metadata.github.com/repository": "octo-org/db-images",
			},
		},
		Spec: appsv1.StatefulSetSpec{
			Replicas: ptr(int32(3)),
			UpdateStrategy: appsv1.StatefulSetUpdateStrategy{
				Type:          appsv1.RollingUpdateStatefulSetStrategyType,
				RollingUpdate: &appsv1.RollingUpdateStatefulSetStrategy{Partition: ptr(int32(0))},
			},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{"metadata.github.com/team": "data"}},
				Spec: corev1.PodSpec{
					InitContainers: []corev1.Container{{Name: "init-permissions", Image: "docker.io/library/busybox:1.36.1"}},
					Containers: []corev1.Container{
						{Name: "postgresql", Image: "docker.io/bitnami/postgresql:16.3.0"},
						{Name: "metrics", Image: "docker.io/bitnami/postgres-exporter:0.15.0"},
					},
				},
			},
		},
		Status: status,
	}
}

func statefulSetRollout() *appsv1.StatefulSet {
	return trimmedStatefulSet("48230551", appsv1.StatefulSetStatus{
		ObservedGeneration: 6, Replicas: 3, ReadyReplicas: 3, CurrentReplicas: 2, UpdatedReplicas: 1, AvailableReplicas: 3,
		CurrentRevision: "db-6b8f5d7c9d", UpdateRevision: "db-7c4d9e8f1b",
	})
}

func statefulSetComplete() *appsv1.StatefulSet {
	return trimmedStatefulSet("48231902", appsv1.StatefulSetStatus{
		ObservedGeneration: 6, Replicas: 3, ReadyReplicas: 3, CurrentReplicas: 3, UpdatedReplicas: 3, AvailableReplicas: 3,
		CurrentRevision: "db-7c4d9e8f1b", UpdateRevision: "db-7c4d9e8f1b",
	})
}

func daemonSetRollout() *appsv1.DaemonSet {
	return &appsv1.DaemonSet{
		TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "DaemonSet"},
		ObjectMeta: metav1.ObjectMeta{
			Name: "node-agent", Namespace: "observability", UID: "3a5c7e9a-1b3d-4f5a-8b9c-0d1e2f3a4b5c",
			ResourceVersion: "48240112", Generation: 9, CreationTimestamp: ts("2024-08-19T07:45:12Z"),
			Annotations: map[string]string{"metadata.github.com/team": "observability"},
		},
		Spec: appsv1.DaemonSetSpec{
			UpdateStrategy: appsv1.DaemonSetUpdateStrategy{Type: appsv1.RollingUpdateDaemonSetStrategyType},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{
					"metadata.github.com/team":          "observability",
					"metadata.github.com/runtime-risks": "privileged",
				}},
				Spec: corev1.PodSpec{Containers: []corev1.Container{
					{Name: "agent", Image: "ghcr.io/octo-org/node-agent:0.42.0"},
					{Name: "config-reloader", Image: "quay.io/prometheus-operator/prometheus-config-reloader:v0.75.0"},
				}},
			},
		},
		Status: appsv1.DaemonSetStatus{
			ObservedGeneration: 9, DesiredNumberScheduled: 5, CurrentNumberScheduled: 5, UpdatedNumberScheduled: 2,
			NumberAvailable: 4, NumberReady: 4, NumberUnavailable: 1,
		},
	}
}

func controllerRevision() *appsv1.ControllerRevision {
	return &appsv1.ControllerRevision{
		TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "ControllerRevision"},
		ObjectMeta: metav1.ObjectMeta{
			Name: "db-7c4d9e8f1b", Namespace: "shop", UID: "8e0a2c4e-6a8c-4e0a-8c2e-4a6c8e0a2c4e",
			ResourceVersion: "48230433", CreationTimestamp: ts("2025-06-01T12:20:01Z"),
			Labels: map[string]string{"controller-revision-hash": "db-7c4d9e8f1b"},
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: "apps/v1", Kind: "StatefulSet", Name: "db", UID: "5d7f9b1c-3e5a-4c7e-9a1b-3c5e7a9b1d3f",
				Controller: ptr(true),
			}},
		},
		Revision: 6,
	}
}

// checkTransform runs Transform on in and compares the result with want; it also checks that in is not modified
// and that Transform is idempotent (the informer may hand an object it already stored back on a resync).
func checkTransform(t *testing.T, in runtime.Object, want any) {
	t.Helper()
	before := in.DeepCopyObject()
	got, err := rollout.Transform(in)
	if err != nil {
		t.Fatalf("Transform() error = %v", err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Transform() mismatch (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(before, in); diff != "" {
		t.Errorf("Transform() modified its input (-before +after):\n%s", diff)
	}
	again, err := rollout.Transform(got)
	if err != nil {
		t.Fatalf("Transform(Transform()) error = %v", err)
	}
	if diff := cmp.Diff(got, again); diff != "" {
		t.Errorf("Transform() is not idempotent (-once +twice):\n%s", diff)
	}
}

func TestTransformTestdata(t *testing.T) {
	tests := []struct {
		name string
		in   func(t *testing.T) runtime.Object
		want runtime.Object
	}{
		{
			name: "Deployment mid-rollout",
			in:   func(t *testing.T) runtime.Object { return load[appsv1.Deployment](t, "deployment-rollout.json") },
			want: deploymentRollout(),
		},
		{
			name: "Deployment past its progress deadline",
			in:   func(t *testing.T) runtime.Object { return load[appsv1.Deployment](t, "deployment-deadline.json") },
			want: deploymentDeadline(),
		},
		{
			name: "Deployment complete",
			in:   func(t *testing.T) runtime.Object { return load[appsv1.Deployment](t, "deployment-complete.json") },
			want: deploymentComplete(),
		},
		{
			name: "StatefulSet mid-rollout: updateRevision is not currentRevision",
			in:   func(t *testing.T) runtime.Object { return load[appsv1.StatefulSet](t, "statefulset-rollout.json") },
			want: statefulSetRollout(),
		},
		{
			name: "StatefulSet complete",
			in:   func(t *testing.T) runtime.Object { return load[appsv1.StatefulSet](t, "statefulset-complete.json") },
			want: statefulSetComplete(),
		},
		{
			name: "DaemonSet mid-rollout",
			in:   func(t *testing.T) runtime.Object { return load[appsv1.DaemonSet](t, "daemonset-rollout.json") },
			want: daemonSetRollout(),
		},
		{
			name: "ControllerRevision: Data (a whole pod template) is dropped",
			in: func(t *testing.T) runtime.Object {
				return load[appsv1.ControllerRevision](t, "controllerrevision.json")
			},
			want: controllerRevision(),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkTransform(t, tt.in(t), tt.want)
		})
	}
}

func TestTransformEdgeCases(t *testing.T) {
	tests := []struct {
		name string
		in   func(t *testing.T) runtime.Object
		want runtime.Object
	}{
		{
			name: "Deployment just created: nil replicas, no status, no annotations, no TypeMeta",
			in: func(*testing.T) runtime.Object {
				return &appsv1.Deployment{
					ObjectMeta: metav1.ObjectMeta{
						Name: "api", Namespace: "shop", UID: "u-api", ResourceVersion: "1", Generation: 1,
						Labels: map[string]string{"app": "api"},
					},
					Spec: appsv1.DeploymentSpec{
						Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "api"}},
						Template: corev1.PodTemplateSpec{
							ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "api"}},
							Spec: corev1.PodSpec{Containers: []corev1.Container{{
								Name: "api", Image: "ghcr.io/octo-org/api:0.1.0", Args: []string{"serve"},
							}}},
						},
					},
				}
			},
			want: &appsv1.Deployment{
				ObjectMeta: metav1.ObjectMeta{Name: "api", Namespace: "shop", UID: "u-api", ResourceVersion: "1", Generation: 1},
				Spec: appsv1.DeploymentSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
					Containers: []corev1.Container{{Name: "api", Image: "ghcr.io/octo-org/api:0.1.0"}},
				}}},
			},
		},
		{
			name: "Deployment being deleted and paused keeps its deletion timestamp and paused",
			in: func(t *testing.T) runtime.Object {
				d := load[appsv1.Deployment](t, "deployment-complete.json")
				d.DeletionTimestamp = tsp("2025-06-02T08:00:00Z")
				d.DeletionGracePeriodSeconds = ptr(int64(0))
				d.Finalizers = []string{"foregroundDeletion"}
				d.Spec.Paused = true
				return d
			},
			want: func() runtime.Object {
				d := deploymentComplete()
				d.DeletionTimestamp = tsp("2025-06-02T08:00:00Z")
				d.Spec.Paused = true
				return d
			}(),
		},
		{
			name: "Deployment with the Recreate strategy and no progress deadline",
			in: func(t *testing.T) runtime.Object {
				d := load[appsv1.Deployment](t, "deployment-complete.json")
				d.Spec.Strategy = appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType}
				d.Spec.ProgressDeadlineSeconds = nil
				return d
			},
			want: func() runtime.Object {
				d := deploymentComplete()
				d.Spec.Strategy.Type = appsv1.RecreateDeploymentStrategyType
				d.Spec.ProgressDeadlineSeconds = nil
				return d
			}(),
		},
		{
			name: "StatefulSet: OnDelete, nil replicas, no status",
			in: func(*testing.T) runtime.Object {
				return &appsv1.StatefulSet{
					ObjectMeta: metav1.ObjectMeta{Name: "cache", Namespace: "shop", Generation: 1},
					Spec: appsv1.StatefulSetSpec{
						ServiceName:    "cache",
						UpdateStrategy: appsv1.StatefulSetUpdateStrategy{Type: appsv1.OnDeleteStatefulSetStrategyType},
						Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
							Containers: []corev1.Container{{Name: "redis", Image: "redis:7.2"}},
						}},
					},
				}
			},
			want: &appsv1.StatefulSet{
				ObjectMeta: metav1.ObjectMeta{Name: "cache", Namespace: "shop", Generation: 1},
				Spec: appsv1.StatefulSetSpec{
					UpdateStrategy: appsv1.StatefulSetUpdateStrategy{Type: appsv1.OnDeleteStatefulSetStrategyType},
					Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
						Containers: []corev1.Container{{Name: "redis", Image: "redis:7.2"}},
					}},
				},
			},
		},
		{
			name: "StatefulSet: of rollingUpdate only the partition is kept",
			in: func(t *testing.T) runtime.Object {
				s := load[appsv1.StatefulSet](t, "statefulset-rollout.json")
				s.Spec.UpdateStrategy.RollingUpdate = &appsv1.RollingUpdateStatefulSetStrategy{
					Partition: ptr(int32(2)), MaxUnavailable: ptr(intstr.FromInt32(1)),
				}
				return s
			},
			want: func() runtime.Object {
				s := statefulSetRollout()
				s.Spec.UpdateStrategy.RollingUpdate.Partition = ptr(int32(2))
				return s
			}(),
		},
		{
			name: "StatefulSet: rollingUpdate without a partition is dropped",
			in: func(t *testing.T) runtime.Object {
				s := load[appsv1.StatefulSet](t, "statefulset-rollout.json")
				s.Spec.UpdateStrategy.RollingUpdate = &appsv1.RollingUpdateStatefulSetStrategy{MaxUnavailable: ptr(intstr.FromInt32(1))}
				return s
			},
			want: func() runtime.Object {
				s := statefulSetRollout()
				s.Spec.UpdateStrategy.RollingUpdate = nil
				return s
			}(),
		},
		{
			name: "StatefulSet: conditions are kept",
			in: func(t *testing.T) runtime.Object {
				s := load[appsv1.StatefulSet](t, "statefulset-complete.json")
				s.Status.Conditions = []appsv1.StatefulSetCondition{{
					Type: "Stalled", Status: corev1.ConditionTrue, Reason: "VolumeFull", Message: "data volume full",
					LastTransitionTime: ts("2025-06-01T13:00:00Z"),
				}}
				return s
			},
			want: func() runtime.Object {
				s := statefulSetComplete()
				s.Status.Conditions = []appsv1.StatefulSetCondition{{
					Type: "Stalled", Status: corev1.ConditionTrue, Reason: "VolumeFull", Message: "data volume full",
					LastTransitionTime: ts("2025-06-01T13:00:00Z"),
				}}
				return s
			}(),
		},
		{
			name: "DaemonSet: OnDelete, no status, numberMisscheduled dropped",
			in: func(t *testing.T) runtime.Object {
				d := load[appsv1.DaemonSet](t, "daemonset-rollout.json")
				d.Spec.UpdateStrategy = appsv1.DaemonSetUpdateStrategy{Type: appsv1.OnDeleteDaemonSetStrategyType}
				d.Status = appsv1.DaemonSetStatus{NumberMisscheduled: 1}
				return d
			},
			want: func() runtime.Object {
				d := daemonSetRollout()
				d.Spec.UpdateStrategy.Type = appsv1.OnDeleteDaemonSetStrategyType
				d.Status = appsv1.DaemonSetStatus{}
				return d
			}(),
		},
		{
			name: "ControllerRevision of a DaemonSet: owners that are not the controller and Data are dropped",
			in: func(*testing.T) runtime.Object {
				return &appsv1.ControllerRevision{
					ObjectMeta: metav1.ObjectMeta{
						Name: "node-agent-5d9c8b7f6", Namespace: "observability", UID: "u-cr", ResourceVersion: "77",
						Generation: 1, CreationTimestamp: ts("2025-06-01T12:30:00Z"),
						Labels: map[string]string{
							"app.kubernetes.io/name": "node-agent", "controller-revision-hash": "5d9c8b7f6",
							"pod-template-generation": "9",
						},
						Annotations: map[string]string{"deprecated.daemonset.template.generation": "9", "metadata.github.com/team": "o11y"},
						OwnerReferences: []metav1.OwnerReference{
							{APIVersion: "example.com/v1", Kind: "Backup", Name: "b", UID: "u-b"},
							{APIVersion: "apps/v1", Kind: "DaemonSet", Name: "node-agent", UID: "u-ds", Controller: ptr(true), BlockOwnerDeletion: ptr(true)},
						},
					},
					Data:     runtime.RawExtension{Raw: []byte(`{"spec":{"template":{"$patch":"replace","spec":{"containers":[]}}}}`)},
					Revision: 12,
				}
			},
			want: &appsv1.ControllerRevision{
				ObjectMeta: metav1.ObjectMeta{
					Name: "node-agent-5d9c8b7f6", Namespace: "observability", UID: "u-cr", ResourceVersion: "77",
					CreationTimestamp: ts("2025-06-01T12:30:00Z"),
					Labels:            map[string]string{"controller-revision-hash": "5d9c8b7f6"},
					OwnerReferences: []metav1.OwnerReference{
						{APIVersion: "apps/v1", Kind: "DaemonSet", Name: "node-agent", UID: "u-ds", Controller: ptr(true)},
					},
				},
				Revision: 12,
			},
		},
		{
			name: "ControllerRevision without labels or a controller",
			in: func(*testing.T) runtime.Object {
				return &appsv1.ControllerRevision{
					ObjectMeta: metav1.ObjectMeta{
						Name: "orphan", Namespace: "shop",
						OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "StatefulSet", Name: "db", UID: "u", Controller: ptr(false)}},
					},
					Data: runtime.RawExtension{Raw: []byte(`{}`)},
				}
			},
			want: &appsv1.ControllerRevision{ObjectMeta: metav1.ObjectMeta{Name: "orphan", Namespace: "shop"}},
		},
		{
			name: "ReplicaSet of a Deployment: metadata, revision labels and annotations only",
			in: func(*testing.T) runtime.Object {
				return &appsv1.ReplicaSet{
					TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "ReplicaSet"},
					ObjectMeta: metav1.ObjectMeta{
						Name: "web-7d4b9c6f8", Namespace: "shop", UID: "u-rs", ResourceVersion: "48199870", Generation: 4,
						CreationTimestamp: ts("2025-05-20T09:10:03Z"),
						Labels:            map[string]string{"app": "web", "pod-template-hash": "7d4b9c6f8"},
						Annotations: map[string]string{
							"deployment.kubernetes.io/desired-replicas": "3",
							"deployment.kubernetes.io/max-replicas":     "4",
							"deployment.kubernetes.io/revision":         "14",
							"deployment.kubernetes.io/revision-history": "9,11",
							"metadata.github.com/team":                  "payments",
						},
						OwnerReferences: []metav1.OwnerReference{{
							APIVersion: "apps/v1", Kind: "Deployment", Name: "web", UID: "u-web", Controller: ptr(true), BlockOwnerDeletion: ptr(true),
						}},
					},
					Spec: appsv1.ReplicaSetSpec{Replicas: ptr(int32(3)), Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
						Containers: []corev1.Container{{Name: "app", Image: "ghcr.io/octo-org/web:1.4.2"}},
					}}},
					Status: appsv1.ReplicaSetStatus{Replicas: 3, ReadyReplicas: 3, AvailableReplicas: 3, ObservedGeneration: 4},
				}
			},
			want: &appsv1.ReplicaSet{
				TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "ReplicaSet"},
				ObjectMeta: metav1.ObjectMeta{
					Name: "web-7d4b9c6f8", Namespace: "shop", UID: "u-rs", ResourceVersion: "48199870",
					CreationTimestamp: ts("2025-05-20T09:10:03Z"),
					Labels:            map[string]string{"pod-template-hash": "7d4b9c6f8"},
					Annotations: map[string]string{
						"deployment.kubernetes.io/revision": "14",
						"metadata.github.com/team":          "payments",
					},
					OwnerReferences: []metav1.OwnerReference{{
						APIVersion: "apps/v1", Kind: "Deployment", Name: "web", UID: "u-web", Controller: ptr(true),
					}},
				},
			},
		},
		{
			name: "ReplicaSet of an Argo Rollout: rollouts-pod-template-hash and rollout.argoproj.io/revision",
			in: func(*testing.T) runtime.Object {
				return &appsv1.ReplicaSet{
					ObjectMeta: metav1.ObjectMeta{
						Name: "checkout-5c8d7f9b64", Namespace: "shop", DeletionTimestamp: tsp("2025-06-02T08:00:00Z"),
						Labels: map[string]string{"app": "checkout", "rollouts-pod-template-hash": "5c8d7f9b64"},
						Annotations: map[string]string{
							"rollout.argoproj.io/desired-replicas": "5",
							"rollout.argoproj.io/revision":         "3",
						},
						OwnerReferences: []metav1.OwnerReference{{
							APIVersion: "argoproj.io/v1alpha1", Kind: "Rollout", Name: "checkout", UID: "u-ro", Controller: ptr(true),
						}},
					},
				}
			},
			want: &appsv1.ReplicaSet{
				ObjectMeta: metav1.ObjectMeta{
					Name: "checkout-5c8d7f9b64", Namespace: "shop", DeletionTimestamp: tsp("2025-06-02T08:00:00Z"),
					Labels:      map[string]string{"rollouts-pod-template-hash": "5c8d7f9b64"},
					Annotations: map[string]string{"rollout.argoproj.io/revision": "3"},
					OwnerReferences: []metav1.OwnerReference{{
						APIVersion: "argoproj.io/v1alpha1", Kind: "Rollout", Name: "checkout", UID: "u-ro", Controller: ptr(true),
					}},
				},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkTransform(t, tt.in(t), tt.want)
		})
	}
}

// TestTransformDoesNotAlias checks that the trimmed object shares no pointer, slice or map with its input: the
// cache's copy must not change when the object the informer decoded is reused or modified.
func TestTransformDoesNotAlias(t *testing.T) {
	in := load[appsv1.Deployment](t, "deployment-complete.json")
	in.DeletionTimestamp = tsp("2025-06-02T08:00:00Z")
	before := in.DeepCopy()
	out, err := rollout.Transform(in)
	if err != nil {
		t.Fatalf("Transform() error = %v", err)
	}
	d := out.(*appsv1.Deployment)
	*d.Spec.Replicas = 99
	*d.Spec.ProgressDeadlineSeconds = 99
	*d.DeletionTimestamp = ts("2030-01-01T00:00:00Z")
	d.Annotations["metadata.github.com/team"] = "changed"
	d.Spec.Template.Annotations["metadata.github.com/team"] = "changed"
	d.Spec.Template.Spec.Containers[0].Image = "changed"
	d.Spec.Template.Spec.InitContainers[0].Image = "changed"
	d.Status.Conditions[0].Reason = "changed"
	if diff := cmp.Diff(before, in); diff != "" {
		t.Errorf("changing Transform()'s output changed its input (-before +after):\n%s", diff)
	}

	s := load[appsv1.StatefulSet](t, "statefulset-rollout.json")
	sBefore := s.DeepCopy()
	sOut, err := rollout.Transform(s)
	if err != nil {
		t.Fatalf("Transform() error = %v", err)
	}
	*sOut.(*appsv1.StatefulSet).Spec.UpdateStrategy.RollingUpdate.Partition = 99
	if diff := cmp.Diff(sBefore, s); diff != "" {
		t.Errorf("changing Transform()'s output changed its input (-before +after):\n%s", diff)
	}

	cr := load[appsv1.ControllerRevision](t, "controllerrevision.json")
	crBefore := cr.DeepCopy()
	crOut, err := rollout.Transform(cr)
	if err != nil {
		t.Fatalf("Transform() error = %v", err)
	}
	*crOut.(*appsv1.ControllerRevision).OwnerReferences[0].Controller = false
	if diff := cmp.Diff(crBefore, cr); diff != "" {
		t.Errorf("changing Transform()'s output changed its input (-before +after):\n%s", diff)
	}
}

// TestTransformPassThrough checks that Transform returns objects it does not handle unchanged: the same
// pointer for objects, an equal value otherwise.
func TestTransformPassThrough(t *testing.T) {
	deploy := load[appsv1.Deployment](t, "deployment-rollout.json")
	u := &unstructured.Unstructured{}
	u.SetAPIVersion("apps/v1")
	u.SetKind("Deployment")
	u.SetName("web")
	u.SetLabels(map[string]string{"app": "web"})
	tests := []struct {
		name string
		in   any
	}{
		{"pod", &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Labels: map[string]string{"app": "web"}}}},
		{"owner metadata", &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Name: "web", Labels: map[string]string{"app": "web"}}}},
		{"unstructured Deployment", u},
		{"Deployment list", &appsv1.DeploymentList{Items: []appsv1.Deployment{*deploy}}},
		{"tombstone", cache.DeletedFinalStateUnknown{Key: "shop/web", Obj: deploy}},
		{"Deployment value, not pointer", *deploy},
		{"nil", nil},
		{"nil Deployment", (*appsv1.Deployment)(nil)},
		{"nil StatefulSet", (*appsv1.StatefulSet)(nil)},
		{"nil DaemonSet", (*appsv1.DaemonSet)(nil)},
		{"nil ControllerRevision", (*appsv1.ControllerRevision)(nil)},
		{"nil ReplicaSet", (*appsv1.ReplicaSet)(nil)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := rollout.Transform(tt.in)
			if err != nil {
				t.Fatalf("Transform() error = %v", err)
			}
			if o, ok := tt.in.(runtime.Object); ok {
				if got != o {
					t.Errorf("Transform() returned %T %p, want the input %p", got, got, o)
				}
				return
			}
			if diff := cmp.Diff(tt.in, got); diff != "" {
				t.Errorf("Transform() changed its input (-in +out):\n%s", diff)
			}
		})
	}
}

// TestTransformKeepsSinkAnnotations: the Slack sink's annotations on a workload (channel, opt-out) survive the
// trim; on the pod template, and other annotations, they do not.
func TestTransformKeepsSinkAnnotations(t *testing.T) {
	for _, obj := range []any{&appsv1.Deployment{}, &appsv1.StatefulSet{}, &appsv1.DaemonSet{}} {
		meta := map[string]string{
			"slack.deployment-tracker.io/channel": "#team-shop",
			"slack.deployment-tracker.io/ignore":  "true",
			"kubectl.kubernetes.io/last-applied":  "{}",
		}
		tmpl := corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{"slack.deployment-tracker.io/channel": "#x"}}}
		switch o := obj.(type) {
		case *appsv1.Deployment:
			o.Annotations, o.Spec.Template = meta, tmpl
		case *appsv1.StatefulSet:
			o.Annotations, o.Spec.Template = meta, tmpl
		case *appsv1.DaemonSet:
			o.Annotations, o.Spec.Template = meta, tmpl
		}
		out, err := rollout.Transform(obj)
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]string{"slack.deployment-tracker.io/channel": "#team-shop", "slack.deployment-tracker.io/ignore": "true"}
		var got, gotTmpl map[string]string
		switch o := out.(type) {
		case *appsv1.Deployment:
			got, gotTmpl = o.Annotations, o.Spec.Template.Annotations
		case *appsv1.StatefulSet:
			got, gotTmpl = o.Annotations, o.Spec.Template.Annotations
		case *appsv1.DaemonSet:
			got, gotTmpl = o.Annotations, o.Spec.Template.Annotations
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%T annotations (-want +got):\n%s", obj, diff)
		}
		if gotTmpl != nil {
			t.Errorf("%T template annotations %v, want none", obj, gotTmpl)
		}
	}
}

// TestTransformKeepsDeliveryAnnotations: the commit annotations the delivery sink reads survive the trim, on the
// workload (with its delivery.deployment-tracker.io/ configuration) and on the pod template; others do not.
func TestTransformKeepsDeliveryAnnotations(t *testing.T) {
	meta := map[string]string{
		"delivery.deployment-tracker.io/repository": "shop",
		"delivery.deployment-tracker.io/ref-from":   "container:app",
		"org.opencontainers.image.revision":         "a1a1a1a",
		"org.opencontainers.image.source":           "https://github.com/octo-org/shop",
	}
	tmpl := map[string]string{
		"delivery.deployment-tracker.io/commit":      "b2b2b2b",
		"delivery.deployment-tracker.io/commit-time": "2025-06-01T10:00:00Z",
		"delivery.deployment-tracker.io/repository":  "not on templates",
		"org.opencontainers.image.revision":          "c3c3c3c",
		"prometheus.io/scrape":                       "true",
	}
	wantMeta := map[string]string{
		"delivery.deployment-tracker.io/repository": "shop",
		"delivery.deployment-tracker.io/ref-from":   "container:app",
		"org.opencontainers.image.revision":         "a1a1a1a",
	}
	wantTmpl := map[string]string{
		"delivery.deployment-tracker.io/commit":      "b2b2b2b",
		"delivery.deployment-tracker.io/commit-time": "2025-06-01T10:00:00Z",
		"org.opencontainers.image.revision":          "c3c3c3c",
	}
	for _, obj := range []any{&appsv1.Deployment{}, &appsv1.StatefulSet{}, &appsv1.DaemonSet{}} {
		pt := corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Annotations: tmpl}}
		switch o := obj.(type) {
		case *appsv1.Deployment:
			o.Annotations, o.Spec.Template = meta, pt
		case *appsv1.StatefulSet:
			o.Annotations, o.Spec.Template = meta, pt
		case *appsv1.DaemonSet:
			o.Annotations, o.Spec.Template = meta, pt
		}
		out, err := rollout.Transform(obj)
		if err != nil {
			t.Fatal(err)
		}
		var got, gotTmpl map[string]string
		switch o := out.(type) {
		case *appsv1.Deployment:
			got, gotTmpl = o.Annotations, o.Spec.Template.Annotations
		case *appsv1.StatefulSet:
			got, gotTmpl = o.Annotations, o.Spec.Template.Annotations
		case *appsv1.DaemonSet:
			got, gotTmpl = o.Annotations, o.Spec.Template.Annotations
		}
		if diff := cmp.Diff(wantMeta, got); diff != "" {
			t.Errorf("%T annotations (-want +got):\n%s", obj, diff)
		}
		if diff := cmp.Diff(wantTmpl, gotTmpl); diff != "" {
			t.Errorf("%T template annotations (-want +got):\n%s", obj, diff)
		}
	}
}

// TestNewTransformKeepsLabels: NewTransform keeps the labels it is given on workloads (the Slack sink's team
// label) and drops the others; Transform keeps none.
func TestNewTransformKeepsLabels(t *testing.T) {
	meta := metav1.ObjectMeta{Namespace: "shop", Name: "web", Labels: map[string]string{"team": "payments", "app": "web"}}
	for _, tt := range []struct {
		name      string
		transform func(any) (any, error)
		want      map[string]string
	}{
		{"Transform", rollout.Transform, nil},
		{"NewTransform()", rollout.NewTransform(), nil},
		{"NewTransform(team)", rollout.NewTransform("team", ""), map[string]string{"team": "payments"}},
		{"NewTransform(absent)", rollout.NewTransform("owner"), nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for _, obj := range []metav1.Object{
				&appsv1.Deployment{ObjectMeta: *meta.DeepCopy()},
				&appsv1.StatefulSet{ObjectMeta: *meta.DeepCopy()},
				&appsv1.DaemonSet{ObjectMeta: *meta.DeepCopy()},
			} {
				out, err := tt.transform(obj)
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(tt.want, out.(metav1.Object).GetLabels()); diff != "" {
					t.Errorf("%T: labels (-want +got):\n%s", obj, diff)
				}
			}
		})
	}
}
