package controller

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlcontroller "sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/deployment-tracker/deployment-tracker/internal/owner"
)

// ControllerName names the rollout controller (logs, metrics of controller-runtime).
const ControllerName = "deployment-tracker-rollouts"

type queue = workqueue.TypedRateLimitingInterface[owner.Workload]

// SetupWithManager registers the indexes and the controller: workload changes, their ReplicaSets' and
// ControllerRevisions' changes and the tracker's pod reports feed one queue of workloads, reconciled one at a
// time.
func (c *Controller) SetupWithManager(ctx context.Context, mgr manager.Manager, skipNameValidation bool) error {
	rs := &metav1.PartialObjectMetadata{}
	rs.SetGroupVersionKind(owner.ReplicaSet)
	if err := mgr.GetFieldIndexer().IndexField(ctx, rs, IndexController, indexController); err != nil {
		return fmt.Errorf("indexing ReplicaSets by controller: %w", err)
	}
	if err := mgr.GetFieldIndexer().IndexField(ctx, &appsv1.ControllerRevision{}, IndexController, indexController); err != nil {
		return fmt.Errorf("indexing ControllerRevisions by controller: %w", err)
	}
	ca := mgr.GetCache()
	b := builder.TypedControllerManagedBy[owner.Workload](mgr).
		Named(ControllerName).
		WithOptions(ctrlcontroller.TypedOptions[owner.Workload]{MaxConcurrentReconciles: 1, SkipNameValidation: &skipNameValidation}).
		WatchesRawSource(source.TypedKind(ca, &appsv1.Deployment{}, self[*appsv1.Deployment](c, owner.Deployment))).
		WatchesRawSource(source.TypedKind(ca, &appsv1.StatefulSet{}, self[*appsv1.StatefulSet](c, owner.StatefulSet))).
		WatchesRawSource(source.TypedKind(ca, &appsv1.DaemonSet{}, self[*appsv1.DaemonSet](c, owner.DaemonSet))).
		WatchesRawSource(source.TypedKind(ca, rs, controlled[*metav1.PartialObjectMetadata](c))).
		WatchesRawSource(source.TypedKind(ca, &appsv1.ControllerRevision{}, controlled[*appsv1.ControllerRevision](c))).
		WatchesRawSource(source.TypedChannel(c.changed, handler.TypedFuncs[owner.Workload, owner.Workload]{
			GenericFunc: func(_ context.Context, e event.TypedGenericEvent[owner.Workload], q queue) { q.Add(e.Object) },
		}))
	return b.Complete(c)
}

// self enqueues the workload an event is about.
func self[T client.Object](c *Controller, gvk schema.GroupVersionKind) handler.TypedEventHandler[T, owner.Workload] {
	add := func(q queue, o T) {
		if !c.excluded[o.GetNamespace()] {
			q.Add(owner.Workload{Group: gvk.Group, Kind: gvk.Kind, Namespace: o.GetNamespace(), Name: o.GetName()})
		}
	}
	return handler.TypedFuncs[T, owner.Workload]{
		CreateFunc: func(_ context.Context, e event.TypedCreateEvent[T], q queue) { add(q, e.Object) },
		UpdateFunc: func(_ context.Context, e event.TypedUpdateEvent[T], q queue) { add(q, e.ObjectNew) },
		DeleteFunc: func(_ context.Context, e event.TypedDeleteEvent[T], q queue) { add(q, e.Object) },
	}
}

// controlled enqueues the workload that controls the object an event is about (a ReplicaSet's Deployment, a
// ControllerRevision's StatefulSet or DaemonSet).
func controlled[T client.Object](c *Controller) handler.TypedEventHandler[T, owner.Workload] {
	add := func(q queue, o T) {
		ref := metav1.GetControllerOfNoCopy(o)
		if ref == nil || c.excluded[o.GetNamespace()] {
			return
		}
		gv, err := schema.ParseGroupVersion(ref.APIVersion)
		if err != nil || gv.Group != "apps" {
			return
		}
		q.Add(owner.Workload{Group: gv.Group, Kind: ref.Kind, Namespace: o.GetNamespace(), Name: ref.Name})
	}
	return handler.TypedFuncs[T, owner.Workload]{
		CreateFunc: func(_ context.Context, e event.TypedCreateEvent[T], q queue) { add(q, e.Object) },
		UpdateFunc: func(_ context.Context, e event.TypedUpdateEvent[T], q queue) { add(q, e.ObjectNew) },
		DeleteFunc: func(_ context.Context, e event.TypedDeleteEvent[T], q queue) { add(q, e.Object) },
	}
}
