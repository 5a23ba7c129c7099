package tracker

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/deployment-tracker/deployment-tracker/internal/ledger"
	"github.com/deployment-tracker/deployment-tracker/internal/owner"
	"github.com/deployment-tracker/deployment-tracker/internal/podwatch"
)

// Scope narrows what the tracker tracks, besides Config.ExcludeNamespaces. A workload out of the scope gets no
// record; one that leaves it — its namespace excluded or no longer selected, the install made namespaced, its
// labels no longer selected, the ignore annotation added — is no longer tracked, and its records stay as they
// are: it left the scope, it did not stop. Nothing is decommissioned for it, at runtime or at resume.
type Scope struct {
	// Namespace, when set, is the only namespace tracked (-namespace, a namespaced install).
	Namespace string
	// NamespaceSelector selects the namespaces tracked by their labels; nil: all. Reading them needs the
	// Reader's cache to watch Namespace metadata with their labels (podwatch.StripNamespace): cluster-wide only.
	NamespaceSelector labels.Selector
	// WorkloadSelector selects the workloads tracked by the labels of a pod's top owner as owner.Resolver
	// resolves it (a bare pod's own labels); nil: all. The cache must keep the labels it names
	// (podwatch.Keeping). A workload whose labels cannot be read (its owner is gone, or access is refused) is
	// in the scope: a workload being deleted still has its records decommissioned.
	WorkloadSelector labels.Selector
}

// AnnotationIgnore, "true" on a pod or any owner of its chain up to its workload, takes the workload out of the
// scope.
const AnnotationIgnore = podwatch.AnnotationIgnore

var namespaceGVK = corev1.SchemeGroupVersion.WithKind("Namespace")

// scopeState is what the tracker remembers of the scope.
type scopeState struct {
	mu       sync.RWMutex
	selected map[string]bool // namespace → selected by NamespaceSelector, as last seen; absent: not known

	// At resume (under Tracker.mu): the decision per workload of the ledger, and what was left as it is.
	resumed        map[owner.Workload]bool
	skippedRecords int
}

// InScope reports whether the pods of namespace might be tracked, from what is known without reading: the
// excluded namespaces, -namespace, and the namespace selector's last answer (a namespace not seen yet is in).
// The webhook asks it before it hands an admission on (webhook.Scoper), the informers before they enqueue.
func (t *Tracker) InScope(namespace string) bool {
	if t.excluded[namespace] || (t.cfg.Scope.Namespace != "" && namespace != t.cfg.Scope.Namespace) {
		return false
	}
	if t.cfg.Scope.NamespaceSelector == nil {
		return true
	}
	t.scope.mu.RLock()
	selected, known := t.scope.selected[namespace]
	t.scope.mu.RUnlock()
	return selected || !known
}

// namespaceInScope reports whether the pods of namespace are tracked, reading its labels from the cache. A
// namespace that is gone is in the scope: its workloads are gone too, and their records are decommissioned.
func (t *Tracker) namespaceInScope(ctx context.Context, namespace string) (bool, error) {
	if t.excluded[namespace] || (t.cfg.Scope.Namespace != "" && namespace != t.cfg.Scope.Namespace) {
		return false, nil
	}
	if t.cfg.Scope.NamespaceSelector == nil {
		return true, nil
	}
	m := &metav1.PartialObjectMetadata{}
	m.SetGroupVersionKind(namespaceGVK)
	if err := t.cfg.Reader.Get(ctx, types.NamespacedName{Name: namespace}, m); err != nil {
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		return false, fmt.Errorf("reading namespace %s: %w", namespace, err)
	}
	_, selected := t.namespaceSeen(m)
	return selected, nil
}

// namespaceSeen remembers whether namespace m is selected, and reports whether that changed.
func (t *Tracker) namespaceSeen(m *metav1.PartialObjectMetadata) (changed, selected bool) {
	selected = t.cfg.Scope.NamespaceSelector.Matches(labels.Set(m.Labels))
	t.scope.mu.Lock()
	defer t.scope.mu.Unlock()
	if t.scope.selected == nil {
		t.scope.selected = map[string]bool{}
	}
	prev, known := t.scope.selected[m.Name]
	t.scope.selected[m.Name] = selected
	return known && prev != selected, selected
}

func (t *Tracker) namespaceGone(name string) {
	t.scope.mu.Lock()
	delete(t.scope.selected, name)
	t.scope.mu.Unlock()
}

// WorkloadInScope reports whether the workload obj (a Deployment, StatefulSet or DaemonSet the rollout
// controller decides) is in the scope: its namespace (excluded, -namespace, the namespace selector), the
// workload selector on its labels, and the ignore annotation on it. It reads the cache only; the labels the
// selector names and the annotation must be kept on obj (the rollout cache keeps them).
func (t *Tracker) WorkloadInScope(ctx context.Context, obj client.Object) (bool, error) {
	if in, err := t.namespaceInScope(ctx, obj.GetNamespace()); err != nil || !in {
		return in, err
	}
	return t.objectOutOfScope(obj) == "", nil
}

