package rollout_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/deployment-tracker/deployment-tracker/internal/rollout"
)

// withoutTypeMeta returns a copy of obj without apiVersion and kind, as the cache hands typed objects out.
func withoutTypeMeta(obj client.Object) client.Object {
	c := obj.DeepCopyObject().(client.Object)
	c.GetObjectKind().SetGroupVersionKind(schema.GroupVersionKind{})
	return c
}

// checkCompute checks that Compute gives want for obj whole and trimmed by Transform, each with and without
// TypeMeta, and that it modifies none of them.
func checkCompute(t *testing.T, obj client.Object, want rollout.Status) {
	t.Helper()
	trimmed, err := rollout.Transform(obj)
	if err != nil {
		t.Fatalf("Transform() error = %v", err)
	}
	for _, v := range []struct {
		name string
		obj  client.Object
	}{
		{"whole", obj},
		{"whole without TypeMeta", withoutTypeMeta(obj)},
		{"trimmed", trimmed.(client.Object)},
		{"trimmed without TypeMeta", withoutTypeMeta(trimmed.(client.Object))},
	} {
		before := v.obj.DeepCopyObject()
		got, err := rollout.Compute(v.obj)
		if err != nil {
			t.Fatalf("Compute(%s) error = %v", v.name, err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("Compute(%s) mismatch (-want +got):\n%s", v.name, diff)
		}
		if diff := cmp.Diff(before, v.obj); diff != "" {
			t.Errorf("Compute(%s) modified its input (-before +after):\n%s", v.name, diff)
		}
	}
}

// TestComputeTrimmed computes the status of the testdata workloads, whole and trimmed: Transform must keep all
// that kstatus reads.
func TestComputeTrimmed(t *testing.T) {
	tests := []struct {
		name string
		obj  func(t *testing.T) client.Object
		want rollout.Status
	}{
		{
			name: "Deployment mid-rollout: not all replicas updated",
			obj:  func(t *testing.T) client.Object { return load[appsv1.Deployment](t, "deployment-rollout.json") },
			want: rollout.Status{Phase: rollout.PhaseInProgress, Reason: "LessUpdated", Message: "Updated: 2/3", Ready: 3, Desired: 3},
		},
		{
			name: "Deployment past its progress deadline",
			obj:  func(t *testing.T) client.Object { return load[appsv1.Deployment](t, "deployment-deadline.json") },
			want: rollout.Status{
				Phase: rollout.PhaseFailed, Reason: "ProgressDeadlineExceeded", Message: "Progress deadline exceeded",
				Ready: 2, Desired: 2,
			},
		},
		{
			name: "Deployment complete",
			obj:  func(t *testing.T) client.Object { return load[appsv1.Deployment](t, "deployment-complete.json") },
			want: rollout.Status{Phase: rollout.PhaseCurrent, Message: "Deployment is available. Replicas: 3", Ready: 3, Desired: 3},
		},
		{
			// The API server defaults the partition to 0, so kstatus counts the updated replicas above it.
			name: "StatefulSet mid-rollout: updateRevision is not currentRevision",
			obj:  func(t *testing.T) client.Object { return load[appsv1.StatefulSet](t, "statefulset-rollout.json") },
			want: rollout.Status{Phase: rollout.PhaseInProgress, Reason: "PartitionRollout", Message: "updated: 1/3", Ready: 3, Desired: 3},
		},
		{
			name: "StatefulSet complete",
			obj:  func(t *testing.T) client.Object { return load[appsv1.StatefulSet](t, "statefulset-complete.json") },
			want: rollout.Status{
				Phase: rollout.PhaseCurrent, Message: "Partition rollout complete. updated: 3", Ready: 3, Desired: 3,
			},
		},
		{
			name: "DaemonSet mid-rollout",
			obj:  func(t *testing.T) client.Object { return load[appsv1.DaemonSet](t, "daemonset-rollout.json") },
			want: rollout.Status{Phase: rollout.PhaseInProgress, Reason: "LessUpdated", Message: "Updated: 2/5", Ready: 4, Desired: 5},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkCompute(t, tt.obj(t), tt.want)
		})
	}
}

