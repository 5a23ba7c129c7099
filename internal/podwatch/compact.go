package podwatch

import (
	"encoding/binary"
	"slices"
	"strings"
	"time"
	"unique"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/deployment-tracker/deployment-tracker/internal/record"
)

// Pod is the form in which the cache keeps a pod: what StripPod keeps of it but the images of container
// statuses, in about 150 bytes where a stripped corev1.Pod takes kilobytes. The values that pods share — the
// namespace, the phase, the controller owner reference, the revision labels, the metadata.github.com/
// annotations, the containers' names and images and their statuses' imageIDs — are interned (package unique),
// so that the pods of a ReplicaSet hold them once; the interned values are freed with the last pod that holds
// them.
//
// Readers do not see it: the pod informer of a cache built with NewInformer answers reads with the
// *corev1.Pod it stands for (Unpack), so that Get and List of pods work as with any cache. Event handlers of
// the pod informer receive it, as a client.Object: it implements metav1.Object for the metadata it keeps, and
// its setters keep of their argument what the transform would.
type Pod struct {
	name            string
	uid             types.UID
	resourceVersion string
	namespace       unique.Handle[string]
	phase           unique.Handle[corev1.PodPhase]
	owner           unique.Handle[ownerRef]
	labels          unique.Handle[string] // packed key, value pairs; the zero Handle: none
	annotations     unique.Handle[string] // packed key, value pairs; the zero Handle: none
	containers      unique.Handle[string] // packed: init containers, containers (name, image)
	statuses        unique.Handle[string] // packed: init container statuses, container statuses (name, imageID)
	created         int64                 // Unix nanoseconds (years 1678-2262), when hasCreated
	started         int64                 // Unix nanoseconds, when hasStarted
	deleted         int64                 // Unix nanoseconds, when hasDeleted
	flags           uint8
}

const (
	hasCreated uint8 = 1 << iota
	hasStarted
	hasDeleted
	hasOwner
)

// ownerRef is the controller owner reference that the tracker resolves a pod's workload from.
type ownerRef struct {
	apiVersion, kind, name string
	uid                    types.UID
}

var _ client.Object = (*Pod)(nil)

// CompactPod is the cache transform that turns pods into Pods (and leaves Pods and other objects unchanged). A
// cache using it must be built with NewInformer, so that its pods are read as pods.
func CompactPod(obj any) (any, error) {
	pod, ok := obj.(*corev1.Pod)
	if !ok || pod == nil {
		return obj, nil
	}
	return Compact(pod), nil
}

// Compact returns the Pod form of pod.
func Compact(pod *corev1.Pod) *Pod {
	p := &Pod{
		name:            pod.Name,
		uid:             pod.UID,
		resourceVersion: pod.ResourceVersion,
		namespace:       unique.Make(pod.Namespace),
		phase:           unique.Make(pod.Status.Phase),
	}
	p.setCreationTimestamp(pod.CreationTimestamp)
	p.SetDeletionTimestamp(pod.DeletionTimestamp)
	if t := pod.Status.StartTime; t != nil {
		p.started, p.flags = t.UnixNano(), p.flags|hasStarted
	}
	p.SetLabels(pod.Labels)
	p.SetAnnotations(pod.Annotations)
	p.setOwner(metav1.GetControllerOfNoCopy(pod))
	p.containers = packContainers(pod.Spec.InitContainers, pod.Spec.Containers)
	p.statuses = packStatuses(pod.Status.InitContainerStatuses, pod.Status.ContainerStatuses)
	return p
}

// Unpack returns the pod that p stands for: what StripPod returns of the pod p was made from, but the images
// of its container statuses (and its TypeMeta, which the cache sets). The pod is p's caller's to change.
func (p *Pod) Unpack() *corev1.Pod {
	out := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name:              p.name,
			Namespace:         p.GetNamespace(),
			UID:               p.uid,
			ResourceVersion:   p.resourceVersion,
			CreationTimestamp: p.GetCreationTimestamp(),
			DeletionTimestamp: p.GetDeletionTimestamp(),
			Labels:            p.GetLabels(),
			Annotations:       p.GetAnnotations(),
			OwnerReferences:   p.GetOwnerReferences(),
		},
		Status: corev1.PodStatus{Phase: value(p.phase)},
	}
	if p.flags&hasStarted != 0 {
		out.Status.StartTime = ptr.To(unixNano(p.started))
	}
	out.Spec.InitContainers, out.Spec.Containers = unpackContainers(value(p.containers))
	out.Status.InitContainerStatuses, out.Status.ContainerStatuses = unpackStatuses(value(p.statuses))
	return out
}

// GetObjectKind implements runtime.Object: a Pod carries no TypeMeta.
func (p *Pod) GetObjectKind() schema.ObjectKind { return schema.EmptyObjectKind }

// DeepCopyObject implements runtime.Object. A Pod's fields are values and immutable interned handles: a copy
// of the struct is a deep copy.
func (p *Pod) DeepCopyObject() runtime.Object {
	if p == nil {
		return nil
	}
	c := *p
	return &c
}

