package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ConditionDelivered is True when every sink acknowledged the current generation of a RolloutRecord's spec.
const ConditionDelivered = "Delivered"

// LabelWorkload is the label every RolloutRecord carries: a hash of its workload (group, kind, namespace,
// name), so that the rollouts of one workload can be listed with a label selector. The workload's parts can
// hold characters and lengths a label value cannot, hence the hash; spec.workload names it in full.
const LabelWorkload = "records.deployment-tracker.io/workload"

// RolloutContainer is one container of a rollout's pod template.
type RolloutContainer struct {
	// Name is the container's name in the pod template.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
	// Image is the container's image as written in the pod template.
	// +kubebuilder:validation:MaxLength=4096
	Image string `json:"image"`
	// Digest is the digest of the image the container runs (algorithm:hex, as in the pod's imageID), once a
	// pod of the revision runs it.
	// +optional
	// +kubebuilder:validation:MaxLength=255
	// +kubebuilder:validation:Pattern=`^[a-z0-9]+([+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$`
	Digest string `json:"digest,omitempty"`
	// Init is true for an init container (restartable sidecars included).
	// +optional
	Init bool `json:"init,omitempty"`
}

// RolloutRecordSpec is one revision of a workload and how its rollout went, as the tracker decided it: what
// the sinks must be told.
type RolloutRecordSpec struct {
	// Workload is the object that rolled out: a Deployment, StatefulSet or DaemonSet.
	Workload Workload `json:"workload"`
	// Revision orders the revisions of the workload: deployment.kubernetes.io/revision of a Deployment's
	// ReplicaSet, rollout.argoproj.io/revision of an Argo Rollout's, the ControllerRevision's revision of a
	// StatefulSet or DaemonSet. A rollback brings an old template back under a new, higher number.
	// +kubebuilder:validation:Minimum=0
	Revision int64 `json:"revision"`
	// RevisionKey is what the revision's pods carry: the pod-template-hash label (Deployment), the
	// rollouts-pod-template-hash label (Argo Rollouts), or the controller-revision-hash label (StatefulSet,
	// DaemonSet).
	// +optional
	// +kubebuilder:validation:MaxLength=253
	RevisionKey string `json:"revisionKey,omitempty"`
	// Containers are the containers of the revision's pod template, in template order (init containers
	// first).
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=256
	Containers []RolloutContainer `json:"containers"`
	// Phase is where the rollout stands. InProgress is the only phase a rollout starts in; Current and
	// Failed can still change (a failed rollout that recovers becomes Current); RolledBack, Superseded and
	// Deleted are final.
	// +kubebuilder:validation:Enum=InProgress;Current;Failed;RolledBack;Superseded;Deleted
	Phase string `json:"phase"`
	// Reason is a machine-readable word explaining the phase, for example ProgressDeadlineExceeded.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Reason string `json:"reason,omitempty"`
	// Message explains the phase for humans (kstatus' message of the workload).
	// +optional
	// +kubebuilder:validation:MaxLength=4096
	Message string `json:"message,omitempty"`
	// Restores is the number of the earlier revision whose template this one brings back (a rollback); unset
	// otherwise.
	// +optional
	// +kubebuilder:validation:Minimum=0
	Restores int64 `json:"restores,omitempty"`
	// Adopted is set on a rollout that was already complete when the tracker first saw its workload: it is
	// kept in the ledger but not announced (no Events, no notifications).
	// +optional
	Adopted bool `json:"adopted,omitempty"`
	// Started is when the revision appeared: its ReplicaSet or ControllerRevision was created, or it became
	// current again for a rollback.
	Started metav1.Time `json:"started"`
	// Submitted is when the revision's first pod was submitted to the API server.
	// +optional
	Submitted *metav1.Time `json:"submitted,omitempty"`
	// SubmittedBy says what saw that first pod: the tracker's admission webhook (at its CREATE), or the
	// informer (from the pod's creationTimestamp).
	// +optional
	// +kubebuilder:validation:Enum=webhook;informer
	SubmittedBy string `json:"submittedBy,omitempty"`
	// FirstRunning is when the first pod of the revision started running.
	// +optional
	FirstRunning *metav1.Time `json:"firstRunning,omitempty"`
	// Completed is when the rollout became Current.
	// +optional
	Completed *metav1.Time `json:"completed,omitempty"`
	// Finished is when the rollout failed or reached a final phase.
	// +optional
	Finished *metav1.Time `json:"finished,omitempty"`
	// Ready is the number of ready replicas of the workload at the last change.
	Ready int32 `json:"ready"`
	// Desired is the number of desired replicas of the workload at the last change.
	Desired int32 `json:"desired"`
}