// objectOutOfScope returns why the workload obj, read itself, is out of the scope by its labels and
// annotations ("" when it is in).
func (t *Tracker) objectOutOfScope(obj client.Object) string {
	return t.outOfScope(owner.Resolution{Annotations: []map[string]string{obj.GetAnnotations()}, Found: true, Labels: obj.GetLabels()})
}

// ignored reports whether annotations carry AnnotationIgnore.
func ignored(annotations map[string]string) bool { return annotations[AnnotationIgnore] == "true" }

// outOfScope returns why workload res is out of the scope ("" when it is in).
func (t *Tracker) outOfScope(res owner.Resolution) string {
	if slices.ContainsFunc(res.Annotations, ignored) {
		return "ignore annotation on an owner"
	}
	if sel := t.cfg.Scope.WorkloadSelector; sel != nil && res.Found && !sel.Matches(labels.Set(res.Labels)) {
		return "workload selector"
	}
	return ""
}

// leftScope reports whether pod nn is out of the scope, and lets go of what the tracker holds of it and of its
// workload, without deciding anything: the records stay as they are. It runs at the top of reconcilePod, under
// t.mu; a pod that is gone or whose owner is not resolved yet is left to reconcilePod, which reads it again
// (from the cache: the second read costs no call).
func (t *Tracker) leftScope(ctx context.Context, nn types.NamespacedName) (bool, error) {
	in, err := t.namespaceInScope(ctx, nn.Namespace)
	if err != nil {
		return false, err
	}
	if !in {
		if w, ok := t.pods[nn]; ok {
			t.leave(w, "namespace out of the scope")
		}
		return true, nil
	}
	pod := &corev1.Pod{}
	if err := t.cfg.Reader.Get(ctx, nn, pod); err != nil {
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return false, fmt.Errorf("reading pod %s: %w", nn, err)
	}
	if ignored(pod.Annotations) {
		t.forget(pod.UID)
		t.leavePod(nn)
		return true, nil
	}
	res, err := t.resolver.Resolve(ctx, pod)
	if errors.Is(err, owner.ErrNotResolved) {
		return false, nil
	} else if err != nil {
		return false, err
	}
	if why := t.outOfScope(res); why != "" {
		t.forget(pod.UID)
		t.leavePod(nn)
		t.leave(res.Workload, why)
		return true, nil
	}
	return false, nil
}

// leavePod stops tracking pod nn, without deciding its workload again; a workload left without pods leaves
// the scope with it.
func (t *Tracker) leavePod(nn types.NamespacedName) {
	delete(t.attempts, nn)
	w, ok := t.pods[nn]
	if !ok {
		return
	}
	delete(t.pods, nn)
	ws := t.workloads[w]
	if ws == nil {
		return
	}
	if ps := ws.pods[nn]; ps != nil {
		t.forget(ps.uid)
		delete(ws.pods, nn)
	}
	if len(ws.pods) == 0 {
		t.leave(w, "ignore annotation on its pods")
	}
}

// leave stops tracking workload w: its pods, its records and the keys it holds are forgotten, nothing is
// decommissioned.
func (t *Tracker) leave(w owner.Workload, why string) {
	ws := t.workloads[w]
	if ws == nil {
		return
	}
	for _, r := range ws.desired {
		t.release(r.Key(), w)
	}
	for nn, ps := range ws.pods {
		t.forget(ps.uid)
		delete(t.pods, nn)
		delete(t.attempts, nn)
	}
	delete(t.workloads, w)
	t.cfg.Log.Info("Workload left the scope: no longer tracked, its records are kept as they are",
		"workload", w, "reason", why, "records", len(ws.desired))
}

// resumeOutOfScope reports whether the ledger entry e is of a workload out of the scope, which resume leaves
// as it is: not adopted, not decided again, not decommissioned. It reads the cache only: the namespace, and
// with a workload selector the workload's metadata for kinds the cache watches. Other workloads out of the
// scope (of another kind, or ignored by annotation) are let go when resume reconciles their pods; without pods
// they exist, and keep their records.
func (t *Tracker) resumeOutOfScope(ctx context.Context, e ledger.Entry) bool {
	w := fromLedger(e.Meta.Workload)
	out, decided := t.scope.resumed[w]
	if !decided {
		out = t.workloadOutOfScope(ctx, w)
		if t.scope.resumed == nil {
			t.scope.resumed = map[owner.Workload]bool{}
		}
		t.scope.resumed[w] = out
	}
	if out {
		t.scope.skippedRecords++
	}
	return out
}

