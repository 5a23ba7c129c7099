package rollout

import (
	"github.com/deployment-tracker/deployment-tracker/internal/owner"
	"github.com/deployment-tracker/deployment-tracker/internal/podwatch"
)

// Workload kinds whose revisions the tracker follows.
var (
	KindDeployment   = owner.Workload{Group: owner.Deployment.Group, Kind: owner.Deployment.Kind}
	KindStatefulSet  = owner.Workload{Group: owner.StatefulSet.Group, Kind: owner.StatefulSet.Kind}
	KindDaemonSet    = owner.Workload{Group: owner.DaemonSet.Group, Kind: owner.DaemonSet.Kind}
	KindArgoRollout  = owner.Workload{Group: "argoproj.io", Kind: "Rollout"}
	rolloutKinds     = []owner.Workload{KindDeployment, KindStatefulSet, KindDaemonSet}
	podRevisionLabel = map[owner.Workload]string{
		KindDeployment:  podwatch.LabelPodTemplateHash,
		KindStatefulSet: podwatch.LabelControllerRevisionHash,
		KindDaemonSet:   podwatch.LabelControllerRevisionHash,
		KindArgoRollout: podwatch.LabelRolloutsPodTemplateHash,
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
