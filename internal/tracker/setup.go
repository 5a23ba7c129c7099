package tracker

import (
	"context"
	"maps"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/deployment-tracker/deployment-tracker/internal/observation"
	"github.com/deployment-tracker/deployment-tracker/internal/owner"
	"github.com/deployment-tracker/deployment-tracker/internal/record"
)

// ControllerName names the tracker's controller (logs, metrics of controller-runtime).
const ControllerName = "deployment-tracker"

type queue = workqueue.TypedRateLimitingInterface[Request]

// SetupWithManager registers the tracker's controller: pod events, deletions of owner workloads (metadata
// only) and the webhook's observations all feed one queue, reconciled one at a time. skipNameValidation lets
// tests run several managers in one process.
func (t *Tracker) SetupWithManager(mgr manager.Manager, skipNameValidation bool) error {
	c := mgr.GetCache()
	b := builder.TypedControllerManagedBy[Request](mgr).
		Named(ControllerName).
		WithOptions(controller.TypedOptions[Request]{MaxConcurrentReconciles: 1, SkipNameValidation: &skipNameValidation}).
		// The pod informer's events carry pods as the cache keeps them (podwatch.Pod, or *corev1.Pod without
		// podwatch's transform): only their metadata is read here, the pod itself through the Reader.
		WatchesRawSource(source.TypedKind[client.Object](c, &corev1.Pod{}, handler.TypedFuncs[client.Object, Request]{
			CreateFunc: func(_ context.Context, e event.TypedCreateEvent[client.Object], q queue) { t.enqueuePod(q, e.Object) },
			UpdateFunc: func(_ context.Context, e event.TypedUpdateEvent[client.Object], q queue) {
				if e.ObjectOld.GetResourceVersion() != e.ObjectNew.GetResourceVersion() {
					t.enqueuePod(q, e.ObjectNew)
				}
			},
			DeleteFunc: func(_ context.Context, e event.TypedDeleteEvent[client.Object], q queue) { t.enqueuePod(q, e.Object) },
		})).
		WatchesRawSource(source.TypedChannel(t.admitted, handler.TypedFuncs[observation.Admission, Request]{
			GenericFunc: func(_ context.Context, e event.TypedGenericEvent[observation.Admission], q queue) {
				t.admit(e.Object)
				q.Add(Request{Pod: types.NamespacedName{Namespace: e.Object.Namespace, Name: e.Object.Name}})
			},
		})).
		WatchesRawSource(source.TypedChannel(t.retry, handler.TypedFuncs[owner.Workload, Request]{
			GenericFunc: func(_ context.Context, e event.TypedGenericEvent[owner.Workload], q queue) {
				q.AddRateLimited(Request{Workload: e.Object})
			},
		}))
	for _, gvk := range owner.WorkloadKinds {
		obj := &metav1.PartialObjectMetadata{}
		obj.SetGroupVersionKind(gvk)
		enqueue := func(q queue, m *metav1.PartialObjectMetadata) {
			if t.InScope(m.Namespace) {
				q.Add(Request{Workload: owner.Workload{Group: gvk.Group, Kind: gvk.Kind, Namespace: m.Namespace, Name: m.Name}})
			}
		}
		b = b.WatchesRawSource(source.TypedKind(c, obj, handler.TypedFuncs[*metav1.PartialObjectMetadata, Request]{
			UpdateFunc: func(_ context.Context, e event.TypedUpdateEvent[*metav1.PartialObjectMetadata], q queue) {
				if e.ObjectOld.DeletionTimestamp == nil && e.ObjectNew.DeletionTimestamp != nil {
					enqueue(q, e.ObjectNew)
				} else if t.InScope(e.ObjectNew.Namespace) && !maps.Equal(metadataAnnotations(e.ObjectOld), metadataAnnotations(e.ObjectNew)) {
					// The records carry the owners' metadata.github.com/ annotations: decide them again now,
					// not at the workload's next pod event.
					for _, w := range ownerWorkloads(gvk, e.ObjectNew) {
						q.Add(Request{Workload: w, Refresh: true})
					}
				}
			},
			DeleteFunc: func(_ context.Context, e event.TypedDeleteEvent[*metav1.PartialObjectMetadata], q queue) {
				enqueue(q, e.Object)
			},
		}))
	}
	return t.watchScope(b, c).Complete(t)
}

// metadataAnnotations are the annotations of m that records carry.
func metadataAnnotations(m *metav1.PartialObjectMetadata) map[string]string {
	out := map[string]string{}
	for k, v := range m.Annotations {
		if strings.HasPrefix(k, record.AnnotationPrefix) {
			out[k] = v
		}
	}
	return out
}

// ownerWorkloads returns the workloads whose records an annotation change of owner m (of kind gvk) may change: m
// itself, and its controller (the Deployment of a ReplicaSet, the CronJob of a Job).
func ownerWorkloads(gvk schema.GroupVersionKind, m *metav1.PartialObjectMetadata) []owner.Workload {
	out := []owner.Workload{{Group: gvk.Group, Kind: gvk.Kind, Namespace: m.Namespace, Name: m.Name}}
	if ref := metav1.GetControllerOfNoCopy(m); ref != nil {
		if gv, err := schema.ParseGroupVersion(ref.APIVersion); err == nil {
			out = append(out, owner.Workload{Group: gv.Group, Kind: ref.Kind, Namespace: m.Namespace, Name: ref.Name})
		}
	}
	return out
}

func (t *Tracker) enqueuePod(q queue, pod client.Object) {
	if t.InScope(pod.GetNamespace()) {
		q.Add(Request{Pod: types.NamespacedName{Namespace: pod.GetNamespace(), Name: pod.GetName()}})
	}
}
