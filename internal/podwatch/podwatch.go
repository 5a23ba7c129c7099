// Package podwatch keeps the tracker's informers light: cache transforms that strip pods and owner metadata down
// to the fields the tracker reads, before they are stored.
package podwatch

import (
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/deployment-tracker/deployment-tracker/internal/record"
)

var (
	_ cache.TransformFunc = StripPod
	_ cache.TransformFunc = StripMetadata
)

// StripPod reduces a pod to what the tracker reads: identity, the controller owner reference, the
// pod-template-hash label, metadata.github.com/ annotations, container names and images, phase, start time and
// the imageID of every container status. Everything else (managed fields, env, volumes, probes, conditions…)
// is dropped. Objects other than pods are returned unchanged.
func StripPod(obj any) (any, error) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return obj, nil
	}
	out := &corev1.Pod{
		TypeMeta:   pod.TypeMeta,
		ObjectMeta: stripMeta(&pod.ObjectMeta, appsv1.DefaultDeploymentUniqueLabelKey),
		Spec: corev1.PodSpec{
			Containers:     containers(pod.Spec.Containers),
			InitContainers: containers(pod.Spec.InitContainers),
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
// reference, the deletion timestamp and metadata.github.com/ annotations.
func StripMetadata(obj any) (any, error) {
	m, ok := obj.(*metav1.PartialObjectMetadata)
	if !ok {
		return obj, nil
	}
	return &metav1.PartialObjectMetadata{TypeMeta: m.TypeMeta, ObjectMeta: stripMeta(&m.ObjectMeta, "")}, nil
}

func stripMeta(m *metav1.ObjectMeta, keepLabel string) metav1.ObjectMeta {
	out := metav1.ObjectMeta{
		Name:              m.Name,
		Namespace:         m.Namespace,
		UID:               m.UID,
		ResourceVersion:   m.ResourceVersion,
		CreationTimestamp: m.CreationTimestamp,
		DeletionTimestamp: m.DeletionTimestamp,
	}
	if v, ok := m.Labels[keepLabel]; ok && keepLabel != "" {
		out.Labels = map[string]string{keepLabel: v}
	}
	for k, v := range m.Annotations {
		if strings.HasPrefix(k, record.AnnotationPrefix) {
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

func containers(in []corev1.Container) []corev1.Container {
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

// Strip is the cache's default transform: StripPod for pods, StripMetadata for owner metadata.
func Strip(obj any) (any, error) {
	switch obj.(type) {
	case *corev1.Pod:
		return StripPod(obj)
	case *metav1.PartialObjectMetadata:
		return StripMetadata(obj)
	}
	return obj, nil
}