// GetNamespace implements metav1.Object.
func (p *Pod) GetNamespace() string { return value(p.namespace) }

// SetNamespace implements metav1.Object.
func (p *Pod) SetNamespace(namespace string) { p.namespace = unique.Make(namespace) }

// GetName implements metav1.Object.
func (p *Pod) GetName() string { return p.name }

// SetName implements metav1.Object.
func (p *Pod) SetName(name string) { p.name = name }

// GetGenerateName implements metav1.Object: not kept.
func (p *Pod) GetGenerateName() string { return "" }

// SetGenerateName implements metav1.Object: not kept.
func (p *Pod) SetGenerateName(string) {}

// GetUID implements metav1.Object.
func (p *Pod) GetUID() types.UID { return p.uid }

// SetUID implements metav1.Object.
func (p *Pod) SetUID(uid types.UID) { p.uid = uid }

// GetResourceVersion implements metav1.Object.
func (p *Pod) GetResourceVersion() string { return p.resourceVersion }

// SetResourceVersion implements metav1.Object.
func (p *Pod) SetResourceVersion(version string) { p.resourceVersion = version }

// GetGeneration implements metav1.Object: not kept.
func (p *Pod) GetGeneration() int64 { return 0 }

// SetGeneration implements metav1.Object: not kept.
func (p *Pod) SetGeneration(int64) {}

// GetSelfLink implements metav1.Object: not kept.
func (p *Pod) GetSelfLink() string { return "" }

// SetSelfLink implements metav1.Object: not kept.
func (p *Pod) SetSelfLink(string) {}

// GetCreationTimestamp implements metav1.Object.
func (p *Pod) GetCreationTimestamp() metav1.Time {
	if p.flags&hasCreated == 0 {
		return metav1.Time{}
	}
	return unixNano(p.created)
}

// SetCreationTimestamp implements metav1.Object.
func (p *Pod) SetCreationTimestamp(timestamp metav1.Time) { p.setCreationTimestamp(timestamp) }

func (p *Pod) setCreationTimestamp(t metav1.Time) {
	p.created, p.flags = 0, p.flags&^hasCreated
	if !t.IsZero() {
		p.created, p.flags = t.UnixNano(), p.flags|hasCreated
	}
}

// GetDeletionTimestamp implements metav1.Object.
func (p *Pod) GetDeletionTimestamp() *metav1.Time {
	if p.flags&hasDeleted == 0 {
		return nil
	}
	return ptr.To(unixNano(p.deleted))
}

// SetDeletionTimestamp implements metav1.Object.
func (p *Pod) SetDeletionTimestamp(timestamp *metav1.Time) {
	p.deleted, p.flags = 0, p.flags&^hasDeleted
	if timestamp != nil {
		p.deleted, p.flags = timestamp.UnixNano(), p.flags|hasDeleted
	}
}

// GetDeletionGracePeriodSeconds implements metav1.Object: not kept.
func (p *Pod) GetDeletionGracePeriodSeconds() *int64 { return nil }

// SetDeletionGracePeriodSeconds implements metav1.Object: not kept.
func (p *Pod) SetDeletionGracePeriodSeconds(*int64) {}

// GetLabels implements metav1.Object: the revision labels, nil when the pod has none.
func (p *Pod) GetLabels() map[string]string { return unpackMap(value(p.labels)) }

// SetLabels implements metav1.Object: only the revision labels are kept.
func (p *Pod) SetLabels(labels map[string]string) { p.labels = packLabels(labels, revisionLabels) }

// packLabels packs the labels named in keys, in the order of keys: the packed form of equal labels is equal.
func packLabels(labels map[string]string, keys []string) unique.Handle[string] {
	var b []byte
	for _, k := range keys {
		if v, ok := labels[k]; ok {
			b = appendString(appendString(b, k), v)
		}
	}
	return intern(b)
}

// GetAnnotations implements metav1.Object: the metadata.github.com/ annotations and AnnotationIgnore, nil when
// the pod has none.
func (p *Pod) GetAnnotations() map[string]string { return unpackMap(value(p.annotations)) }

