package controller

import (
	"context"
	"fmt"
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/deployment-tracker/deployment-tracker/internal/owner"
	"github.com/deployment-tracker/deployment-tracker/internal/podwatch"
	"github.com/deployment-tracker/deployment-tracker/internal/rollout"
)

// IndexController is the cache index of ReplicaSets (metadata) and ControllerRevisions by their controller:
// "<group>/<kind>/<name>".
const IndexController = "deployment-tracker.io/controller"

// controllerKey is the IndexController value of an owner.
func controllerKey(group, kind, name string) string { return group + "/" + kind + "/" + name }

// indexController returns obj's controller as IndexController values.
func indexController(obj client.Object) []string {
	ref := metav1.GetControllerOfNoCopy(obj)
	if ref == nil {
		return nil
	}
	gv, err := schema.ParseGroupVersion(ref.APIVersion)
	if err != nil {
		return nil
	}
	return []string{controllerKey(gv.Group, ref.Kind, ref.Name)}
}

// replicaSetList is the metadata list of ReplicaSets the owner informer caches.
func replicaSetList() *metav1.PartialObjectMetadataList {
	l := &metav1.PartialObjectMetadataList{}
	l.SetGroupVersionKind(appsv1.SchemeGroupVersion.WithKind("ReplicaSetList"))
	return l
}

// Current returns w's current revision as the cache shows it: the ReplicaSet with the highest revision
// annotation of a Deployment or an Argo Rollout, the ControllerRevision named by a StatefulSet's
// status.updateRevision, the ControllerRevision with the highest revision of a DaemonSet. It implements the
// tracker's Revisions.
func (c *Controller) Current(ctx context.Context, w owner.Workload) (rollout.Revision, bool, error) {
	if w.Group == rollout.KindArgoRollout.Group && w.Kind == rollout.KindArgoRollout.Kind {
		// The Rollout itself is not watched: its ReplicaSets are matched by its name only.
		return c.highestReplicaSet(ctx, w, "", podwatch.AnnotationRolloutRevision, podwatch.LabelRolloutsPodTemplateHash)
	}
	obj, err := c.read(ctx, w)
	if err != nil {
		return rollout.Revision{}, false, err
	}
	return c.revisionOf(ctx, w, obj)
}

// revisionOf returns the current revision of w, whose object obj the caller read from the cache (nil when the
// cache does not hold it, yet or any more: the revisions of a Deployment or a DaemonSet are then matched by
// name only, those of a StatefulSet are not known).
func (c *Controller) revisionOf(ctx context.Context, w owner.Workload, obj client.Object) (rollout.Revision, bool, error) {
	var uid types.UID
	if obj != nil {
		uid = obj.GetUID()
	}
	switch {
	case w.Group == rollout.KindDeployment.Group && w.Kind == rollout.KindDeployment.Kind:
		return c.highestReplicaSet(ctx, w, uid, podwatch.AnnotationDeploymentRevision, podwatch.LabelPodTemplateHash)
	case w.Group == rollout.KindStatefulSet.Group && w.Kind == rollout.KindStatefulSet.Kind:
		sts, ok := obj.(*appsv1.StatefulSet)
		if !ok {
			return rollout.Revision{}, false, nil
		}
		return c.statefulSetRevision(ctx, w, sts)
	case w.Group == rollout.KindDaemonSet.Group && w.Kind == rollout.KindDaemonSet.Kind:
		return c.daemonSetRevision(ctx, w, uid)
	}
	return rollout.Revision{}, false, nil
}

// highestReplicaSet returns the revision of w's ReplicaSet with the highest revision annotation. When uid is
// set, ReplicaSets of an earlier object of the same name (not collected yet) do not count.
func (c *Controller) highestReplicaSet(ctx context.Context, w owner.Workload, uid types.UID, annotation, label string) (rollout.Revision, bool, error) {
	l := replicaSetList()
	if err := c.cfg.Reader.List(ctx, l, client.InNamespace(w.Namespace),
		client.MatchingFields{IndexController: controllerKey(w.Group, w.Kind, w.Name)}); err != nil {
		return rollout.Revision{}, false, fmt.Errorf("listing the ReplicaSets of %s: %w", w, err)
	}
	var best rollout.Revision
	found := false
	for i := range l.Items {
		rs := &l.Items[i]
		if ref := metav1.GetControllerOfNoCopy(rs); uid != "" && (ref == nil || ref.UID != uid) {
			continue
		}
		n, err := strconv.ParseInt(rs.Annotations[annotation], 10, 64)
		if err != nil || n <= 0 || rs.Labels[label] == "" {
			continue // not numbered (yet): the controller annotates it right after creating it
		}
		if !found || n > best.Number {
			best = rollout.Revision{Number: n, Key: rs.Labels[label], Created: rs.CreationTimestamp.Time}
			found = true
		}
	}
	return best, found, nil
}

func (c *Controller) statefulSetRevision(ctx context.Context, w owner.Workload, sts *appsv1.StatefulSet) (rollout.Revision, bool, error) {
	name := sts.Status.UpdateRevision
	if name == "" {
		return rollout.Revision{}, false, nil
	}
	cr := &appsv1.ControllerRevision{}
	if err := c.cfg.Reader.Get(ctx, types.NamespacedName{Namespace: w.Namespace, Name: name}, cr); err != nil {
		if apierrors.IsNotFound(err) {
			return rollout.Revision{}, false, nil
		}
		return rollout.Revision{}, false, fmt.Errorf("reading the revision %s of %s: %w", name, w, err)
	}
	return rollout.Revision{Number: cr.Revision, Key: name, Created: cr.CreationTimestamp.Time}, true, nil
}

func (c *Controller) daemonSetRevision(ctx context.Context, w owner.Workload, uid types.UID) (rollout.Revision, bool, error) {
	var l appsv1.ControllerRevisionList
	if err := c.cfg.Reader.List(ctx, &l, client.InNamespace(w.Namespace),
		client.MatchingFields{IndexController: controllerKey(w.Group, w.Kind, w.Name)}); err != nil {
		return rollout.Revision{}, false, fmt.Errorf("listing the revisions of %s: %w", w, err)
	}
	var best rollout.Revision
	found := false
	for i := range l.Items {
		cr := &l.Items[i]
		if ref := metav1.GetControllerOfNoCopy(cr); uid != "" && (ref == nil || ref.UID != uid) {
			continue // a revision of an earlier DaemonSet of the same name
		}
		key := cr.Labels[podwatch.LabelControllerRevisionHash]
		if key == "" {
			continue
		}
		if !found || cr.Revision > best.Number {
			best = rollout.Revision{Number: cr.Revision, Key: key, Created: cr.CreationTimestamp.Time}
			found = true
		}
	}
	return best, found, nil
}
