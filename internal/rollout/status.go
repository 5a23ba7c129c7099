package rollout

import (
	"errors"
	"fmt"
	"reflect"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Status is a workload's readiness as kstatus computes it.
type Status struct {
	// Phase is PhaseInProgress, PhaseCurrent or PhaseFailed.
	Phase Phase
	// Reason is kstatus' reason: the reason of its Stalled condition for a failed workload
	// ("ProgressDeadlineExceeded"), of its Reconciling condition for one in progress ("LessUpdated",
	// "LatestGenerationNotObserved", ...), or kstatus' own status when it gives no condition ("Terminating" for
	// a workload being deleted). It is empty for a current workload.
	Reason string
	// Message is kstatus' message ("Updated: 2/3", "Deployment is available. Replicas: 3", ...).
	Message string
	// Ready and Desired are the ready and desired replicas: readyReplicas and spec.replicas (default 1) of a
	// Deployment or a StatefulSet, numberReady and desiredNumberScheduled of a DaemonSet, readyReplicas and
	// spec.replicas (default 0) of anything else that has them.
	Ready, Desired int32
}

// Compute reads a workload's readiness with kstatus (sigs.k8s.io/cli-utils/pkg/kstatus/status): Current when
// the rollout of its latest generation is complete, Failed when kstatus says it stalled (a Deployment whose
// Progressing condition has reason ProgressDeadlineExceeded), and InProgress otherwise (kstatus' InProgress,
// Terminating, Unknown and NotFound). obj is a typed workload as the cache holds it, trimmed by Transform or
// not, with or without TypeMeta (the kind of a Deployment, StatefulSet or DaemonSet of apps/v1 is taken from
// its Go type), or an *unstructured.Unstructured with its apiVersion and kind. obj is not modified.
//
// https://github.com/kubernetes-sigs/cli-utils/blob/master/pkg/kstatus/README.md
func Compute(obj client.Object) (Status, error) {
	if obj == nil {
		return Status{}, errors.New("compute status: nil object")
	}
	if v := reflect.ValueOf(obj); v.Kind() == reflect.Pointer && v.IsNil() {
		return Status{}, fmt.Errorf("compute status: nil %T", obj)
	}
	content, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return Status{}, fmt.Errorf("compute status of %s/%s: convert %T to unstructured: %w",
			obj.GetNamespace(), obj.GetName(), obj, err)
	}
	u := &unstructured.Unstructured{Object: content}
	if u.GetAPIVersion() == "" || u.GetKind() == "" {
		gvk, ok := kindOf(obj)
		if !ok {
			return Status{}, fmt.Errorf("compute status of %T %s/%s: no apiVersion and kind",
				obj, obj.GetNamespace(), obj.GetName())
		}
		// content is a fresh map for a typed object (only an Unstructured shares its map, and it has no Go type
		// to take a kind from): setting the kind here does not touch obj.
		u.SetGroupVersionKind(gvk)
	}
	res, err := status.Compute(u)
	if err != nil {
		return Status{}, fmt.Errorf("compute status of %s %s/%s: %w", u.GetKind(), u.GetNamespace(), u.GetName(), err)
	}
	out := Status{Message: res.Message}
	switch res.Status {
	case status.CurrentStatus:
		out.Phase = PhaseCurrent
	case status.FailedStatus:
		out.Phase = PhaseFailed
		out.Reason = conditionReason(res, status.ConditionStalled)
	default: // InProgress, Terminating, Unknown, NotFound
		out.Phase = PhaseInProgress
		out.Reason = conditionReason(res, status.ConditionReconciling)
		if out.Reason == "" && res.Status != status.InProgressStatus {
			out.Reason = string(res.Status)
		}
	}
	out.Ready, out.Desired = replicas(u)
	return out, nil
}

// kindOf is the apiVersion and kind of the typed workloads the cache holds without TypeMeta.
func kindOf(obj client.Object) (schema.GroupVersionKind, bool) {
	switch obj.(type) {
	case *appsv1.Deployment:
		return appsv1.SchemeGroupVersion.WithKind("Deployment"), true
	case *appsv1.StatefulSet:
		return appsv1.SchemeGroupVersion.WithKind("StatefulSet"), true
	case *appsv1.DaemonSet:
		return appsv1.SchemeGroupVersion.WithKind("DaemonSet"), true
	}
	return schema.GroupVersionKind{}, false
}

// conditionReason is the reason of the kstatus condition of type t in res, or "".
func conditionReason(res *status.Result, t status.ConditionType) string {
	for _, c := range res.Conditions {
		if c.Type == t {
			return c.Reason
		}
	}
	return ""
}

// replicas reads the ready and desired replicas of u, with the defaults kstatus uses.
func replicas(u *unstructured.Unstructured) (ready, desired int32) {
	obj := u.Object
	switch u.GroupVersionKind().GroupKind() {
	case schema.GroupKind{Group: appsv1.GroupName, Kind: "DaemonSet"}, schema.GroupKind{Group: "extensions", Kind: "DaemonSet"}:
		return intField(obj, ".status.numberReady", 0), intField(obj, ".status.desiredNumberScheduled", 0)
	case schema.GroupKind{Group: appsv1.GroupName, Kind: "Deployment"}, schema.GroupKind{Group: "extensions", Kind: "Deployment"},
		schema.GroupKind{Group: appsv1.GroupName, Kind: "StatefulSet"}:
		// The controllers default spec.replicas to 1, and so does kstatus.
		return intField(obj, ".status.readyReplicas", 0), intField(obj, ".spec.replicas", 1)
	}
	return intField(obj, ".status.readyReplicas", 0), intField(obj, ".spec.replicas", 0)
}

// intField reads an int32 field as kstatus does (status.GetIntField).
func intField(obj map[string]any, path string, def int) int32 {
	return int32(status.GetIntField(obj, path, def)) //nolint:gosec // replica counts are int32 in the API
}
