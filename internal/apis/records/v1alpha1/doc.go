// Package v1alpha1 is the API of the tracker's durable ledger: one DeploymentRecord per record key, in the
// tracker's own namespace, holding the record as it must be at the sinks (spec) and what each sink accepted
// (status). `kubectl get deploymentrecords -n deployment-tracker` answers "what is recorded where, and is it
// synced?".
//
// +kubebuilder:object:generate=true
// +groupName=records.deployment-tracker.io
package v1alpha1

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

var (
	// GroupVersion is the group and version of the ledger's objects.
	GroupVersion = schema.GroupVersion{Group: "records.deployment-tracker.io", Version: "v1alpha1"}
	// SchemeBuilder registers the types.
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion}
	// AddToScheme adds the types to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)
