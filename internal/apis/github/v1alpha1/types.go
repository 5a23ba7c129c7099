package v1alpha1

import (
	"errors"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
)

// Condition types of a GitHubDeployment's status.
const (
	// ConditionReady is True when GitHub accepted the deployment and the deployment status of the workload's
	// current rollout.
	ConditionReady = "Ready"
	// ConditionRefResolved is True when the git ref of the workload's current rollout was extracted (spec.extract).
	ConditionRefResolved = "RefResolved"
)

// Reasons of the conditions.
const (
	// ReasonSynced: GitHub has the deployment and its latest status (Ready), or the ref was extracted
	// (RefResolved).
	ReasonSynced = "Synced"
	// ReasonRefNotFound: GitHub does not know the extracted ref in the repository (no such branch, tag or
	// commit).
	ReasonRefNotFound = "RefNotFound"
	// ReasonExtractFailed: spec.extract yields no usable ref from the workload (no such container, no JSONPath
	// value, no regexp match, not a git ref name).
	ReasonExtractFailed = "ExtractFailed"
	// ReasonRepositoryNotFound: the repository does not exist, or the tracker's credentials cannot see it.
	ReasonRepositoryNotFound = "RepositoryNotFound"
	// ReasonRejected: the object or GitHub refuses the request for good (for example a sourceRef into another
	// namespace, or a validation error of GitHub's); the tracker retries only after the spec changes.
	ReasonRejected = "Rejected"
	// ReasonCredentialsRefused: GitHub refuses the tracker's credentials (401, or 403 without a rate limit);
	// deliveries are paused, not dropped.
	ReasonCredentialsRefused = "CredentialsRefused"
	// ReasonWorkloadNotFound: the workload spec.sourceRef names does not exist, or its kind is not served.
	ReasonWorkloadNotFound = "WorkloadNotFound"
)

// ErrOtherNamespace is the error of a sourceRef into another namespace than the GitHubDeployment's own.
var ErrOtherNamespace = errors.New("sourceRef.namespace is not the GitHubDeployment's namespace")

// SourceRef names the workload whose rollouts become GitHub deployments.
type SourceRef struct {
	// APIVersion is the workload's API group and version, for example apps/v1 (Deployment, StatefulSet,
	// DaemonSet) or argoproj.io/v1alpha1 (Argo Rollout).
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=317
	// +kubebuilder:validation:Pattern=`^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	APIVersion string `json:"apiVersion"`
	// Kind is the workload's kind, for example Deployment.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[A-Za-z][A-Za-z0-9]*$`
	Kind string `json:"kind"`
	// Name is the workload's name.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
	// Namespace is the workload's namespace, which must be the GitHubDeployment's own; empty means that one.
	// It is accepted for objects that spell it out. Another namespace is refused: the tracker reads workloads
	// cluster-wide, so whoever may create a GitHubDeployment in one namespace could otherwise publish another
	// namespace's deployments.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Namespace string `json:"namespace,omitempty"`
}

// GroupVersionKind is the workload's group, version and kind. An apiVersion that does not parse (the CRD's
// pattern refuses it) yields the kind alone; GitHubDeployment.Source reports it.
func (s SourceRef) GroupVersionKind() schema.GroupVersionKind {
	return schema.FromAPIVersionAndKind(s.APIVersion, s.Kind)
}

// GroupKind is the workload's group and kind: the key of the kind whatever version apiVersion names.
func (s SourceRef) GroupKind() schema.GroupKind {
	return s.GroupVersionKind().GroupKind()
}

