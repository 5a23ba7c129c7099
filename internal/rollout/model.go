// Package rollout is the tracker's model of rollouts: for every new revision of a workload, which images it
// carries, when its first pod was submitted and ran, and how it ended (completed, failed, rolled back,
// superseded, deleted). Decide is the pure decision from what the cluster shows now and the history kept in the
// ledger; Compute reads a workload's readiness with kstatus; Transform trims the cached workload objects to what
// both need. The controller that feeds it lives in internal/rollout/controller.
package rollout

import (
	"time"

	"github.com/deployment-tracker/deployment-tracker/internal/owner"
)

// Phase is where a rollout stands.
type Phase string

// The phases of a rollout. InProgress is the only one a rollout starts in; Current and Failed can still change
// (a failed rollout that recovers becomes Current); RolledBack, Superseded and Deleted are final.
const (
	PhaseInProgress Phase = "InProgress"
	PhaseCurrent    Phase = "Current"
	PhaseFailed     Phase = "Failed"
	PhaseRolledBack Phase = "RolledBack"
	PhaseSuperseded Phase = "Superseded"
	PhaseDeleted    Phase = "Deleted"
)

// Final reports whether nothing can change p any more.
func (p Phase) Final() bool {
	return p == PhaseRolledBack || p == PhaseSuperseded || p == PhaseDeleted
}

// Revision identifies the current revision of a workload.
type Revision struct {
	// Number orders revisions: deployment.kubernetes.io/revision of a Deployment's ReplicaSet,
	// rollout.argoproj.io/revision of an Argo Rollout's, the ControllerRevision's revision of a StatefulSet or a
	// DaemonSet. A rollback makes an old template current under a new, higher number.
	Number int64
	// Key is what the revision's pods carry: the pod-template-hash label (Deployment), the
	// rollouts-pod-template-hash label (Argo Rollouts), or the controller-revision-hash label (StatefulSet,
	// DaemonSet).
	Key string
	// Created is when the revision's ReplicaSet or ControllerRevision was created.
	Created time.Time
}

// PodFacts is what the tracker saw of the pods of one revision.
type PodFacts struct {
	// Submitted is the earliest CREATE of a pod of the revision: the admission webhook's capture when it saw
	// it, else the pod's creationTimestamp. SubmittedBy says which ("webhook" or "informer").
	Submitted   time.Time
	SubmittedBy string
	// FirstRunning is when the first pod of the revision started.
	FirstRunning time.Time
	// Digests are the digests running per container name.
	Digests map[string]string
	// Pods is the number of running pods of the revision.
	Pods int
}

// Container is one container of a rollout: its image as submitted, and the digest once it runs.
type Container struct {
	Name   string
	Image  string
	Digest string
	// Init marks an init container (sidecars included).
	Init bool
}

// Rollout is one revision of a workload and how its rollout went.
type Rollout struct {
	Workload owner.Workload
	Revision int64
	// RevisionKey is Revision.Key of the revision.
	RevisionKey string
	// Containers of the revision's pod template, in template order (init containers first).
	Containers []Container
	Phase      Phase
	// Reason and Message explain the phase (kstatus' message, "ProgressDeadlineExceeded", ...).
	Reason, Message string
	// Restores is the number of the earlier revision whose template this one brings back (a rollback), or 0.
	Restores int64
	// Adopted is set on a rollout that was already complete when the tracker first saw its workload: it is
	// kept in the ledger but not announced (no Events, no notifications).
	Adopted bool
	// Started is when the revision appeared (its ReplicaSet or ControllerRevision was created, or it became
	// current again for a rollback).
	Started time.Time
	// Submitted is when the revision's first pod was submitted (SubmittedBy: webhook or informer).
	Submitted   time.Time
	SubmittedBy string
	// FirstRunning is when the first pod of the revision started.
	FirstRunning time.Time
	// Completed is when the rollout became Current; Finished when it reached a final phase or Failed.
	Completed time.Time
	Finished  time.Time
	// Ready and Desired are the workload's ready and desired replicas at the last change.
	Ready, Desired int32
}

// Transition is a change of a rollout's phase, as sinks receive it: the rollout as it is now, and the phase it
// had before ("" for a new rollout).
type Transition struct {
	Rollout Rollout
	From    Phase
}

// Notification is what a rollout sink is handed: the rollout as it is now, the phase this sink acknowledged
// last ("" when it was never told of the rollout) and the state it returned then (for example the channel and
// timestamp of a chat message to update). Delivery is level-based: a sink that missed a phase (it was down)
// gets the latest one, with Acknowledged telling it what it saw last.
type Notification struct {
	Rollout      Rollout
	Acknowledged Phase
	State        map[string]string
}
