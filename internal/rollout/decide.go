package rollout

import (
	"fmt"
	"slices"
	"time"

	"github.com/deployment-tracker/deployment-tracker/internal/owner"
)

// Observation is what the cluster shows of a workload now.
type Observation struct {
	Workload owner.Workload
	// Exists is false once the workload is gone or being deleted.
	Exists bool
	// Revision is the current revision; HaveRevision is false while it is not known (the cache has not seen
	// its ReplicaSet or ControllerRevision yet).
	Revision     Revision
	HaveRevision bool
	// Containers are the pod template's, images as written (digests empty).
	Containers []Container
	// Status is the workload's readiness (Compute).
	Status Status
	// Pods are the facts the tracker reported per revision key.
	Pods map[string]PodFacts
	Now  time.Time
	// WatchingSince is when the tracker began to watch: a revision created before it and already complete at
	// first sight is adopted.
	WatchingSince time.Time
}

// Decide compares what the cluster shows with the workload's rollouts so far (history, by ascending revision)
// and returns the rollouts that changed (to write to the ledger, in order) and the phase transitions to
// announce. It is pure: the same inputs give the same decision.
//
//   - A revision higher than the latest starts a rollout (InProgress). The latest rollout, unless final,
//     becomes RolledBack when the new revision brings back the template of an earlier one (its revision key
//     was seen before), else Superseded.
//   - A rollout in progress becomes Current or Failed as kstatus says; a failed one that recovers becomes
//     Current. A Current rollout stays Current: scaling, restarts and pod churn are not rollouts.
//   - A lower revision than the latest is a cache that lags: nothing changes.
//   - A gone workload ends its latest rollout as Deleted.
//   - The first rollout seen of a workload, created before the tracker watched and already Current, is adopted:
//     kept, not announced.
//
// Timeline fields (submitted, first running, digests) are filled in from the pods as they are reported;
// ready counts are taken at each phase change only, so that a rollout is written a handful of times, not
// once per pod.
func Decide(history []Rollout, o Observation) (changed []Rollout, transitions []Transition) {
	var latest *Rollout
	if n := len(history); n > 0 {
		latest = &history[n-1]
	}
	switch {
	case !o.Exists:
		if latest == nil || latest.Phase.Final() {
			return nil, nil
		}
		r := *latest
		r.Phase, r.Reason, r.Message, r.Finished = PhaseDeleted, "WorkloadDeleted", "the workload was deleted", o.Now
		return []Rollout{r}, []Transition{{Rollout: r, From: latest.Phase}}
	case !o.HaveRevision, latest != nil && o.Revision.Number < latest.Revision:
		return nil, nil
	case latest == nil || o.Revision.Number > latest.Revision:
		return start(history, latest, o)
	}
	r := *latest
	if r.Phase.Final() {
		return nil, nil
	}
	from := r.Phase
	fill(&r, o)
	phase(&r, o)
	if rolloutEqual(r, *latest) {
		return nil, nil
	}
	changed = []Rollout{r}
	if r.Phase != from {
		transitions = []Transition{{Rollout: r, From: from}}
	}
	return changed, transitions
}

