// Package v1alpha1 is the API of the tracker's durable ledger, in the tracker's own namespace, so that the
// tracker writes there only and a restart or a leader change resumes where the last leader stopped:
//
//   - DeploymentRecord: one per record key, holding the record as it must be at the sinks (spec) and what
//     each sink accepted (status). `kubectl get deploymentrecords -n deployment-tracker` answers "what is
//     recorded where, and is it synced?".
//   - RolloutRecord: one per revision of a Deployment, StatefulSet or DaemonSet, holding the rollout as the
//     tracker decided it (phase, images and digests, timeline) and what each rollout sink acknowledged, with
//     the state it keeps (status). `kubectl get rolloutrecords -n deployment-tracker` answers "what rolled
//     out where, and how did it end?". Old rollouts are pruned (-rollout-history, -rollout-max-age);
//     DeploymentRecords are not.
//
// Both kinds are in the category deployment-tracker. deploy/05-crd.yaml is generated from these types
// (make manifests).
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