// Extract says where the git ref of a rollout (the deployment's ref) comes from and how it is shaped, as the
// tracker's extract rules do: the source, either a container's image tag (containerName, or the first
// container when neither source is set) or a JSONPath value of the workload; then regexp; then template.
// +kubebuilder:validation:XValidation:rule="!has(self.containerName) || !has(self.jsonPath) || size(self.containerName) == 0 || size(self.jsonPath) == 0",message="set at most one of containerName and jsonPath"
type Extract struct {
	// ContainerName names the container, in the workload's pod template, whose image tag is the ref. An image
	// without a tag yields "latest". Not with jsonPath.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	ContainerName string `json:"containerName,omitempty"`
	// JSONPath is a kubectl JSONPath template over the workload object, in braces, for example
	// {.metadata.annotations.source-ref}; it must yield exactly one value. Not with containerName. Syntax:
	// https://kubernetes.io/docs/reference/kubectl/jsonpath/.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	JSONPath string `json:"jsonPath,omitempty"`
	// Regexp selects part of the value (Go RE2 syntax): the match's group named "ref", else its only capture
	// group, else the whole match. No match is an error (RefResolved False, ExtractFailed).
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Regexp string `json:"regexp,omitempty"`
	// Template shapes the ref: "{}" is replaced by it, for example refs/tags/{}; a template without "{}" is a
	// prefix.
	// +optional
	// +kubebuilder:validation:MaxLength=255
	Template string `json:"template,omitempty"`
}

// Repository is where the deployments are created.
type Repository struct {
	// Name is the repository: a name in the tracker's organization (ORG), or OWNER/NAME.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=140
	// +kubebuilder:validation:Pattern=`^([A-Za-z0-9-]+/)?[A-Za-z0-9._-]+$`
	Name string `json:"name"`
	// Environment is the GitHub environment of the deployments, for example production; empty, the tracker's
	// LOGICAL_ENVIRONMENT.
	// +optional
	// +kubebuilder:validation:MaxLength=255
	Environment string `json:"environment,omitempty"`
}

// GitHubDeploymentSpec says which workload's rollouts become deployments of which repository and environment,
// and what the deployments and their statuses say. Field names follow the source tool's (sourceRef, extract,
// repository) and GitHub's deployment API.
type GitHubDeploymentSpec struct {
	// SourceRef is the workload whose rollouts are reported, in the GitHubDeployment's namespace.
	SourceRef SourceRef `json:"sourceRef"`
	// Extract says where the deployment's ref comes from; empty, the image tag of the workload's first
	// container.
	// +optional
	Extract Extract `json:"extract,omitempty"`
	// Repository is the GitHub repository and environment of the deployments.
	Repository Repository `json:"repository"`
	// EnvironmentURL is the URL of the deployed environment (an http or https URL), sent as each deployment
	// status's environment_url.
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:Format=uri
	// +kubebuilder:validation:Pattern=`^https?://`
	EnvironmentURL string `json:"environmentURL,omitempty"`
	// ProductionEnvironment marks the environment as production (the deployment's production_environment);
	// unset, GitHub's default: true for an environment named production.
	// +optional
	ProductionEnvironment *bool `json:"productionEnvironment,omitempty"`
	// TransientEnvironment marks the environment as transient, one that goes away (the deployment's
	// transient_environment); unset, false.
	// +optional
	TransientEnvironment *bool `json:"transientEnvironment,omitempty"`
	// Description is the deployment's description, at most 140 characters (GitHub's limit).
	// +optional
	// +kubebuilder:validation:MaxLength=140
	Description string `json:"description,omitempty"`
	// PayloadAnnotationPrefix is an annotation key prefix, for example deploy.example.com/: the workload's
	// annotations whose keys start with it become the deployment's payload, keys without the prefix (the
	// annotation deploy.example.com/team: payments becomes {"team": "payments"}). Empty, no payload.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	PayloadAnnotationPrefix string `json:"payloadAnnotationPrefix,omitempty"`
}