// TestComputeEdgeCases covers defaults and missing fields, each whole and trimmed.
func TestComputeEdgeCases(t *testing.T) {
	tests := []struct {
		name string
		obj  func(t *testing.T) client.Object
		want rollout.Status
	}{
		{
			name: "Deployment just created: nil replicas (1), no status",
			obj: func(*testing.T) client.Object {
				return &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "api", Namespace: "shop", Generation: 1}}
			},
			want: rollout.Status{Phase: rollout.PhaseInProgress, Reason: "LessReplicas", Message: "Replicas: 0/1", Desired: 1},
		},
		{
			name: "Deployment with nil replicas, complete",
			obj: func(t *testing.T) client.Object {
				d := load[appsv1.Deployment](t, "deployment-complete.json")
				d.Spec.Replicas = nil
				d.Status.Replicas, d.Status.UpdatedReplicas, d.Status.ReadyReplicas, d.Status.AvailableReplicas = 1, 1, 1, 1
				return d
			},
			want: rollout.Status{Phase: rollout.PhaseCurrent, Message: "Deployment is available. Replicas: 1", Ready: 1, Desired: 1},
		},
		{
			name: "Deployment scaled to zero",
			obj: func(t *testing.T) client.Object {
				d := load[appsv1.Deployment](t, "deployment-complete.json")
				d.Spec.Replicas = ptr(int32(0))
				d.Status.Replicas, d.Status.UpdatedReplicas, d.Status.ReadyReplicas, d.Status.AvailableReplicas = 0, 0, 0, 0
				return d
			},
			want: rollout.Status{Phase: rollout.PhaseCurrent, Message: "Deployment is available. Replicas: 0"},
		},
		{
			name: "Deployment whose new generation the controller has not observed yet",
			obj: func(t *testing.T) client.Object {
				d := load[appsv1.Deployment](t, "deployment-complete.json")
				d.Generation = 15
				return d
			},
			want: rollout.Status{
				Phase: rollout.PhaseInProgress, Reason: "LatestGenerationNotObserved",
				Message: "Deployment generation is 15, but latest observed generation is 14", Ready: 3, Desired: 3,
			},
		},
		{
			name: "Deployment being deleted: kstatus' Terminating",
			obj: func(t *testing.T) client.Object {
				d := load[appsv1.Deployment](t, "deployment-complete.json")
				d.DeletionTimestamp = tsp("2025-06-02T08:00:00Z")
				return d
			},
			want: rollout.Status{
				Phase: rollout.PhaseInProgress, Reason: "Terminating", Message: "Resource scheduled for deletion", Ready: 3, Desired: 3,
			},
		},
		{
			name: "Deployment without a progress deadline, all replicas available",
			obj: func(t *testing.T) client.Object {
				d := load[appsv1.Deployment](t, "deployment-complete.json")
				d.Spec.ProgressDeadlineSeconds = nil
				d.Status.Conditions = d.Status.Conditions[:1] // the controller sets no Progressing condition
				return d
			},
			want: rollout.Status{Phase: rollout.PhaseCurrent, Message: "Deployment is available. Replicas: 3", Ready: 3, Desired: 3},
		},
		{
			name: "Deployment with all replicas updated, waiting for availability",
			obj: func(t *testing.T) client.Object {
				d := load[appsv1.Deployment](t, "deployment-rollout.json")
				d.Status.Replicas, d.Status.UpdatedReplicas, d.Status.ReadyReplicas, d.Status.AvailableReplicas = 3, 3, 3, 2
				return d
			},
			want: rollout.Status{Phase: rollout.PhaseInProgress, Reason: "LessAvailable", Message: "Available: 2/3", Ready: 3, Desired: 3},
		},
		{
			name: "StatefulSet just created: nil replicas (1), no status",
			obj: func(*testing.T) client.Object {
				return &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Name: "cache", Namespace: "shop", Generation: 1}}
			},
			want: rollout.Status{Phase: rollout.PhaseInProgress, Reason: "LessReplicas", Message: "Replicas: 0/1", Desired: 1},
		},
		{
			name: "StatefulSet with the OnDelete strategy is always current",
			obj: func(t *testing.T) client.Object {
				s := load[appsv1.StatefulSet](t, "statefulset-rollout.json")
				s.Spec.UpdateStrategy = appsv1.StatefulSetUpdateStrategy{Type: appsv1.OnDeleteStatefulSetStrategyType}
				return s
			},
			want: rollout.Status{
				Phase: rollout.PhaseCurrent, Message: "StatefulSet is using the ondelete update strategy", Ready: 3, Desired: 3,
			},
		},
		{
			name: "StatefulSet with a partition: complete once the pods above it are updated",
			obj: func(t *testing.T) client.Object {
				s := load[appsv1.StatefulSet](t, "statefulset-rollout.json")
				s.Spec.UpdateStrategy.RollingUpdate.Partition = ptr(int32(2))
				return s
			},
			want: rollout.Status{
				Phase: rollout.PhaseCurrent, Message: "Partition rollout complete. updated: 1", Ready: 3, Desired: 3,
			},
		},
		{
			name: "StatefulSet without a partition: the revisions decide",
			obj: func(t *testing.T) client.Object {
				s := load[appsv1.StatefulSet](t, "statefulset-rollout.json")
				s.Spec.UpdateStrategy.RollingUpdate = nil
				s.Status.CurrentReplicas = 3
				return s
			},
			want: rollout.Status{
				Phase: rollout.PhaseInProgress, Reason: "RevisionMismatch", Message: "Waiting for updated revision to match current",
				Ready: 3, Desired: 3,
			},
		},
		{
			name: "StatefulSet with a replica not ready",
			obj: func(t *testing.T) client.Object {
				s := load[appsv1.StatefulSet](t, "statefulset-rollout.json")
				s.Status.ReadyReplicas = 2
				return s
			},
			want: rollout.Status{Phase: rollout.PhaseInProgress, Reason: "LessReady", Message: "Ready: 2/3", Ready: 2, Desired: 3},
		},
		{
			name: "DaemonSet not yet seen by its controller: no status",
			obj: func(*testing.T) client.Object {
				return &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Name: "agent", Namespace: "o11y", Generation: 1}}
			},
			want: rollout.Status{
				Phase: rollout.PhaseInProgress, Reason: "NoObservedGeneration",
				Message: "DaemonSet status.observedGeneration not found",
			},
		},
		{
			name: "DaemonSet without a generation",
			obj: func(*testing.T) client.Object {
				return &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Name: "agent", Namespace: "o11y"}}
			},
			want: rollout.Status{
				Phase: rollout.PhaseInProgress, Reason: "NoGeneration", Message: "DaemonSet metadata.generation not found",
			},
		},
		{
			name: "DaemonSet complete",
			obj: func(t *testing.T) client.Object {
				d := load[appsv1.DaemonSet](t, "daemonset-rollout.json")
				d.Status.UpdatedNumberScheduled, d.Status.NumberAvailable, d.Status.NumberReady, d.Status.NumberUnavailable = 5, 5, 5, 0
				return d
			},
			want: rollout.Status{
				Phase: rollout.PhaseCurrent, Message: "All replicas scheduled as expected. Replicas: 5", Ready: 5, Desired: 5,
			},
		},
		{
			name: "DaemonSet matching no node",
			obj: func(t *testing.T) client.Object {
				d := load[appsv1.DaemonSet](t, "daemonset-rollout.json")
				d.Status = appsv1.DaemonSetStatus{ObservedGeneration: 9}
				return d
			},
			want: rollout.Status{Phase: rollout.PhaseCurrent, Message: "All replicas scheduled as expected. Replicas: 0"},
		},
		{
			name: "DaemonSet with a Stalled condition: kstatus' generic rule",
			obj: func(t *testing.T) client.Object {
				d := load[appsv1.DaemonSet](t, "daemonset-rollout.json")
				d.Status.Conditions = []appsv1.DaemonSetCondition{{
					Type: "Stalled", Status: corev1.ConditionTrue, Reason: "ImagePullBackOff", Message: "agent image cannot be pulled",
				}}
				return d
			},
			want: rollout.Status{
				Phase: rollout.PhaseFailed, Reason: "ImagePullBackOff", Message: "agent image cannot be pulled", Ready: 4, Desired: 5,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkCompute(t, tt.obj(t), tt.want)
		})
	}
}