// SetAnnotations implements metav1.Object: only the metadata.github.com/ annotations and AnnotationIgnore are
// kept.
func (p *Pod) SetAnnotations(annotations map[string]string) {
	var keys []string
	for k := range annotations {
		if strings.HasPrefix(k, record.AnnotationPrefix) || k == AnnotationIgnore {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	var b []byte
	for _, k := range keys {
		b = appendString(appendString(b, k), annotations[k])
	}
	p.annotations = intern(b)
}

// GetFinalizers implements metav1.Object: not kept.
func (p *Pod) GetFinalizers() []string { return nil }

// SetFinalizers implements metav1.Object: not kept.
func (p *Pod) SetFinalizers([]string) {}

// GetOwnerReferences implements metav1.Object: the controller owner reference, if any.
func (p *Pod) GetOwnerReferences() []metav1.OwnerReference {
	if p.flags&hasOwner == 0 {
		return nil
	}
	o := p.owner.Value()
	return []metav1.OwnerReference{{APIVersion: o.apiVersion, Kind: o.kind, Name: o.name, UID: o.uid, Controller: ptr.To(true)}}
}

// SetOwnerReferences implements metav1.Object: only the controller owner reference is kept.
func (p *Pod) SetOwnerReferences(references []metav1.OwnerReference) {
	var ref *metav1.OwnerReference
	for i := range references {
		if c := references[i].Controller; c != nil && *c {
			ref = &references[i]
			break
		}
	}
	p.setOwner(ref)
}

func (p *Pod) setOwner(ref *metav1.OwnerReference) {
	p.owner, p.flags = unique.Handle[ownerRef]{}, p.flags&^hasOwner
	if ref != nil {
		p.owner = unique.Make(ownerRef{apiVersion: ref.APIVersion, kind: ref.Kind, name: ref.Name, uid: ref.UID})
		p.flags |= hasOwner
	}
}

// GetManagedFields implements metav1.Object: not kept.
func (p *Pod) GetManagedFields() []metav1.ManagedFieldsEntry { return nil }

// SetManagedFields implements metav1.Object: not kept.
func (p *Pod) SetManagedFields([]metav1.ManagedFieldsEntry) {}

// value is h's value, the zero value for the zero Handle.
func value[T comparable](h unique.Handle[T]) T {
	var zero T
	if h == (unique.Handle[T]{}) {
		return zero
	}
	return h.Value()
}

// intern is the Handle of packed b, the zero Handle when b is empty.
func intern(b []byte) unique.Handle[string] {
	if len(b) == 0 {
		return unique.Handle[string]{}
	}
	return unique.Make(string(b))
}

// unixNano is t, a time in Unix nanoseconds, as the API machinery decodes times: in the local time zone.
func unixNano(t int64) metav1.Time { return metav1.NewTime(time.Unix(0, t)) }

// The packed form of strings: each prefixed by its length (uvarint); of containers, the number of init
// containers and of containers, then each one's two strings.

func appendString(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

func packContainers(init, containers []corev1.Container) unique.Handle[string] {
	if len(init) == 0 && len(containers) == 0 {
		return unique.Handle[string]{}
	}
	b := binary.AppendUvarint(binary.AppendUvarint(nil, uint64(len(init))), uint64(len(containers)))
	for _, cs := range [][]corev1.Container{init, containers} {
		for i := range cs {
			b = appendString(appendString(b, cs[i].Name), cs[i].Image)
		}
	}
	return intern(b)
}

func packStatuses(init, statuses []corev1.ContainerStatus) unique.Handle[string] {
	if len(init) == 0 && len(statuses) == 0 {
		return unique.Handle[string]{}
	}
	b := binary.AppendUvarint(binary.AppendUvarint(nil, uint64(len(init))), uint64(len(statuses)))
	for _, ss := range [][]corev1.ContainerStatus{init, statuses} {
		for i := range ss {
			b = appendString(appendString(b, ss[i].Name), ss[i].ImageID)
		}
	}
	return intern(b)
}

// unpacker reads a packed list. Packed values are made by this file only: a malformed one would be a bug, and
// reads past its end yield empty strings rather than a panic.
type unpacker struct{ s string }

func (u *unpacker) uvarint() uint64 {
	var x uint64
	for shift := 0; u.s != "" && shift < 64; shift += 7 {
		c := u.s[0]
		u.s = u.s[1:]
		x |= uint64(c&0x7f) << shift
		if c < 0x80 {
			break
		}
	}
	return x
}

// count reads the length of a list: at most what the rest could hold (two bytes an entry).
func (u *unpacker) count() int { return int(min(u.uvarint(), uint64(len(u.s)))) }

func (u *unpacker) string() string {
	n := min(u.uvarint(), uint64(len(u.s)))
	s := u.s[:n]
	u.s = u.s[n:]
	return s
}

func unpackMap(packed string) map[string]string {
	if packed == "" {
		return nil
	}
	out := map[string]string{}
	for u := (unpacker{packed}); u.s != ""; {
		k := u.string()
		out[k] = u.string()
	}
	return out
}

func unpackContainers(packed string) (init, containers []corev1.Container) {
	if packed == "" {
		return nil, nil
	}
	u := unpacker{packed}
	nInit, n := u.count(), u.count()
	all := make([]corev1.Container, nInit+n)
	for i := range all {
		all[i].Name, all[i].Image = u.string(), u.string()
	}
	return nilIfEmpty(all[:nInit:nInit]), nilIfEmpty(all[nInit:])
}

func unpackStatuses(packed string) (init, statuses []corev1.ContainerStatus) {
	if packed == "" {
		return nil, nil
	}
	u := unpacker{packed}
	nInit, n := u.count(), u.count()
	all := make([]corev1.ContainerStatus, nInit+n)
	for i := range all {
		all[i].Name, all[i].ImageID = u.string(), u.string()
	}
	return nilIfEmpty(all[:nInit:nInit]), nilIfEmpty(all[nInit:])
}

func nilIfEmpty[T any](s []T) []T {
	if len(s) == 0 {
		return nil
	}
	return s
}