// GitHubDeploymentStatus is what the tracker last told GitHub about the workload's current rollout.
type GitHubDeploymentStatus struct {
	// ObservedGeneration is the spec generation the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Phase is the rollout phase last reported: InProgress, Current, Failed, RolledBack, Superseded (a newer
	// rollout replaced one that never completed; its deployment is inactive) or Deleted (the workload is gone;
	// its last deployment is inactive).
	// +optional
	// +kubebuilder:validation:Enum=InProgress;Current;Failed;RolledBack;Superseded;Deleted
	Phase string `json:"phase,omitempty"`
	// Ref is the git ref of the last deployment, as extracted.
	// +optional
	// +kubebuilder:validation:MaxLength=255
	Ref string `json:"ref,omitempty"`
	// DeploymentID is the id of the last deployment GitHub created.
	// +optional
	// +kubebuilder:validation:Minimum=0
	DeploymentID int64 `json:"deploymentID,omitempty"`
	// LastState is the state of the deployment status last sent: in_progress, success, failure or inactive.
	// +optional
	// +kubebuilder:validation:Enum=in_progress;success;failure;inactive
	LastState string `json:"lastState,omitempty"`
	// LastSent is when GitHub last accepted a deployment status.
	// +optional
	LastSent *metav1.Time `json:"lastSent,omitempty"`
	// Conditions: Ready is True when GitHub has the deployment and the latest status of the current rollout;
	// RefResolved is True when its ref was extracted. Reasons: Synced, RefNotFound, ExtractFailed,
	// RepositoryNotFound, Rejected, CredentialsRefused, WorkloadNotFound.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=8
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// GitHubDeployment reports the rollouts of one workload of its namespace as GitHub Deployments: a deployment
// per rollout, in a repository and environment, and its deployment statuses as the rollout progresses.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=ghd,categories=deployment-tracker
// +kubebuilder:printcolumn:name="Kind",type=string,JSONPath=`.spec.sourceRef.kind`
// +kubebuilder:printcolumn:name="Workload",type=string,JSONPath=`.spec.sourceRef.name`
// +kubebuilder:printcolumn:name="Repository",type=string,JSONPath=`.spec.repository.name`
// +kubebuilder:printcolumn:name="Environment",type=string,JSONPath=`.spec.repository.environment`
// +kubebuilder:printcolumn:name="Ref",type=string,JSONPath=`.status.ref`
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="State",type=string,JSONPath=`.status.lastState`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`,priority=1
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type GitHubDeployment struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is the workload, the repository and environment, and what the deployments say.
	Spec GitHubDeploymentSpec `json:"spec"`
	// Status is what the tracker last told GitHub.
	// +optional
	Status GitHubDeploymentStatus `json:"status,omitempty"`
}

// Source is the workload d reports: its group, version and kind, and its namespace (d's own) and name. It
// refuses a sourceRef into another namespace (ErrOtherNamespace; report it with ReasonRejected) and an
// apiVersion that does not parse: the API server refuses both, but objects written before its policy was
// installed, or without it, reach the tracker too.
func (d *GitHubDeployment) Source() (schema.GroupVersionKind, types.NamespacedName, error) {
	ref := d.Spec.SourceRef
	if ref.Namespace != "" && ref.Namespace != d.Namespace {
		return schema.GroupVersionKind{}, types.NamespacedName{}, fmt.Errorf("sourceRef %s %s/%s of %s/%s: %w",
			ref.Kind, ref.Namespace, ref.Name, d.Namespace, d.Name, ErrOtherNamespace)
	}
	gv, err := schema.ParseGroupVersion(ref.APIVersion)
	if err != nil || gv.Version == "" || ref.Kind == "" || ref.Name == "" {
		return schema.GroupVersionKind{}, types.NamespacedName{}, fmt.Errorf(
			"sourceRef of %s/%s: apiVersion %q, kind %q, name %q: want all three, apiVersion as GROUP/VERSION or VERSION",
			d.Namespace, d.Name, ref.APIVersion, ref.Kind, ref.Name)
	}
	return gv.WithKind(ref.Kind), types.NamespacedName{Namespace: d.Namespace, Name: ref.Name}, nil
}

// GitHubDeploymentList is a list of GitHubDeployments.
//
// +kubebuilder:object:root=true
type GitHubDeploymentList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	// Items are the GitHubDeployments.
	Items []GitHubDeployment `json:"items"`
}

func init() {
	SchemeBuilder.Register(&GitHubDeployment{}, &GitHubDeploymentList{})
}
