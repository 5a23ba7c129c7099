package rollout

import (
	appsv1 "k8s.io/api/apps/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/deployment-tracker/deployment-tracker/internal/owner"
)

// Object is a new, empty object of w's kind, to read w into, when the kind is one the manager's cache holds
// trimmed by Transform (Deployment, StatefulSet, DaemonSet); nil for any other kind.
func Object(w owner.Workload) client.Object {
	switch (owner.Workload{Group: w.Group, Kind: w.Kind}) {
	case KindDeployment:
		return &appsv1.Deployment{}
	case KindStatefulSet:
		return &appsv1.StatefulSet{}
	case KindDaemonSet:
		return &appsv1.DaemonSet{}
	}
	return nil
}

// TemplateAnnotations are the annotations of obj's pod template, for an object of a kind Object returns; nil
// for others.
func TemplateAnnotations(obj client.Object) map[string]string {
	switch o := obj.(type) {
	case *appsv1.Deployment:
		return o.Spec.Template.Annotations
	case *appsv1.StatefulSet:
		return o.Spec.Template.Annotations
	case *appsv1.DaemonSet:
		return o.Spec.Template.Annotations
	}
	return nil
}
