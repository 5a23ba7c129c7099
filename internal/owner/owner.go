// Package owner resolves the workload a pod belongs to (the deploymentName of a record) from metadata only, by
// following controller owner references through any kind: Pod → ReplicaSet → Deployment, Pod → Job → CronJob,
// StatefulSet, DaemonSet, Pod → ReplicaSet → argoproj.io Rollout, Pod → a custom controller's object, or the pod
// itself. Owners are read as metav1.PartialObjectMetadata: kinds the tracker watches from the cache, other kinds
// with a GET through the metadata API (cached briefly), so that no workload spec is ever read for naming.
package owner

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// ErrNotResolved is returned when an owner the pod names is not (yet) in the cache and cannot be inferred;
// the caller retries.
var ErrNotResolved = errors.New("owner not resolved")

// ErrExistenceUnknown is returned by Exists when the workload's kind cannot be read (access refused, or the
// kind is not served): the caller must not take the workload to be gone at once.
var ErrExistenceUnknown = errors.New("existence of the workload cannot be read")

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

// WorkloadKinds are the kinds whose metadata the tracker watches, besides a bare Pod.
var WorkloadKinds = []schema.GroupVersionKind{ReplicaSet, Deployment, StatefulSet, DaemonSet, Job, CronJob}

// topKinds end the climb: a Deployment, StatefulSet, DaemonSet or CronJob is what people name their
// applications by, even when an operator's object controls it (one operator object often controls several of
// them, whose records would otherwise share names).
var topKinds = []schema.GroupVersionKind{Deployment, StatefulSet, DaemonSet, CronJob}

// maxDepth bounds the climb (owner cycles cannot exist in a valid cluster, but metadata is input).
const maxDepth = 8

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

// Known reports whether the tracker watches the workload's kind (and sees its deletion as it happens).
func (w Workload) Known() bool {
	_, ok := gvkOf(w.Group, w.Kind)
	return ok || (w.Group == "" && w.Kind == "Pod")
}

// Resolution is a pod's workload and the annotations along the owner chain, nearest first (excluding the pod).
type Resolution struct {
	Workload    Workload
	Annotations []map[string]string
	// Found reports that the workload object itself was read (Annotations are complete); false when it was
	// inferred, is already gone, or cannot be read.
	Found bool
	// Denied is set when an owner on the chain could not be read (access refused or kind not served): the
	// workload is that owner, named by its child's reference, and the climb stopped there.
	Denied bool
	// Direct is the pod's own controller ("" Kind for a bare pod): its ReplicaSet, for one.
	Direct Workload
	// Labels are the workload's labels as the reader keeps them (a bare pod's own), when Found: what a
	// workload selector matches.
	Labels map[string]string
}

// Resolver resolves owners through a metadata reader (the manager's cache) and, for kinds the cache does not
// watch, an uncached reader (the manager's API reader).
type Resolver struct {
	Reader client.Reader
	// APIReader reads the metadata of kinds the tracker does not watch; nil: such owners are not read (the
	// climb stops at them, and their existence is unknown).
	APIReader client.Reader
	// Mapper finds the version of a kind when no reference named one (a workload resumed from the ledger);
	// optional.
	Mapper meta.RESTMapper
	// TTL is how long a read of an unwatched kind is reused when resolving pods (default 30s); Exists never
	// reuses one.
	TTL time.Duration
	// Denied is called once per kind the first time an owner of that kind cannot be read; optional.
	Denied func(gk schema.GroupKind, err error)
	// Now is the clock (default time.Now).
	Now func() time.Time

	mu       sync.Mutex
	reads    map[Workload]cachedRead
	versions map[schema.GroupKind]string
	denied   map[schema.GroupKind]bool
}

type cachedRead struct {
	m   *metav1.PartialObjectMetadata // nil: not found
	err error                         // a refusal, cached like an answer
	at  time.Time
}