// TestComputePhases maps each kstatus status that status.Compute returns onto a phase. (kstatus' Unknown and
// NotFound come from its pollers, never from status.Compute; Compute maps them to InProgress too.)
func TestComputePhases(t *testing.T) {
	tests := []struct {
		kstatus string
		obj     func(t *testing.T) client.Object
		want    rollout.Phase
	}{
		{"Current", func(t *testing.T) client.Object { return load[appsv1.Deployment](t, "deployment-complete.json") }, rollout.PhaseCurrent},
		{"Failed", func(t *testing.T) client.Object { return load[appsv1.Deployment](t, "deployment-deadline.json") }, rollout.PhaseFailed},
		{"InProgress", func(t *testing.T) client.Object { return load[appsv1.Deployment](t, "deployment-rollout.json") }, rollout.PhaseInProgress},
		{"Terminating", func(t *testing.T) client.Object {
			d := load[appsv1.Deployment](t, "deployment-complete.json")
			d.DeletionTimestamp = tsp("2025-06-02T08:00:00Z")
			return d
		}, rollout.PhaseInProgress},
	}
	for _, tt := range tests {
		t.Run(tt.kstatus, func(t *testing.T) {
			got, err := rollout.Compute(tt.obj(t))
			if err != nil {
				t.Fatalf("Compute() error = %v", err)
			}
			if got.Phase != tt.want {
				t.Errorf("Compute() phase = %q, want %q", got.Phase, tt.want)
			}
		})
	}
}