func (t *Tracker) workloadOutOfScope(ctx context.Context, w owner.Workload) bool {
	if in, err := t.namespaceInScope(ctx, w.Namespace); err != nil || !in {
		return err == nil
	}
	if t.cfg.Scope.WorkloadSelector == nil {
		return false
	}
	var obj client.Object
	if w.Group == "" && w.Kind == "Pod" {
		obj = &corev1.Pod{}
	} else if i := slices.IndexFunc(owner.WorkloadKinds, func(k schema.GroupVersionKind) bool { return k.Group == w.Group && k.Kind == w.Kind }); i >= 0 {
		m := &metav1.PartialObjectMetadata{}
		m.SetGroupVersionKind(owner.WorkloadKinds[i])
		obj = m
	} else {
		return false
	}
	if err := t.cfg.Reader.Get(ctx, types.NamespacedName{Namespace: w.Namespace, Name: w.Name}, obj); err != nil {
		return false // gone (decommissioned as before), or decided by its pods
	}
	return t.objectOutOfScope(obj) != ""
}

// logResumeScope logs, once, what resume left as it is.
func (t *Tracker) logResumeScope(log logr.Logger) {
	if t.scope.skippedRecords > 0 {
		var workloads int
		namespaces := map[string]bool{}
		for w, out := range t.scope.resumed {
			if out {
				workloads++
				namespaces[w.Namespace] = true
			}
		}
		names := slices.Sorted(maps.Keys(namespaces))
		if len(names) > 20 {
			names = append(names[:20], "…")
		}
		log.Info("Ledger records of workloads out of the scope left as they are: not adopted, not decommissioned",
			"records", t.scope.skippedRecords, "workloads", workloads, "namespaces", names)
	}
	t.scope.resumed, t.scope.skippedRecords = nil, 0
}

// watchScope adds what re-decides pods when the scope changes: a namespace's labels (with a namespace
// selector), an owner's ignore annotation or the labels the workload selector reads. The pods of the namespace
// are enqueued: those that left are let go, those that entered get their records.
func (t *Tracker) watchScope(b *builder.TypedBuilder[Request], c cache.Cache) *builder.TypedBuilder[Request] {
	if t.cfg.Scope.NamespaceSelector != nil {
		nsm := &metav1.PartialObjectMetadata{}
		nsm.SetGroupVersionKind(namespaceGVK)
		b = b.WatchesRawSource(source.TypedKind(c, nsm, handler.TypedFuncs[*metav1.PartialObjectMetadata, Request]{
			CreateFunc: func(_ context.Context, e event.TypedCreateEvent[*metav1.PartialObjectMetadata], _ queue) {
				t.namespaceSeen(e.Object)
			},
			UpdateFunc: func(ctx context.Context, e event.TypedUpdateEvent[*metav1.PartialObjectMetadata], q queue) {
				if changed, _ := t.namespaceSeen(e.ObjectNew); changed && !t.excluded[e.ObjectNew.Name] {
					t.enqueueNamespace(ctx, c, q, e.ObjectNew.Name)
				}
			},
			DeleteFunc: func(_ context.Context, e event.TypedDeleteEvent[*metav1.PartialObjectMetadata], _ queue) {
				t.namespaceGone(e.Object.Name)
			},
		}))
	}
	for _, gvk := range owner.WorkloadKinds {
		obj := &metav1.PartialObjectMetadata{}
		obj.SetGroupVersionKind(gvk)
		b = b.WatchesRawSource(source.TypedKind(c, obj, handler.TypedFuncs[*metav1.PartialObjectMetadata, Request]{
			UpdateFunc: func(ctx context.Context, e event.TypedUpdateEvent[*metav1.PartialObjectMetadata], q queue) {
				if t.ownerInScope(e.ObjectOld) != t.ownerInScope(e.ObjectNew) && t.InScope(e.ObjectNew.Namespace) {
					t.enqueueNamespace(ctx, c, q, e.ObjectNew.Namespace)
				}
			},
		}))
	}
	return b
}

// ownerInScope reports whether owner m lets its pods' workload in the scope, as far as m tells.
func (t *Tracker) ownerInScope(m *metav1.PartialObjectMetadata) bool {
	return !ignored(m.Annotations) && (t.cfg.Scope.WorkloadSelector == nil || t.cfg.Scope.WorkloadSelector.Matches(labels.Set(m.Labels)))
}

// enqueueNamespace enqueues every pod of namespace the cache holds.
func (t *Tracker) enqueueNamespace(ctx context.Context, c client.Reader, q queue, namespace string) {
	pods, err := podwatch.Names(ctx, c, namespace)
	if err != nil {
		t.cfg.Log.Error(err, "Cannot list the pods of a namespace whose scope changed; they are decided at their next event", "namespace", namespace)
		return
	}
	for _, nn := range pods {
		q.Add(Request{Pod: nn})
	}
	t.cfg.Log.V(1).Info("Scope changed; deciding the pods of the namespace again", "namespace", namespace, "pods", len(pods))
}
