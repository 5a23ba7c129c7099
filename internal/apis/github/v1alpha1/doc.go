// Package v1alpha1 is the API of GitHubDeployment, in the group github.deployment-tracker.io: the GitHub
// Deployments (a deployment per rollout, and its deployment statuses) of one workload, configured by an object
// beside the workload instead of annotations on it. It is for workloads one cannot annotate: rendered by an
// operator, a vendor's chart or another team's pipeline, whose annotations would be overwritten.
//
// A GitHubDeployment lives in the namespace of its workload and reports only workloads of that namespace
// (spec.sourceRef.namespace is empty or the object's own): the tracker reads workloads cluster-wide, so a
// reference into another namespace would let anyone who may create a GitHubDeployment in namespace A publish
// the deployments of namespace B, under a repository and environment of A's choosing. The API server refuses
// such an object (the ValidatingAdmissionPolicy in deploy/), and the tracker refuses it again, with the reason
// Rejected, where that policy is not installed.
//
// Its spec has the shape of the spec of an existing Java tool's resource (sourceRef, extract, repository), so
// that objects migrate by changing their apiVersion; environmentURL, productionEnvironment,
// transientEnvironment, description and payloadAnnotationPrefix are the tracker's own. The kind is in the
// category deployment-tracker; deploy/06-crd-github.yaml is generated from these types (make manifests).
//
// GitHub's REST API: https://docs.github.com/en/rest/deployments/deployments and
// https://docs.github.com/en/rest/deployments/statuses.
//
// +kubebuilder:object:generate=true
// +groupName=github.deployment-tracker.io
package v1alpha1

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

var (
	// GroupVersion is the group and version of GitHubDeployment.
	GroupVersion = schema.GroupVersion{Group: "github.deployment-tracker.io", Version: "v1alpha1"}
	// SchemeBuilder registers the types.
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion}
	// AddToScheme adds the types to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)
