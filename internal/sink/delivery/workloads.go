package delivery

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/deployment-tracker/deployment-tracker/internal/owner"
	"github.com/deployment-tracker/deployment-tracker/internal/rollout"
	"github.com/deployment-tracker/deployment-tracker/internal/sink/githubdeploy"
)

// Workloads reads the annotations of Deployments, StatefulSets and DaemonSets, and of their pod templates, from
// the manager's cache, where rollout.Transform keeps the ones this package reads; those of other kinds (Argo
// Rollouts) with one uncached GET of the whole object.
type Workloads struct {
	// Cache reads the typed workloads.
	Cache client.Reader
	// Objects reads workloads of other kinds (githubdeploy.APIObjects); nil: they have no annotations.
	Objects githubdeploy.ObjectReader
}

var _ WorkloadReader = Workloads{}

// Annotations implements WorkloadReader.
func (r Workloads) Annotations(ctx context.Context, w owner.Workload) (Annotations, bool, error) {
	obj := rollout.Object(w)
	if obj == nil {
		return r.object(ctx, w)
	}
	if err := r.Cache.Get(ctx, client.ObjectKey{Namespace: w.Namespace, Name: w.Name}, obj); err != nil {
		if apierrors.IsNotFound(err) {
			return Annotations{}, false, nil
		}
		return Annotations{}, false, fmt.Errorf("get %s: %w", w, err)
	}
	return Annotations{Workload: obj.GetAnnotations(), Template: rollout.TemplateAnnotations(obj)}, true, nil
}

// object reads the annotations of a workload of another kind, and of its spec.template.
func (r Workloads) object(ctx context.Context, w owner.Workload) (Annotations, bool, error) {
	if r.Objects == nil {
		return Annotations{}, false, nil
	}
	obj, found, err := r.Objects.Object(ctx, w)
	if err != nil || !found {
		return Annotations{}, false, err
	}
	meta, _, _ := unstructured.NestedStringMap(obj, "metadata", "annotations")
	tmpl, _, _ := unstructured.NestedStringMap(obj, "spec", "template", "metadata", "annotations")
	return Annotations{Workload: meta, Template: tmpl}, true, nil
}