// Resolve returns the workload that owns pod: the first Deployment, StatefulSet, DaemonSet or CronJob on the
// chain of controller references, else the top controller, else the pod itself.
func (r *Resolver) Resolve(ctx context.Context, pod *corev1.Pod) (Resolution, error) {
	ref := metav1.GetControllerOfNoCopy(pod)
	if ref == nil {
		return Resolution{Workload: Workload{Kind: "Pod", Namespace: pod.Namespace, Name: pod.Name}, Found: true, Labels: pod.Labels}, nil
	}
	var res Resolution
	for depth := 0; ; depth++ {
		gv, err := schema.ParseGroupVersion(ref.APIVersion)
		if err != nil {
			return Resolution{}, fmt.Errorf("owner reference %s/%s in namespace %s: %w", ref.Kind, ref.Name, pod.Namespace, err)
		}
		gvk := gv.WithKind(ref.Kind)
		cur := Workload{Group: gv.Group, Kind: ref.Kind, Namespace: pod.Namespace, Name: ref.Name}
		if depth == 0 {
			res.Direct = cur
		}
		res.Workload = cur
		r.learnVersion(gvk)
		m, err := r.read(ctx, gvk, cur, true)
		switch {
		case apierrors.IsNotFound(err):
			if depth > 0 || isTop(cur) {
				return res, nil // the child names it, it is gone: the workload, not found
			}
			if cur.Group == ReplicaSet.Group && cur.Kind == ReplicaSet.Kind {
				if w, ok := deploymentByHash(pod, ref.Name); ok {
					res.Workload = w
					return res, nil
				}
			}
			if _, watched := gvkOf(cur.Group, cur.Kind); !watched && r.APIReader != nil {
				return res, nil // read from the API server: it is really gone
			}
			return Resolution{}, fmt.Errorf("%s: %w", cur, ErrNotResolved)
		case errors.Is(err, errUnreadable):
			res.Denied = true
			return res, nil
		case err != nil:
			return Resolution{}, err
		}
		res.Annotations = append(res.Annotations, m.Annotations)
		res.Found, res.Labels = true, m.Labels
		if isTop(cur) || depth >= maxDepth {
			return res, nil
		}
		next := metav1.GetControllerOfNoCopy(m)
		if next == nil {
			return res, nil
		}
		ref = next
		res.Found, res.Labels = false, nil
	}
}

// Exists reports whether w still exists and is not being deleted. A bare pod's existence is the pod's own and
// not decided here (false). For kinds the tracker does not watch it asks the API server; when that cannot be
// read it returns ErrExistenceUnknown.
func (r *Resolver) Exists(ctx context.Context, w Workload) (bool, error) {
	if w.Group == "" && w.Kind == "Pod" {
		return false, nil
	}
	gvk, ok := gvkOf(w.Group, w.Kind)
	if !ok {
		v, found := r.version(w)
		if !found {
			return false, fmt.Errorf("%s: no served version of the kind: %w", w, ErrExistenceUnknown)
		}
		gvk = schema.GroupVersionKind{Group: w.Group, Version: v, Kind: w.Kind}
	}
	m, err := r.read(ctx, gvk, w, false)
	switch {
	case apierrors.IsNotFound(err):
		return false, nil
	case errors.Is(err, errUnreadable):
		return false, fmt.Errorf("%s: %w: %w", w, ErrExistenceUnknown, err)
	case err != nil:
		return false, err
	}
	return m.DeletionTimestamp == nil, nil
}

// errUnreadable marks an owner that cannot be read at all: access refused, or the kind is not served.
var errUnreadable = errors.New("owner cannot be read")

