package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Record statuses, as GitHub names them.
const (
	StatusDeployed       = "deployed"
	StatusDecommissioned = "decommissioned"
)

// Sources of the observation that first decided a record.
const (
	SourceWebhook  = "webhook"
	SourceInformer = "informer"
	SourceLedger   = "ledger"
)

// ConditionSynced is True when every sink has accepted the spec.
const ConditionSynced = "Synced"

// Workload identifies the object whose lifetime the record follows.
type Workload struct {
	// Group is the API group of the workload's kind: "apps" for a Deployment, "argoproj.io" for an Argo
	// Rollout; empty for the core group (a bare Pod).
	// +optional
	Group string `json:"group,omitempty"`
	// Kind is the workload's kind: the first Deployment, StatefulSet, DaemonSet or CronJob on the pod's chain
	// of controller references, else the top controller of any kind (a Job, a ReplicaSet without Deployment,
	// an operator's object), else Pod. When an owner on the chain cannot be read (access refused, kind not
	// served), the chain ends at that owner, as its child's reference names it.
	Kind string `json:"kind"`
	// Namespace is the namespace of the workload and its pods.
	Namespace string `json:"namespace"`
	// Name is the workload's name, the {{deploymentName}} of the deployment name template.
	Name string `json:"name"`
}

// DeploymentRecordSpec is the record as it must be at the sinks, and where it comes from. Field names follow
// the GitHub deployment record API.
type DeploymentRecordSpec struct {
	// Name is the artifact name: the image repository as written in the pod spec.
	Name string `json:"name"`
	// Digest is the artifact digest.
	// +kubebuilder:validation:Pattern=`^sha256:[a-f0-9]{64}$`
	Digest string `json:"digest"`
	// Version is the image tag.
	// +optional
	Version string `json:"version,omitempty"`
	// Status is deployed or decommissioned.
	// +kubebuilder:validation:Enum=deployed;decommissioned
	Status string `json:"status"`
	// LogicalEnvironment is the logical environment the tracker reports (LOGICAL_ENVIRONMENT, for example
	// production); part of the record key.
	LogicalEnvironment string `json:"logicalEnvironment"`
	// PhysicalEnvironment is the physical environment the tracker reports (PHYSICAL_ENVIRONMENT, for example
	// a region or data centre), empty when not set; part of the record key.
	PhysicalEnvironment string `json:"physicalEnvironment,omitempty"`
	// Cluster is the name of the cluster the tracker runs in (CLUSTER); part of the record key.
	Cluster string `json:"cluster"`
	// DeploymentName identifies the deployment within the cluster, rendered from DN_TEMPLATE for the
	// workload and container; part of the record key.
	DeploymentName string `json:"deploymentName"`
	// Tags are free-form key/value pairs from the metadata.github.com/<key> annotations of the pod and its
	// owners (the nearest wins), at most 5.
	// +optional
	Tags map[string]string `json:"tags,omitempty"`
	// RuntimeRisks come from the metadata.github.com/runtime-risks annotation: critical-resource,
	// internet-exposed, lateral-movement or sensitive-data.
	// +optional
	RuntimeRisks []string `json:"runtimeRisks,omitempty"`
	// GitHubRepository is the repository, in the organization the record is posted to, that an image without
	// a provenance attestation is linked to: a repository name without its owner, from the
	// metadata.github.com/repository annotation.
	// +optional
	GitHubRepository string `json:"githubRepository,omitempty"`

	// Workload is the workload the record describes, whose pods run the container.
	Workload Workload `json:"workload"`
	// Container is the name of the container, in the workload's pod template, that runs the artifact.
	Container string `json:"container"`
	// PodStarted is when the pod that decided the digest started; an older pod never overwrites a newer one.
	// +optional
	PodStarted *metav1.Time `json:"podStarted,omitempty"`
	// Revision is the number of the workload's revision that decided the digest (Deployment, StatefulSet,
	// DaemonSet, Argo Rollout); a lower revision never overwrites a higher one. A rollback brings an old
	// template back under a new, higher number.
	// +optional
	Revision int64 `json:"revision,omitempty"`
	// FirstSeen is when this digest was first seen running under this key.
	FirstSeen metav1.Time `json:"firstSeen"`
	// Source is what saw the pod first: the admission webhook or the informer.
	// +kubebuilder:validation:Enum=webhook;informer;ledger
	Source string `json:"source"`
}

