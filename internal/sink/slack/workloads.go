package slack

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/deployment-tracker/deployment-tracker/internal/owner"
	"github.com/deployment-tracker/deployment-tracker/internal/rollout"
)

// CacheWorkloads reads workload metadata from the manager's cache, where rollout.Transform keeps the
// slack.deployment-tracker.io/ annotations (and the team label, when one is configured) of Deployments,
// StatefulSets and DaemonSets (the kinds that have rollouts).
type CacheWorkloads struct {
	Reader client.Reader
}

var _ WorkloadReader = CacheWorkloads{}

// Metadata returns the annotations and labels of w; found is false when it does not exist or is of a kind
// without rollouts.
func (c CacheWorkloads) Metadata(ctx context.Context, w owner.Workload) (Metadata, bool, error) {
	obj := rollout.Object(w)
	if obj == nil {
		return Metadata{}, false, nil
	}
	if err := c.Reader.Get(ctx, client.ObjectKey{Namespace: w.Namespace, Name: w.Name}, obj); err != nil {
		if apierrors.IsNotFound(err) {
			return Metadata{}, false, nil
		}
		return Metadata{}, false, fmt.Errorf("get %s: %w", w, err)
	}
	return Metadata{Annotations: obj.GetAnnotations(), Labels: obj.GetLabels()}, true, nil
}

// DefaultNamespaceTTL is how long APINamespaces keeps what it read of a namespace.
const DefaultNamespaceTTL = 30 * time.Second

// maxNamespaces bounds APINamespaces' memory: past it, expired entries are dropped.
const maxNamespaces = 4096

// APINamespaces reads the metadata of namespaces with a single metadata-only GET (PartialObjectMetadata) and
// keeps the slack.deployment-tracker.io/ annotations and the team label of each for TTL.
//
// Why not a Namespace informer in the manager's cache: the sink reads a namespace a few times per rollout, and
// rollouts are rare, while an informer would list and watch every Namespace of the cluster for the tracker's
// whole life and need list and watch on namespaces besides get. A GET per namespace per TTL costs less and
// needs get alone (least privilege); the price is that a changed namespace annotation is seen up to TTL late,
// which only matters for the first message of a rollout (later updates go to the message where it is).
type APINamespaces struct {
	// Reader does the GETs: an uncached reader (the manager's GetAPIReader), so that no informer is started.
	Reader client.Reader
	// TeamLabel is the label kept besides the annotations ("" for none).
	TeamLabel string
	// TTL is how long a namespace's metadata is kept (default DefaultNamespaceTTL).
	TTL time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time

	forbidden sync.Once
	mu        sync.Mutex
	entries   map[string]nsEntry
}

type nsEntry struct {
	md      Metadata
	found   bool
	expires time.Time
}

var _ NamespaceReader = (*APINamespaces)(nil)

// Namespace returns the metadata of namespace name; found is false when it does not exist.
func (n *APINamespaces) Namespace(ctx context.Context, name string) (Metadata, bool, error) {
	now := time.Now
	if n.Now != nil {
		now = n.Now
	}
	ttl := n.TTL
	if ttl <= 0 {
		ttl = DefaultNamespaceTTL
	}
	t := now()
	n.mu.Lock()
	e, ok := n.entries[name]
	n.mu.Unlock()
	if ok && t.Before(e.expires) {
		return e.md, e.found, nil
	}
	ns := &metav1.PartialObjectMetadata{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"}}
	e = nsEntry{found: true, expires: t.Add(ttl)}
	switch err := n.Reader.Get(ctx, client.ObjectKey{Name: name}, ns); {
	case apierrors.IsNotFound(err):
		e.found = false
	case apierrors.IsForbidden(err):
		// RBAC without get on namespaces (an older ClusterRole): the namespace's annotations are not read,
		// rather than every Slack message waiting for a grant; said once.
		e.found = false
		n.forbidden.Do(func() {
			log.FromContext(ctx).Error(err, "Cannot read namespaces: their slack.deployment-tracker.io/ annotations and team label are ignored (grant get on namespaces)")
		})
	case err != nil:
		return Metadata{}, false, fmt.Errorf("get namespace %s: %w", name, err)
	default:
		e.md = trimMetadata(ns.Annotations, ns.Labels, n.TeamLabel)
	}
	n.mu.Lock()
	if n.entries == nil {
		n.entries = map[string]nsEntry{}
	}
	if len(n.entries) >= maxNamespaces {
		for k, old := range n.entries {
			if !t.Before(old.expires) {
				delete(n.entries, k)
			}
		}
	}
	if len(n.entries) < maxNamespaces {
		n.entries[name] = e
	}
	n.mu.Unlock()
	return e.md, e.found, nil
}

// trimMetadata keeps the slack.deployment-tracker.io/ annotations and the team label.
func trimMetadata(annotations, labels map[string]string, teamLabel string) Metadata {
	var md Metadata
	for k, v := range annotations {
		if strings.HasPrefix(k, AnnotationPrefix) {
			if md.Annotations == nil {
				md.Annotations = map[string]string{}
			}
			md.Annotations[k] = v
		}
	}
	if v, ok := labels[teamLabel]; ok && teamLabel != "" {
		md.Labels = map[string]string{teamLabel: v}
	}
	return md
}
