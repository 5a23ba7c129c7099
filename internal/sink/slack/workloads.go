package slack

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/deployment-tracker/deployment-tracker/internal/owner"
)

// CacheWorkloads reads workload annotations from the manager's cache, where rollout.Transform keeps the
// slack.deployment-tracker.io/ ones of Deployments, StatefulSets and DaemonSets (the kinds that have rollouts).
type CacheWorkloads struct {
	Reader client.Reader
}

var _ WorkloadReader = CacheWorkloads{}

// Annotations returns the annotations of w; found is false when it does not exist or is of a kind without
// rollouts.
func (c CacheWorkloads) Annotations(ctx context.Context, w owner.Workload) (map[string]string, bool, error) {
	var obj client.Object
	switch {
	case w.Group == "apps" && w.Kind == "Deployment":
		obj = &appsv1.Deployment{}
	case w.Group == "apps" && w.Kind == "StatefulSet":
		obj = &appsv1.StatefulSet{}
	case w.Group == "apps" && w.Kind == "DaemonSet":
		obj = &appsv1.DaemonSet{}
	default:
		return nil, false, nil
	}
	if err := c.Reader.Get(ctx, client.ObjectKey{Namespace: w.Namespace, Name: w.Name}, obj); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, false, nil
		}
		return nil, false, fmt.Errorf("get %s: %w", w, err)
	}
	return obj.GetAnnotations(), true, nil
}