// RolloutSinkStatus is what one sink acknowledged of a rollout, and how delivery to it is going.
type RolloutSinkStatus struct {
	// Sink names the sink ("slack", "githubdeploy").
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	Sink string `json:"sink"`
	// Phase is the phase of the rollout the sink acknowledged last.
	// +optional
	// +kubebuilder:validation:Enum=InProgress;Current;Failed;RolledBack;Superseded;Deleted
	Phase string `json:"phase,omitempty"`
	// ObservedGeneration is the spec generation the sink acknowledged last. A delivery of a rollout that had
	// changed meanwhile records the phase and state but not the generation: the newer spec stays pending.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Attempts counts the failed deliveries of the current generation.
	// +optional
	Attempts int32 `json:"attempts,omitempty"`
	// LastError is the last failure, if the current generation is not acknowledged yet (cut at 1024 bytes).
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	LastError string `json:"lastError,omitempty"`
	// NextRetry is when the next delivery is due after a failure.
	// +optional
	NextRetry *metav1.Time `json:"nextRetry,omitempty"`
	// LastDelivered is when the sink last acknowledged the rollout.
	// +optional
	LastDelivered *metav1.Time `json:"lastDelivered,omitempty"`
	// State is what the sink keeps about the rollout between deliveries, opaque to the tracker: for example
	// the channel and timestamp of the chat message to update. At most 16 entries; keys of at most 63
	// characters, values of at most 1024.
	// +optional
	// +kubebuilder:validation:MaxProperties=16
	// +kubebuilder:validation:XValidation:rule="self.all(k, size(k) <= 63 && size(self[k]) <= 1024)",message="state keys must be at most 63 characters and values at most 1024"
	State map[string]string `json:"state,omitempty"`
}

// RolloutRecordStatus holds the delivery state per sink.
type RolloutRecordStatus struct {
	// ObservedGeneration is the spec generation the conditions describe.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Conditions: Delivered is True when every sink acknowledged the current generation of the spec.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// Sinks holds what each sink acknowledged.
	// +optional
	// +listType=map
	// +listMapKey=sink
	// +kubebuilder:validation:MaxItems=16
	Sinks []RolloutSinkStatus `json:"sinks,omitempty"`
}

// RolloutRecord is one revision of one workload (a rollout) in the tracker's ledger, in the tracker's
// namespace: the spec is the rollout as the tracker decided it, the status what each sink acknowledged. Its
// name is a hash of the workload and the revision; the label records.deployment-tracker.io/workload selects
// the rollouts of one workload.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=rollrec,categories=deployment-tracker
// +kubebuilder:printcolumn:name="Namespace",type=string,JSONPath=`.spec.workload.namespace`
// +kubebuilder:printcolumn:name="Kind",type=string,JSONPath=`.spec.workload.kind`
// +kubebuilder:printcolumn:name="Workload",type=string,JSONPath=`.spec.workload.name`
// +kubebuilder:printcolumn:name="Revision",type=integer,JSONPath=`.spec.revision`
// +kubebuilder:printcolumn:name="Images",type=string,JSONPath=`.spec.containers[*].image`
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.spec.phase`
// +kubebuilder:printcolumn:name="Started",type=date,JSONPath=`.spec.started`
// +kubebuilder:printcolumn:name="Completed",type=date,JSONPath=`.spec.completed`
// +kubebuilder:printcolumn:name="Delivered",type=string,JSONPath=`.status.conditions[?(@.type=="Delivered")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type RolloutRecord struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is the rollout as the tracker decided it.
	Spec RolloutRecordSpec `json:"spec"`
	// Status is what each sink acknowledged.
	// +optional
	Status RolloutRecordStatus `json:"status,omitempty"`
}

// RolloutRecordList is a list of RolloutRecords.
//
// +kubebuilder:object:root=true
type RolloutRecordList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	// Items are the RolloutRecords.
	Items []RolloutRecord `json:"items"`
}

func init() {
	SchemeBuilder.Register(&RolloutRecord{}, &RolloutRecordList{})
}
