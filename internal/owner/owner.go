// Package owner resolves the workload a pod belongs to (the deploymentName of a record) from metadata only:
// Pod → ReplicaSet → Deployment, Pod → Job → CronJob, StatefulSet, DaemonSet, or the pod itself. Owners are read
// as metav1.PartialObjectMetadata from the cache, so no workload spec is ever cached.
package owner

import (
	"context"
	"errors"
	"fmt"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// ErrNotResolved is returned when an owner the pod names is not (yet) in the cache and cannot be inferred;
// the caller retries.
var ErrNotResolved = errors.New("owner not resolved")

// Kinds the resolver knows. Their metadata is watched, so their deletion is seen.
var (
	ReplicaSet  = appsv1.SchemeGroupVersion.WithKind("ReplicaSet")
	Deployment  = appsv1.SchemeGroupVersion.WithKind("Deployment")
	StatefulSet = appsv1.SchemeGroupVersion.WithKind("StatefulSet")
	DaemonSet   = appsv1.SchemeGroupVersion.WithKind("DaemonSet")
	Job         = batchv1.SchemeGroupVersion.WithKind("Job")
	CronJob     = batchv1.SchemeGroupVersion.WithKind("CronJob")
	Pod         = corev1.SchemeGroupVersion.WithKind("Pod")
)

// WorkloadKinds are the kinds a workload can be, besides a bare Pod and owners of unknown kinds.
var WorkloadKinds = []schema.GroupVersionKind{ReplicaSet, Deployment, StatefulSet, DaemonSet, Job, CronJob}

// Workload identifies the object whose lifetime a record follows.
type Workload struct {
	// Group and Kind of the workload ("apps", "Deployment"; "" and "Pod" for a bare pod).
	Group, Kind string
	Namespace   string
	Name        string
}

func (w Workload) String() string {
	if w.Group == "" {
		return fmt.Sprintf("%s/%s/%s", w.Kind, w.Namespace, w.Name)
	}
	return fmt.Sprintf("%s.%s/%s/%s", w.Kind, w.Group, w.Namespace, w.Name)
}

// Known reports whether the resolver watches the workload's kind (and can tell whether it still exists).
func (w Workload) Known() bool {
	_, ok := gvkOf(w.Group, w.Kind)
	return ok || (w.Group == "" && w.Kind == "Pod")
}

// Resolution is a pod's workload and the annotations along the owner chain, nearest first (excluding the pod).
type Resolution struct {
	Workload    Workload
	Annotations []map[string]string
	// Found reports that the workload object itself was read (Annotations are complete); false when it was
	// inferred or is already gone.
	Found bool
}

// Resolver resolves owners through a metadata reader (the manager's cache).
type Resolver struct {
	Reader client.Reader
}

// Resolve returns the workload that owns pod.
func (r *Resolver) Resolve(ctx context.Context, pod *corev1.Pod) (Resolution, error) {
	ref := metav1.GetControllerOfNoCopy(pod)
	if ref == nil {
		return Resolution{Workload: Workload{Kind: "Pod", Namespace: pod.Namespace, Name: pod.Name}, Found: true}, nil
	}
	gv, err := schema.ParseGroupVersion(ref.APIVersion)
	if err != nil {
		return Resolution{}, fmt.Errorf("owner reference %s/%s of pod %s/%s: %w", ref.Kind, ref.Name, pod.Namespace, pod.Name, err)
	}
	direct := Workload{Group: gv.Group, Kind: ref.Kind, Namespace: pod.Namespace, Name: ref.Name}
	var res Resolution
	switch {
	case direct.Group == ReplicaSet.Group && direct.Kind == ReplicaSet.Kind:
		return r.up(ctx, direct, Deployment, func() (Workload, bool) { return deploymentByHash(pod, ref.Name) })
	case direct.Group == Job.Group && direct.Kind == Job.Kind:
		return r.up(ctx, direct, CronJob, nil)
	default:
		res.Workload = direct
		if gvk, ok := gvkOf(direct.Group, direct.Kind); ok {
			m, err := r.get(ctx, gvk, direct)
			switch {
			case err == nil:
				res.Annotations = []map[string]string{m.Annotations}
				res.Found = true
			case !apierrors.IsNotFound(err):
				return Resolution{}, err
			}
		}
		return res, nil
	}
}

// up resolves a two-level chain (ReplicaSet → Deployment, Job → CronJob): the workload is the parent when the
// direct owner is controlled by one, else the direct owner. infer names the parent when the direct owner is not
// in the cache (yet, or any more).
func (r *Resolver) up(ctx context.Context, direct Workload, parent schema.GroupVersionKind, infer func() (Workload, bool)) (Resolution, error) {
	gvk, _ := gvkOf(direct.Group, direct.Kind)
	m, err := r.get(ctx, gvk, direct)
	if apierrors.IsNotFound(err) {
		if infer != nil {
			if w, ok := infer(); ok {
				return Resolution{Workload: w}, nil
			}
		}
		return Resolution{}, fmt.Errorf("%s: %w", direct, ErrNotResolved)
	}
	if err != nil {
		return Resolution{}, err
	}
	ref := metav1.GetControllerOfNoCopy(m)
	if ref == nil || ref.Kind != parent.Kind || !strings.HasPrefix(ref.APIVersion, parent.Group+"/") {
		return Resolution{Workload: direct, Annotations: []map[string]string{m.Annotations}, Found: true}, nil
	}
	w := Workload{Group: parent.Group, Kind: parent.Kind, Namespace: direct.Namespace, Name: ref.Name}
	res := Resolution{Workload: w, Annotations: []map[string]string{m.Annotations}}
	pm, err := r.get(ctx, parent, w)
	switch {
	case err == nil:
		res.Annotations = append(res.Annotations, pm.Annotations)
		res.Found = true
	case !apierrors.IsNotFound(err):
		return Resolution{}, err
	}
	return res, nil
}

// Exists reports whether w still exists and is not being deleted. A bare pod's existence is the pod's own; for
// owners of kinds the resolver does not watch, it reports false: the workload is taken to be gone with its
// last pod.
func (r *Resolver) Exists(ctx context.Context, w Workload) (bool, error) {
	gvk, ok := gvkOf(w.Group, w.Kind)
	if !ok {
		return false, nil
	}
	m, err := r.get(ctx, gvk, w)
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return m.DeletionTimestamp == nil, nil
}

func (r *Resolver) get(ctx context.Context, gvk schema.GroupVersionKind, w Workload) (*metav1.PartialObjectMetadata, error) {
	m := &metav1.PartialObjectMetadata{}
	m.SetGroupVersionKind(gvk)
	if err := r.Reader.Get(ctx, types.NamespacedName{Namespace: w.Namespace, Name: w.Name}, m); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, err
		}
		return nil, fmt.Errorf("reading %s: %w", w, err)
	}
	return m, nil
}

// deploymentByHash applies the Deployment controller's naming rule: a ReplicaSet it creates is named
// <deployment>-<pod-template-hash> and its pods carry that hash as a label.
func deploymentByHash(pod *corev1.Pod, rsName string) (Workload, bool) {
	hash := pod.Labels[appsv1.DefaultDeploymentUniqueLabelKey]
	name, ok := strings.CutSuffix(rsName, "-"+hash)
	if hash == "" || !ok || name == "" {
		return Workload{}, false
	}
	return Workload{Group: Deployment.Group, Kind: Deployment.Kind, Namespace: pod.Namespace, Name: name}, true
}

func gvkOf(group, kind string) (schema.GroupVersionKind, bool) {
	for _, k := range WorkloadKinds {
		if k.Group == group && k.Kind == kind {
			return k, true
		}
	}
	return schema.GroupVersionKind{}, false
}
