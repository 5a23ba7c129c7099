package app

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	cfgpkg "github.com/deployment-tracker/deployment-tracker/internal/config"
	"github.com/deployment-tracker/deployment-tracker/internal/podwatch"
	"github.com/deployment-tracker/deployment-tracker/internal/tracker"
)

// scopeCache adds to opts what the tracker's scope reads from the cache: the labels the workload selector
// names, kept on pods and owner metadata, and with a namespace selector the metadata of Namespaces with their
// labels (cluster-scoped: not narrowed by the field selector of -exclude-namespaces, which namespaces do not
// support).
func scopeCache(c *cfgpkg.Config, opts *cache.Options) {
	// Only over the compact pod cache (podCache): the wholepods benchmark build keeps pods whole already.
	if keys := c.SelectorLabelKeys(); len(keys) > 0 && opts.NewInformer != nil {
		opts.DefaultTransform = podwatch.Keeping(keys...)
	}
	if c.NamespaceSelector != nil {
		ns := &metav1.PartialObjectMetadata{}
		ns.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Namespace"))
		if opts.ByObject == nil {
			opts.ByObject = map[client.Object]cache.ByObject{}
		}
		opts.ByObject[ns] = cache.ByObject{Transform: podwatch.StripNamespace, Field: fields.Everything()}
	}
}

// trackerScope is the tracker's scope of c.
func trackerScope(c *cfgpkg.Config) tracker.Scope {
	return tracker.Scope{Namespace: c.Namespace, NamespaceSelector: c.NamespaceSelector, WorkloadSelector: c.WorkloadSelector}
}
