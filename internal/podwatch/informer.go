package podwatch

import (
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	toolscache "k8s.io/client-go/tools/cache"
)

// NewInformer is the informer constructor (controller-runtime's cache.Options.NewInformer) of a cache whose
// transform makes pods compact (Strip, CompactPod). The store of its pod informers answers with the
// *corev1.Pod each compact Pod stands for (Pod.Unpack), so that the cache's Get and List of pods work as in any
// cache, and index functions added later (the cache's IndexField) see pods too; its event handlers receive the
// compact Pods. Informers of other types are client-go's, as without it.
func NewInformer(lw toolscache.ListerWatcher, obj runtime.Object, resync time.Duration, indexers toolscache.Indexers) toolscache.SharedIndexInformer {
	inf := toolscache.NewSharedIndexInformer(lw, obj, resync, indexers)
	if _, ok := obj.(*corev1.Pod); !ok {
		return inf
	}
	return &podInformer{SharedIndexInformer: inf}
}

// podInformer is a pod informer whose store is read as pods.
type podInformer struct {
	toolscache.SharedIndexInformer
}

func (i *podInformer) GetStore() toolscache.Store {
	return podStore{i.SharedIndexInformer.GetIndexer()}
}

func (i *podInformer) GetIndexer() toolscache.Indexer {
	return podStore{i.SharedIndexInformer.GetIndexer()}
}

// AddIndexers adds indexers whose functions see the pods that compact Pods stand for.
func (i *podInformer) AddIndexers(indexers toolscache.Indexers) error {
	wrapped := make(toolscache.Indexers, len(indexers))
	for name, f := range indexers {
		wrapped[name] = func(obj any) ([]string, error) { return f(unpack(obj)) }
	}
	return i.SharedIndexInformer.AddIndexers(wrapped)
}

// podStore is an informer's store whose reads return the pods that compact Pods stand for, each a new one. The
// informer writes to the store itself, not through podStore.
type podStore struct {
	toolscache.Indexer
}

func (s podStore) Get(obj any) (any, bool, error) {
	item, ok, err := s.Indexer.Get(obj)
	return unpack(item), ok, err
}

func (s podStore) GetByKey(key string) (any, bool, error) {
	item, ok, err := s.Indexer.GetByKey(key)
	return unpack(item), ok, err
}

func (s podStore) List() []any { return unpackAll(s.Indexer.List()) }

func (s podStore) ByIndex(indexName, indexedValue string) ([]any, error) {
	items, err := s.Indexer.ByIndex(indexName, indexedValue)
	return unpackAll(items), err
}

func (s podStore) Index(indexName string, obj any) ([]any, error) {
	items, err := s.Indexer.Index(indexName, obj)
	return unpackAll(items), err
}

// unpack is the pod obj stands for when it is a compact Pod, else obj.
func unpack(obj any) any {
	if p, ok := obj.(*Pod); ok && p != nil {
		return p.Unpack()
	}
	return obj
}

func unpackAll(items []any) []any {
	for i := range items {
		items[i] = unpack(items[i]) // the store's List and ByIndex return a new slice
	}
	return items
}
