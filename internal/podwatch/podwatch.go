// Package podwatch keeps the tracker's informers light: cache transforms that reduce pods and owner metadata to
// the fields the tracker reads before they are stored, pods to a compact form of their own (Pod) that the
// cache's readers still read as pods (NewInformer).
package podwatch

import (
	"maps"
	"slices"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/deployment-tracker/deployment-tracker/internal/record"
)

// The labels that tie a pod (and its ReplicaSet or ControllerRevision) to one revision of its workload, kept by
// both transforms.
const (
	// LabelPodTemplateHash is the hash of a Deployment's pod template, set by the Deployment controller on the
	// ReplicaSet and its pods.
	// https://kubernetes.io/docs/concepts/workloads/controllers/deployment/#pod-template-hash-label
	LabelPodTemplateHash = appsv1.DefaultDeploymentUniqueLabelKey
	// LabelControllerRevisionHash names the ControllerRevision of a StatefulSet or DaemonSet pod, set on the
	// pods and on the ControllerRevision itself.
	// https://kubernetes.io/docs/reference/labels-annotations-taints/#controller-revision-hash
	LabelControllerRevisionHash = appsv1.ControllerRevisionHashLabelKey
	// LabelRolloutsPodTemplateHash is Argo Rollouts' counterpart of pod-template-hash, set on a Rollout's
	// ReplicaSets and their pods (DefaultRolloutUniqueLabelKey).
	// https://github.com/argoproj/argo-rollouts/blob/master/pkg/apis/rollouts/v1alpha1/types.go
	LabelRolloutsPodTemplateHash = "rollouts-pod-template-hash"
)

// The revision annotations, kept on owner metadata: they order the revisions of a workload.
const (
	// AnnotationDeploymentRevision is the revision number the Deployment controller gives a Deployment and
	// each of its ReplicaSets; a rollback gives the restored ReplicaSet the next number.
	// https://kubernetes.io/docs/concepts/workloads/controllers/deployment/#checking-rollout-history-of-a-deployment
	AnnotationDeploymentRevision = "deployment.kubernetes.io/revision"
	// AnnotationRolloutRevision is Argo Rollouts' revision number of a Rollout's ReplicaSets
	// (annotations.RevisionAnnotation).
	// https://github.com/argoproj/argo-rollouts/blob/master/utils/annotations/annotations.go
	AnnotationRolloutRevision = "rollout.argoproj.io/revision"
)

// AnnotationIgnore, set to "true" on a pod or on any owner of its chain, takes the pod's workload out of the
// tracker's scope (no records). Both transforms keep it.
const AnnotationIgnore = "deployment-tracker.io/ignore"

var (
	_ cache.TransformFunc = StripPod
	_ cache.TransformFunc = CompactPod
	_ cache.TransformFunc = StripMetadata
	_ cache.TransformFunc = Strip
	_ cache.TransformFunc = StripNamespace
)

// revisionLabels are the labels both transforms keep, each only when present.
var revisionLabels = []string{LabelPodTemplateHash, LabelControllerRevisionHash, LabelRolloutsPodTemplateHash}

// revisionAnnotations are the annotations StripMetadata keeps besides the metadata.github.com/ ones.
var revisionAnnotations = []string{AnnotationDeploymentRevision, AnnotationRolloutRevision}

// StripPod reduces a pod to what the tracker reads: identity, the controller owner reference, the revision
// labels (pod-template-hash, controller-revision-hash, rollouts-pod-template-hash), metadata.github.com/
// annotations and AnnotationIgnore, container names and images, phase, start time and the imageID of every container status.
// Everything else (managed fields, env, volumes, probes, conditions…) is dropped. Objects other than pods are
// returned unchanged. The cache keeps pods smaller still: see CompactPod.
func StripPod(obj any) (any, error) {
	pod, ok := obj.(*corev1.Pod)
	if !ok || pod == nil {
		return obj, nil
	}
	out := &corev1.Pod{
		TypeMeta:   pod.TypeMeta,
		ObjectMeta: stripMeta(&pod.ObjectMeta, revisionLabels, nil),
		Spec: corev1.PodSpec{
			Containers:     StripContainers(pod.Spec.Containers),
			InitContainers: StripContainers(pod.Spec.InitContainers),
		},
		Status: corev1.PodStatus{
			Phase:                 pod.Status.Phase,
			StartTime:             pod.Status.StartTime,
			ContainerStatuses:     statuses(pod.Status.ContainerStatuses),
			InitContainerStatuses: statuses(pod.Status.InitContainerStatuses),
		},
	}
	return out, nil
}

// StripMetadata reduces owner metadata (metav1.PartialObjectMetadata) to identity, the controller owner
// reference, the deletion timestamp, the revision labels (pod-template-hash, controller-revision-hash,
// rollouts-pod-template-hash), the revision annotations (deployment.kubernetes.io/revision,
// rollout.argoproj.io/revision), metadata.github.com/ annotations and AnnotationIgnore: what resolving an
// owner, deciding its scope and ordering the ReplicaSets of a workload read.
func StripMetadata(obj any) (any, error) {
	m, ok := obj.(*metav1.PartialObjectMetadata)
	if !ok || m == nil {
		return obj, nil
	}
	return &metav1.PartialObjectMetadata{TypeMeta: m.TypeMeta, ObjectMeta: stripMeta(&m.ObjectMeta, revisionLabels, revisionAnnotations)}, nil
}

