package app

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	toolscache "k8s.io/client-go/tools/cache"

	"github.com/deployment-tracker/deployment-tracker/internal/podwatch"
)

// workloadTransform is the transform of the Deployment, StatefulSet and DaemonSet caches: trim for the rollout
// controller's typed objects, and for the owner resolver's metadata of the same kinds (controller-runtime keeps
// one cache per kind, so the metadata informer takes this ByObject entry, not the default transform) what the
// default transform does to owner metadata: managed fields and what else the tracker does not read dropped,
// the labels of the workload selector kept.
func workloadTransform(trim toolscache.TransformFunc, selectorLabels []string) toolscache.TransformFunc {
	meta := podwatch.Keeping(selectorLabels...)
	return func(obj any) (any, error) {
		if _, ok := obj.(*metav1.PartialObjectMetadata); ok {
			return meta(obj)
		}
		return trim(obj)
	}
}
