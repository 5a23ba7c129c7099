package rollout

import (
	"github.com/deployment-tracker/deployment-tracker/internal/owner"
)

// Labels and annotations that tell revisions apart.
const (
	// LabelPodTemplateHash is set by the Deployment controller on a ReplicaSet and its pods.
	// https://kubernetes.io/docs/concepts/workloads/controllers/deployment/#pod-template-hash-label
	LabelPodTemplateHash = "pod-template-hash"
	// LabelControllerRevisionHash is set by the StatefulSet controller (the ControllerRevision's name) and the
	// DaemonSet controller (the hash) on their pods.
	// https://kubernetes.io/docs/reference/labels-annotations-taints/#controller-revision-hash
	LabelControllerRevisionHash = "controller-revision-hash"
	// LabelRolloutsPodTemplateHash is set by Argo Rollouts on a Rollout's ReplicaSets and their pods.
	// https://argo-rollouts.readthedocs.io/en/stable/features/specification/
	LabelRolloutsPodTemplateHash = "rollouts-pod-template-hash"
	// AnnotationDeploymentRevision numbers a Deployment's ReplicaSets; a rollback gives the restored one the
	// next number. https://kubernetes.io/docs/reference/labels-annotations-taints/#deployment-kubernetes-io-revision
	AnnotationDeploymentRevision = "deployment.kubernetes.io/revision"
	// AnnotationRolloutRevision numbers an Argo Rollout's ReplicaSets, as the Deployment annotation does.
	AnnotationRolloutRevision = "rollout.argoproj.io/revision"
)

// Workload kinds whose revisions the tracker follows.
var (
	KindDeployment   = owner.Workload{Group: "apps", Kind: "Deployment"}
	KindStatefulSet  = owner.Workload{Group: "apps", Kind: "StatefulSet"}
	KindDaemonSet    = owner.Workload{Group: "apps", Kind: "DaemonSet"}
	KindArgoRollout  = owner.Workload{Group: "argoproj.io", Kind: "Rollout"}
	revisionedKinds  = []owner.Workload{KindDeployment, KindStatefulSet, KindDaemonSet, KindArgoRollout}
	rolloutKinds     = []owner.Workload{KindDeployment, KindStatefulSet, KindDaemonSet}
	podRevisionLabel = map[owner.Workload]string{
		KindDeployment:  LabelPodTemplateHash,
		KindStatefulSet: LabelControllerRevisionHash,
		KindDaemonSet:   LabelControllerRevisionHash,
		KindArgoRollout: LabelRolloutsPodTemplateHash,
	}
)

func workloadKind(w owner.Workload) owner.Workload {
	return owner.Workload{Group: w.Group, Kind: w.Kind}
}

// Revisioned reports whether the tracker follows the revisions of w's kind: the digest of a container is then
// the one its current revision runs, not the newest pod's.
func Revisioned(w owner.Workload) bool {
	_, ok := podRevisionLabel[workloadKind(w)]
	return ok
}

// Tracked reports whether the tracker models the rollouts of w's kind (readiness by kstatus).
func Tracked(w owner.Workload) bool {
	for _, k := range rolloutKinds {
		if k == workloadKind(w) {
			return true
		}
	}
	return false
}

// PodRevisionKey returns the revision key a pod of w carries (its Revision.Key), "" when w's kind has no
// revisions or the pod has no such label.
func PodRevisionKey(w owner.Workload, labels map[string]string) string {
	l, ok := podRevisionLabel[workloadKind(w)]
	if !ok {
		return ""
	}
	return labels[l]
}