// start begins the rollout of o's revision, ending the latest one.
func start(history []Rollout, latest *Rollout, o Observation) ([]Rollout, []Transition) {
	r := Rollout{
		Workload:    o.Workload,
		Revision:    o.Revision.Number,
		RevisionKey: o.Revision.Key,
		Containers:  slices.Clone(o.Containers),
		Phase:       PhaseInProgress,
		Reason:      o.Status.Reason,
		Message:     o.Status.Message,
		Started:     o.Revision.Created,
		Ready:       o.Status.Ready,
		Desired:     o.Status.Desired,
	}
	for i := len(history) - 1; i >= 0; i-- {
		if history[i].RevisionKey == r.RevisionKey && history[i].Revision < r.Revision {
			r.Restores = history[i].Revision
			r.Started = o.Now // an old ReplicaSet made current again: it started now
			break
		}
	}
	if r.Started.IsZero() || r.Started.After(o.Now) {
		r.Started = o.Now
	}
	var changed []Rollout
	var transitions []Transition
	if latest != nil && !latest.Phase.Final() {
		prev := *latest
		prev.Finished = o.Now
		if r.Restores > 0 {
			prev.Phase, prev.Reason = PhaseRolledBack, "RolledBack"
			prev.Message = fmt.Sprintf("revision %d brought back the template of revision %d", r.Revision, r.Restores)
		} else {
			prev.Phase, prev.Reason = PhaseSuperseded, "Superseded"
			prev.Message = fmt.Sprintf("revision %d started", r.Revision)
		}
		changed = append(changed, prev)
		transitions = append(transitions, Transition{Rollout: prev, From: latest.Phase})
	}
	fill(&r, o)
	// Created has the API server's second precision: a revision created in the second the tracker began to
	// watch is taken as seen from its start.
	if latest == nil && o.Status.Phase == PhaseCurrent && o.Revision.Created.Before(o.WatchingSince.Truncate(time.Second)) {
		r.Adopted = true // complete before the tracker saw it: recorded, not announced
	}
	started := r
	phase(&r, o)
	if !r.Adopted {
		transitions = append(transitions, Transition{Rollout: started})
		if r.Phase != started.Phase {
			transitions = append(transitions, Transition{Rollout: r, From: started.Phase})
		}
	}
	changed = append(changed, r)
	return changed, transitions
}

// fill copies what the pods of r's revision show into r.
func fill(r *Rollout, o Observation) {
	f, ok := o.Pods[r.RevisionKey]
	if !ok {
		return
	}
	if !f.Submitted.IsZero() && (r.Submitted.IsZero() || f.Submitted.Before(r.Submitted)) {
		r.Submitted, r.SubmittedBy = f.Submitted, f.SubmittedBy
	}
	if !f.FirstRunning.IsZero() && (r.FirstRunning.IsZero() || f.FirstRunning.Before(r.FirstRunning)) {
		r.FirstRunning = f.FirstRunning
	}
	r.Containers = slices.Clone(r.Containers) // the history's slice is never written through
	for i := range r.Containers {
		if d, ok := f.Digests[r.Containers[i].Name]; ok && d != "" && r.Containers[i].Digest == "" {
			r.Containers[i].Digest = d
		}
	}
}

// phase moves r as o's readiness says.
func phase(r *Rollout, o Observation) {
	next := r.Phase
	switch {
	case r.Phase == PhaseInProgress && o.Status.Phase == PhaseCurrent, r.Phase == PhaseFailed && o.Status.Phase == PhaseCurrent:
		next = PhaseCurrent
		r.Completed, r.Finished = o.Now, time.Time{}
	case r.Phase == PhaseInProgress && o.Status.Phase == PhaseFailed:
		next = PhaseFailed
		r.Finished = o.Now
	}
	if next != r.Phase {
		r.Phase, r.Reason, r.Message = next, o.Status.Reason, o.Status.Message
		r.Ready, r.Desired = o.Status.Ready, o.Status.Desired
	}
}

func rolloutEqual(a, b Rollout) bool {
	return slices.Equal(a.Containers, b.Containers) && a.Phase == b.Phase && a.Reason == b.Reason && a.Message == b.Message &&
		a.Submitted.Equal(b.Submitted) && a.SubmittedBy == b.SubmittedBy && a.FirstRunning.Equal(b.FirstRunning) &&
		a.Completed.Equal(b.Completed) && a.Finished.Equal(b.Finished) && a.Ready == b.Ready && a.Desired == b.Desired &&
		a.Workload == b.Workload && a.Revision == b.Revision && a.RevisionKey == b.RevisionKey && a.Restores == b.Restores &&
		a.Adopted == b.Adopted && a.Started.Equal(b.Started)
}

// Equal reports whether a and b are the same rollout in the same state.
func Equal(a, b Rollout) bool { return rolloutEqual(a, b) }