// stripMeta keeps identity, the deletion timestamp, the controller owner reference, the labels named in
// keepLabels, the metadata.github.com/ annotations, AnnotationIgnore and the annotations named in keepAnnotations.
func stripMeta(m *metav1.ObjectMeta, keepLabels, keepAnnotations []string) metav1.ObjectMeta {
	out := metav1.ObjectMeta{
		Name:              m.Name,
		Namespace:         m.Namespace,
		UID:               m.UID,
		ResourceVersion:   m.ResourceVersion,
		CreationTimestamp: m.CreationTimestamp,
		DeletionTimestamp: m.DeletionTimestamp,
	}
	for _, k := range keepLabels {
		if v, ok := m.Labels[k]; ok {
			if out.Labels == nil {
				out.Labels = make(map[string]string, 1)
			}
			out.Labels[k] = v
		}
	}
	for k, v := range m.Annotations {
		if strings.HasPrefix(k, record.AnnotationPrefix) || k == AnnotationIgnore || slices.Contains(keepAnnotations, k) {
			if out.Annotations == nil {
				out.Annotations = map[string]string{}
			}
			out.Annotations[k] = v
		}
	}
	if ref := metav1.GetControllerOfNoCopy(m); ref != nil {
		out.OwnerReferences = []metav1.OwnerReference{{
			APIVersion: ref.APIVersion, Kind: ref.Kind, Name: ref.Name, UID: ref.UID, Controller: ref.Controller,
		}}
	}
	return out
}

// StripContainers reduces containers to their names and images, what the tracker and the rollout model read
// of a pod spec or a pod template.
func StripContainers(in []corev1.Container) []corev1.Container {
	if len(in) == 0 {
		return nil
	}
	out := make([]corev1.Container, len(in))
	for i := range in {
		out[i] = corev1.Container{Name: in[i].Name, Image: in[i].Image}
	}
	return out
}

func statuses(in []corev1.ContainerStatus) []corev1.ContainerStatus {
	if len(in) == 0 {
		return nil
	}
	out := make([]corev1.ContainerStatus, len(in))
	for i := range in {
		out[i] = corev1.ContainerStatus{Name: in[i].Name, Image: in[i].Image, ImageID: in[i].ImageID}
	}
	return out
}

// Strip is the cache's default transform: CompactPod for pods, StripMetadata for owner metadata. A cache using
// it must be built with NewInformer, so that its pods are read as pods.
func Strip(obj any) (any, error) {
	switch obj.(type) {
	case *corev1.Pod:
		return CompactPod(obj)
	case *metav1.PartialObjectMetadata:
		return StripMetadata(obj)
	}
	return obj, nil
}

// Keeping is Strip keeping the labels named in labelKeys too, on pods and owner metadata: the labels a workload
// selector reads (see tracker.Scope). Without keys it is Strip. A cache using it must be built with
// NewInformer. The setters of its Pods keep the revision labels only.
func Keeping(labelKeys ...string) cache.TransformFunc {
	if len(labelKeys) == 0 {
		return Strip
	}
	keep := slices.Clone(revisionLabels)
	extra := slices.Clone(labelKeys)
	slices.Sort(extra) // a fixed order: the packed form of equal labels is equal
	for _, k := range slices.Compact(extra) {
		if !slices.Contains(keep, k) {
			keep = append(keep, k)
		}
	}
	return func(obj any) (any, error) {
		switch o := obj.(type) {
		case *corev1.Pod:
			if o == nil {
				return obj, nil
			}
			p := Compact(o)
			p.labels = packLabels(o.Labels, keep)
			return p, nil
		case *metav1.PartialObjectMetadata:
			if o == nil {
				return obj, nil
			}
			return &metav1.PartialObjectMetadata{TypeMeta: o.TypeMeta, ObjectMeta: stripMeta(&o.ObjectMeta, keep, revisionAnnotations)}, nil
		}
		return obj, nil
	}
}

// StripNamespace reduces Namespace metadata (metav1.PartialObjectMetadata) to its identity, deletion timestamp
// and labels: what a namespace selector reads. It is the transform of the cache's Namespace informer.
func StripNamespace(obj any) (any, error) {
	m, ok := obj.(*metav1.PartialObjectMetadata)
	if !ok || m == nil {
		return obj, nil
	}
	return &metav1.PartialObjectMetadata{TypeMeta: m.TypeMeta, ObjectMeta: metav1.ObjectMeta{
		Name: m.Name, UID: m.UID, ResourceVersion: m.ResourceVersion, CreationTimestamp: m.CreationTimestamp,
		DeletionTimestamp: m.DeletionTimestamp, Labels: maps.Clone(m.Labels),
	}}, nil
}