// TestComputeUnstructured checks objects that carry their kind: an unstructured one (a custom workload with
// kstatus' standard conditions) and one with TypeMeta.
func TestComputeUnstructured(t *testing.T) {
	custom := func(conditions ...any) *unstructured.Unstructured {
		return &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "example.com/v1",
			"kind":       "Workload",
			"metadata":   map[string]any{"name": "w", "namespace": "shop", "generation": int64(3)},
			"spec":       map[string]any{"replicas": int64(4)},
			"status": map[string]any{
				"observedGeneration": int64(3), "readyReplicas": int64(2), "conditions": conditions,
			},
		}}
	}
	tests := []struct {
		name string
		obj  client.Object
		want rollout.Status
	}{
		{
			name: "custom workload, Reconciling",
			obj: custom(map[string]any{
				"type": "Reconciling", "status": "True", "reason": "Scaling", "message": "2 of 4 replicas ready",
			}),
			want: rollout.Status{Phase: rollout.PhaseInProgress, Reason: "Scaling", Message: "2 of 4 replicas ready", Ready: 2, Desired: 4},
		},
		{
			name: "custom workload, Stalled",
			obj: custom(map[string]any{
				"type": "Stalled", "status": "True", "reason": "QuotaExceeded", "message": "pods forbidden: exceeded quota",
			}),
			want: rollout.Status{Phase: rollout.PhaseFailed, Reason: "QuotaExceeded", Message: "pods forbidden: exceeded quota", Ready: 2, Desired: 4},
		},
		{
			name: "custom workload without conditions",
			obj:  custom(),
			want: rollout.Status{Phase: rollout.PhaseCurrent, Message: "Resource is current", Ready: 2, Desired: 4},
		},
		{
			name: "unstructured Deployment: spec.replicas defaults to 1",
			obj: &unstructured.Unstructured{Object: map[string]any{
				"apiVersion": "apps/v1", "kind": "Deployment",
				"metadata": map[string]any{"name": "api", "namespace": "shop", "generation": int64(1)},
			}},
			want: rollout.Status{Phase: rollout.PhaseInProgress, Reason: "LessReplicas", Message: "Replicas: 0/1", Desired: 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := tt.obj.DeepCopyObject()
			got, err := rollout.Compute(tt.obj)
			if err != nil {
				t.Fatalf("Compute() error = %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Compute() mismatch (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(before, tt.obj); diff != "" {
				t.Errorf("Compute() modified its input (-before +after):\n%s", diff)
			}
		})
	}
}

func TestComputeErrors(t *testing.T) {
	tests := []struct {
		name string
		obj  client.Object
	}{
		{"nil", nil},
		{"nil Deployment", (*appsv1.Deployment)(nil)},
		{"ControllerRevision without TypeMeta: not a workload Compute knows the kind of", &appsv1.ControllerRevision{
			ObjectMeta: metav1.ObjectMeta{Name: "db-7c4d9e8f1b", Namespace: "shop"},
		}},
		{"ReplicaSet without TypeMeta", &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: "web-7d4b9c6f8", Namespace: "shop"}}},
		{"unstructured without apiVersion and kind", &unstructured.Unstructured{Object: map[string]any{
			"metadata": map[string]any{"name": "w", "namespace": "shop"},
		}}},
		{"malformed generation", &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "apps/v1", "kind": "Deployment",
			"metadata": map[string]any{"name": "w", "namespace": "shop", "generation": "three"},
		}}},
		{"malformed conditions", &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "apps/v1", "kind": "Deployment",
			"metadata": map[string]any{"name": "w", "namespace": "shop"},
			"status":   map[string]any{"conditions": "none"},
		}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := rollout.Compute(tt.obj)
			if err == nil {
				t.Fatalf("Compute() = %+v, want an error", got)
			}
			t.Logf("Compute() error = %v", err)
			if diff := cmp.Diff(rollout.Status{}, got); diff != "" {
				t.Errorf("Compute() returned a status with its error (-want +got):\n%s", diff)
			}
		})
	}
}
