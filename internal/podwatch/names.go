package podwatch

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Names returns the namespace and name of every pod that the cache r holds, of namespace (of every namespace
// when empty), read from the keys of its pod informer's store: the pods are neither unpacked nor copied. A
// List of the same pods makes a corev1.Pod of each at once (Pod.Unpack, about 3.5 KiB each: 170 MiB for
// 50,000 pods), which is what a resume or a scope change needs the names for. A reader that is not an informer
// cache with a single pod informer (a namespaced cache, a fake) is listed.
func Names(ctx context.Context, r client.Reader, namespace string) ([]types.NamespacedName, error) {
	if keys, ok, err := informerKeys(ctx, r, namespace); ok || err != nil {
		if err != nil {
			return nil, err
		}
		out := make([]types.NamespacedName, 0, len(keys))
		for _, k := range keys {
			ns, name, err := toolscache.SplitMetaNamespaceKey(k)
			if err != nil {
				return nil, fmt.Errorf("pod cache key %q: %w", k, err)
			}
			out = append(out, types.NamespacedName{Namespace: ns, Name: name})
		}
		return out, nil
	}
	var pods corev1.PodList
	var opts []client.ListOption
	if namespace != "" {
		opts = append(opts, client.InNamespace(namespace))
	}
	if err := r.List(ctx, &pods, opts...); err != nil {
		return nil, fmt.Errorf("listing pods: %w", err)
	}
	out := make([]types.NamespacedName, 0, len(pods.Items))
	for i := range pods.Items {
		out = append(out, types.NamespacedName{Namespace: pods.Items[i].Namespace, Name: pods.Items[i].Name})
	}
	return out, nil
}

// informerKeys returns the keys of the pod informer of r (ok false when r has none that tells them).
func informerKeys(ctx context.Context, r client.Reader, namespace string) (keys []string, ok bool, err error) {
	informers, isCache := r.(cache.Informers)
	if !isCache {
		return nil, false, nil
	}
	inf, err := informers.GetInformer(ctx, &corev1.Pod{})
	if err != nil {
		return nil, false, fmt.Errorf("the pod informer: %w", err)
	}
	indexed, isIndexed := inf.(interface{ GetIndexer() toolscache.Indexer })
	if !isIndexed {
		return nil, false, nil
	}
	idx := indexed.GetIndexer()
	if namespace == "" {
		return idx.ListKeys(), true, nil
	}
	if keys, err := idx.IndexKeys(toolscache.NamespaceIndex, namespace); err == nil {
		return keys, true, nil
	}
	return nil, false, nil // no namespace index: listed
}