// read returns the metadata of w: from the cache for watched kinds, else from the API server (reusing a recent
// answer when cached is set).
func (r *Resolver) read(ctx context.Context, gvk schema.GroupVersionKind, w Workload, cached bool) (*metav1.PartialObjectMetadata, error) {
	if _, watched := gvkOf(gvk.Group, gvk.Kind); watched {
		return get(ctx, r.Reader, gvk, w)
	}
	if r.APIReader == nil {
		return nil, fmt.Errorf("%s: kind not watched: %w", w, errUnreadable)
	}
	now := r.now()
	if cached {
		r.mu.Lock()
		c, ok := r.reads[w]
		r.mu.Unlock()
		if ok && now.Sub(c.at) < r.ttl() {
			if c.err != nil {
				return nil, c.err
			}
			if c.m == nil {
				return nil, apierrors.NewNotFound(schema.GroupResource{Group: gvk.Group, Resource: gvk.Kind}, w.Name)
			}
			return c.m, nil
		}
	}
	m, err := get(ctx, r.APIReader, gvk, w)
	if apierrors.IsForbidden(err) || apierrors.IsMethodNotSupported(err) || meta.IsNoMatchError(err) {
		r.deny(gvk.GroupKind(), err)
		err = fmt.Errorf("%s: %w: %w", w, errUnreadable, err)
	}
	if err != nil && !apierrors.IsNotFound(err) && !errors.Is(err, errUnreadable) {
		return nil, err // transient: not cached
	}
	r.mu.Lock()
	if r.reads == nil {
		r.reads = map[Workload]cachedRead{}
	}
	for k, c := range r.reads { // bounded by the owners seen within one TTL
		if now.Sub(c.at) >= r.ttl() {
			delete(r.reads, k)
		}
	}
	c := cachedRead{at: now}
	if errors.Is(err, errUnreadable) {
		c.err = err
	} else if err == nil {
		c.m = m
	}
	r.reads[w] = c
	r.mu.Unlock()
	return m, err
}

func (r *Resolver) deny(gk schema.GroupKind, err error) {
	r.mu.Lock()
	if r.denied == nil {
		r.denied = map[schema.GroupKind]bool{}
	}
	first := !r.denied[gk]
	r.denied[gk] = true
	r.mu.Unlock()
	if first && r.Denied != nil {
		r.Denied(gk, err)
	}
}

func (r *Resolver) learnVersion(gvk schema.GroupVersionKind) {
	if _, watched := gvkOf(gvk.Group, gvk.Kind); watched || gvk.Version == "" {
		return
	}
	r.mu.Lock()
	if r.versions == nil {
		r.versions = map[schema.GroupKind]string{}
	}
	r.versions[gvk.GroupKind()] = gvk.Version
	r.mu.Unlock()
}

// version is the version to read an unwatched kind with: the one its pods' references named, else the
// API server's preferred one.
func (r *Resolver) version(w Workload) (string, bool) {
	gk := schema.GroupKind{Group: w.Group, Kind: w.Kind}
	r.mu.Lock()
	v, ok := r.versions[gk]
	r.mu.Unlock()
	if ok {
		return v, true
	}
	if r.Mapper == nil {
		return "", false
	}
	m, err := r.Mapper.RESTMapping(gk)
	if err != nil {
		return "", false
	}
	return m.GroupVersionKind.Version, true
}

func (r *Resolver) ttl() time.Duration {
	if r.TTL > 0 {
		return r.TTL
	}
	return 30 * time.Second
}

func (r *Resolver) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

func get(ctx context.Context, rd client.Reader, gvk schema.GroupVersionKind, w Workload) (*metav1.PartialObjectMetadata, error) {
	m := &metav1.PartialObjectMetadata{}
	m.SetGroupVersionKind(gvk)
	if err := rd.Get(ctx, types.NamespacedName{Namespace: w.Namespace, Name: w.Name}, m); err != nil {
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

func isTop(w Workload) bool {
	for _, k := range topKinds {
		if k.Group == w.Group && k.Kind == w.Kind {
			return true
		}
	}
	return false
}

func gvkOf(group, kind string) (schema.GroupVersionKind, bool) {
	for _, k := range WorkloadKinds {
		if k.Group == group && k.Kind == kind {
			return k, true
		}
	}
	return schema.GroupVersionKind{}, false
}