// SinkStatus is what one sink accepted, and how delivery is going.
type SinkStatus struct {
	// Sink names the sink ("github").
	Sink string `json:"sink"`
	// Name is the artifact name the sink last accepted (empty in objects written before it was kept: the spec's).
	// +optional
	Name string `json:"name,omitempty"`
	// Digest is the artifact digest the sink last accepted.
	// +optional
	Digest string `json:"digest,omitempty"`
	// Version is the artifact version the sink last accepted (empty in objects written before it was kept, or
	// for an artifact without a version).
	// +optional
	Version string `json:"version,omitempty"`
	// Status is the record status (deployed or decommissioned) the sink last accepted.
	// +optional
	Status string `json:"status,omitempty"`
	// ObservedGeneration is the spec generation the sink last accepted.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Attempts counts failed posts of the current generation.
	// +optional
	Attempts int32 `json:"attempts,omitempty"`
	// LastError is the last failure, if the current generation is not accepted yet.
	// +optional
	LastError string `json:"lastError,omitempty"`
	// NextRetry is when the next post is due after a failure.
	// +optional
	NextRetry *metav1.Time `json:"nextRetry,omitempty"`
	// LastSynced is when the sink last accepted the record.
	// +optional
	LastSynced *metav1.Time `json:"lastSynced,omitempty"`
	// NotAttested is set while the sink answers that it has no attestation for the artifact last posted under
	// this key (GitHub's 404 "no artifacts found"): the record is not dropped, it is posted again at NextRetry
	// (-unknown-artifact-ttl after the answer), across restarts too.
	// +optional
	NotAttested *NotAttested `json:"notAttested,omitempty"`
}

// NotAttested is an artifact a sink has no attestation for.
type NotAttested struct {
	// Name is the artifact name.
	Name string `json:"name"`
	// Digest is the artifact digest.
	Digest string `json:"digest"`
	// Since is when the sink first answered so for this artifact under this key.
	Since metav1.Time `json:"since"`
}

// DeploymentRecordStatus holds the delivery state per sink.
type DeploymentRecordStatus struct {
	// ObservedGeneration is the spec generation the conditions describe.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Conditions: Synced is True when every sink has accepted the current generation of the spec.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// Sinks holds what each sink accepted, and how delivery to it is going.
	// +optional
	// +listType=map
	// +listMapKey=sink
	Sinks []SinkStatus `json:"sinks,omitempty"`
}

// DeploymentRecord is one record key (logical environment, physical environment, cluster, deployment name) of
// the ledger.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=dr;drec,categories=deployment-tracker
// +kubebuilder:printcolumn:name="Deployment",type=string,JSONPath=`.spec.deploymentName`
// +kubebuilder:printcolumn:name="Status",type=string,JSONPath=`.spec.status`
// +kubebuilder:printcolumn:name="Version",type=string,JSONPath=`.spec.version`
// +kubebuilder:printcolumn:name="Digest",type=string,JSONPath=`.spec.digest`,priority=1
// +kubebuilder:printcolumn:name="Synced",type=string,JSONPath=`.status.conditions[?(@.type=="Synced")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Synced")].reason`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type DeploymentRecord struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   DeploymentRecordSpec   `json:"spec"`
	Status DeploymentRecordStatus `json:"status,omitempty"`
}

// DeploymentRecordList is a list of DeploymentRecords.
//
// +kubebuilder:object:root=true
type DeploymentRecordList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []DeploymentRecord `json:"items"`
}

func init() {
	SchemeBuilder.Register(&DeploymentRecord{}, &DeploymentRecordList{})
}
