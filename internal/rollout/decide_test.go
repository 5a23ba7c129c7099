package rollout_test

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/deployment-tracker/deployment-tracker/internal/owner"
	"github.com/deployment-tracker/deployment-tracker/internal/rollout"
)

// The pod-template-hash of the three templates of the Deployment the Decide tests follow.
const (
	hashV140 = "6d8f7b9c4d" // ghcr.io/octo-org/web:1.4.0
	hashV150 = "58c9d7f6b5" // ghcr.io/octo-org/web:1.5.0
	hashV160 = "7f4b6c8d9e" // ghcr.io/octo-org/web:1.6.0
)

var (
	decideT0    = time.Date(2025, 6, 2, 9, 0, 0, 0, time.UTC)
	workloadWeb = owner.Workload{Group: "apps", Kind: "Deployment", Namespace: "shop", Name: "web"}

	// What Compute says of the Deployment: rolling out, complete, past its progress deadline, scaling up.
	statusProgressing = rollout.Status{Phase: rollout.PhaseInProgress, Reason: "LessUpdated", Message: "Updated: 1/3", Ready: 1, Desired: 3}
	statusCurrent     = rollout.Status{Phase: rollout.PhaseCurrent, Message: "Deployment is available. Replicas: 3", Ready: 3, Desired: 3}
	statusFailed      = rollout.Status{Phase: rollout.PhaseFailed, Reason: "ProgressDeadlineExceeded", Message: "Progress deadline exceeded", Ready: 1, Desired: 3}
	statusScaling     = rollout.Status{Phase: rollout.PhaseInProgress, Reason: "LessReady", Message: "Ready: 3/5", Ready: 3, Desired: 5}

	digestApp140     = "sha256:" + strings.Repeat("a1", 32)
	digestMigrate140 = "sha256:" + strings.Repeat("b2", 32)
	digestApp150     = "sha256:" + strings.Repeat("c3", 32)
	digestMigrate150 = "sha256:" + strings.Repeat("d4", 32)
	digestOther      = "sha256:" + strings.Repeat("e5", 32)
)

// minutes returns the time n minutes after decideT0.
func minutes(n int) time.Time { return decideT0.Add(time.Duration(n) * time.Minute) }

// revisionOf returns the revision number n of the template hash, its ReplicaSet created at created.
func revisionOf(n int64, hash string, created time.Time) rollout.Revision {
	return rollout.Revision{Number: n, Key: hash, Created: created}
}

// templateOf returns the containers of the pod template of hash, init container first, digests empty.
func templateOf(hash string) []rollout.Container {
	version := map[string]string{hashV140: "1.4.0", hashV150: "1.5.0", hashV160: "1.6.0"}[hash]
	return []rollout.Container{
		{Name: "migrate", Image: "ghcr.io/octo-org/web-migrate:" + version},
		{Name: "app", Image: "ghcr.io/octo-org/web:" + version},
	}
}

// observed is the Deployment as it exists at now, on revision rev, with status st and pods, seen by a tracker
// watching since before any of its revisions was created.
func observed(rev rollout.Revision, st rollout.Status, now time.Time, pods map[string]rollout.PodFacts) rollout.Observation {
	return rollout.Observation{
		Workload:      workloadWeb,
		Exists:        true,
		Revision:      rev,
		HaveRevision:  true,
		Containers:    templateOf(rev.Key),
		Status:        st,
		Pods:          pods,
		Now:           now,
		WatchingSince: minutes(-60),
	}
}

// watchingSince returns o as seen by a tracker that began to watch at since.
func watchingSince(o rollout.Observation, since time.Time) rollout.Observation {
	o.WatchingSince = since
	return o
}

// observedWithoutRevision is the Deployment before the cache has seen its current ReplicaSet.
func observedWithoutRevision(st rollout.Status, now time.Time) rollout.Observation {
	return rollout.Observation{
		Workload: workloadWeb, Exists: true, Containers: templateOf(hashV150), Status: st, Now: now, WatchingSince: minutes(-60),
	}
}

// observedGone is the Deployment once it is deleted, as the controller observes it (nothing but its name).
func observedGone(now time.Time) rollout.Observation {
	return rollout.Observation{Workload: workloadWeb, Now: now, WatchingSince: minutes(-60)}
}

// startedRollout is the rollout of rev as Decide starts it from statusProgressing.
func startedRollout(rev rollout.Revision) rollout.Rollout {
	return rollout.Rollout{
		Workload:    workloadWeb,
		Revision:    rev.Number,
		RevisionKey: rev.Key,
		Containers:  templateOf(rev.Key),
		Phase:       rollout.PhaseInProgress,
		Reason:      "LessUpdated",
		Message:     "Updated: 1/3",
		Started:     rev.Created,
		Ready:       1,
		Desired:     3,
	}
}

// completedRollout is the rollout of rev, started from statusProgressing, Current since at.
func completedRollout(rev rollout.Revision, at time.Time) rollout.Rollout {
	return modified(startedRollout(rev), func(r *rollout.Rollout) {
		r.Phase, r.Reason, r.Message = rollout.PhaseCurrent, "", "Deployment is available. Replicas: 3"
		r.Completed, r.Ready, r.Desired = at, 3, 3
	})
}

// failedRollout is the rollout of rev, started from statusProgressing, Failed since at.
func failedRollout(rev rollout.Revision, at time.Time) rollout.Rollout {
	return modified(startedRollout(rev), func(r *rollout.Rollout) {
		r.Phase, r.Reason, r.Message = rollout.PhaseFailed, "ProgressDeadlineExceeded", "Progress deadline exceeded"
		r.Finished, r.Ready, r.Desired = at, 1, 3
	})
}

// superseded is r ended at at by the start of revision by.
func superseded(r rollout.Rollout, by int64, at time.Time) rollout.Rollout {
	r.Phase, r.Reason, r.Message, r.Finished = rollout.PhaseSuperseded, "Superseded", fmt.Sprintf("revision %d started", by), at
	return r
}

// rolledBack is r ended at at by revision by bringing back the template of revision restores.
func rolledBack(r rollout.Rollout, by, restores int64, at time.Time) rollout.Rollout {
	r.Phase, r.Reason, r.Finished = rollout.PhaseRolledBack, "RolledBack", at
	r.Message = fmt.Sprintf("revision %d brought back the template of revision %d", by, restores)
	return r
}

// deleted is r ended at at by the deletion of its workload.
func deleted(r rollout.Rollout, at time.Time) rollout.Rollout {
	r.Phase, r.Reason, r.Message, r.Finished = rollout.PhaseDeleted, "WorkloadDeleted", "the workload was deleted", at
	return r
}

// modified returns r changed by f. r's Containers are f's to change only when r is a fresh value.
func modified(r rollout.Rollout, f func(*rollout.Rollout)) rollout.Rollout {
	r.Containers = slices.Clone(r.Containers)
	f(&r)
	return r
}

// withDigests returns r with the digests of its containers set by name.
func withDigests(r rollout.Rollout, digests map[string]string) rollout.Rollout {
	return modified(r, func(r *rollout.Rollout) {
		for i := range r.Containers {
			if d, ok := digests[r.Containers[i].Name]; ok {
				r.Containers[i].Digest = d
			}
		}
	})
}

// withTimeline returns r with its pod timeline set.
func withTimeline(r rollout.Rollout, submitted time.Time, by string, firstRunning time.Time) rollout.Rollout {
	r.Submitted, r.SubmittedBy, r.FirstRunning = submitted, by, firstRunning
	return r
}

// cloneHistory returns a deep copy of history.
func cloneHistory(history []rollout.Rollout) []rollout.Rollout {
	if history == nil {
		return nil
	}
	out := make([]rollout.Rollout, len(history))
	for i, r := range history {
		r.Containers = slices.Clone(r.Containers)
		out[i] = r
	}
	return out
}

// cloneObservation returns a deep copy of o.
func cloneObservation(o rollout.Observation) rollout.Observation {
	o.Containers = slices.Clone(o.Containers)
	if o.Pods != nil {
		pods := make(map[string]rollout.PodFacts, len(o.Pods))
		for k, f := range o.Pods {
			f.Digests = maps.Clone(f.Digests)
			pods[k] = f
		}
		o.Pods = pods
	}
	return o
}

// applied returns history with changed written in, as the controller merges a decision: a rollout replaces
// the one of the same revision or is appended (a new revision is always the highest).
func applied(history, changed []rollout.Rollout) []rollout.Rollout {
	out := cloneHistory(history)
	for _, r := range cloneHistory(changed) {
		i := slices.IndexFunc(out, func(x rollout.Rollout) bool { return x.Revision == r.Revision })
		if i >= 0 {
			out[i] = r
		} else {
			out = append(out, r)
		}
	}
	return out
}

type decideCase struct {
	name            string
	history         []rollout.Rollout
	observation     rollout.Observation
	wantChanged     []rollout.Rollout
	wantTransitions []rollout.Transition
	// bug, when set, is a behaviour of Decide that contradicts its doc comment: the case states the documented
	// behaviour and is skipped with this explanation until Decide is fixed.
	bug string
}

// decideCases is the behaviour of Decide, case by case. Each case's inputs are fresh values.
func decideCases() []decideCase {
	rev1 := revisionOf(1, hashV140, minutes(0))
	rev2 := revisionOf(2, hashV150, minutes(10))
	rev3 := revisionOf(3, hashV160, minutes(20))
	// A rollback makes the ReplicaSet of revision 1 current again under revision 3: it keeps its creation time.
	rev3RestoresRev1 := revisionOf(3, hashV140, minutes(0))

	factsV140 := map[string]rollout.PodFacts{hashV140: {
		Submitted: minutes(0).Add(2 * time.Second), SubmittedBy: "webhook",
		FirstRunning: minutes(0).Add(9 * time.Second),
		Digests:      map[string]string{"migrate": digestMigrate140, "app": digestApp140},
		Pods:         1,
	}}
	timelineV140 := func(r rollout.Rollout) rollout.Rollout {
		r = withTimeline(r, minutes(0).Add(2*time.Second), "webhook", minutes(0).Add(9*time.Second))
		return withDigests(r, map[string]string{"migrate": digestMigrate140, "app": digestApp140})
	}

	cases := []decideCase{
		// First sight of a workload.
		{
			name:        "first sight of a current workload created before the tracker watched adopts its rollout, unannounced",
			observation: watchingSince(observed(rev1, statusCurrent, minutes(30), nil), minutes(25)),
			wantChanged: []rollout.Rollout{modified(completedRollout(rev1, minutes(30)), func(r *rollout.Rollout) {
				r.Adopted = true
			})},
		},
		{
			name:        "first sight of a current workload created before the tracker watched adopts it with the pods' timeline",
			observation: watchingSince(observed(rev1, statusCurrent, minutes(30), factsV140), minutes(25)),
			wantChanged: []rollout.Rollout{timelineV140(modified(completedRollout(rev1, minutes(30)), func(r *rollout.Rollout) {
				r.Adopted = true
			}))},
		},
		{
			name: "first sight of a current workload of unknown creation time adopts it, started now",
			observation: watchingSince(observed(revisionOf(1, hashV140, time.Time{}), statusCurrent, minutes(30), nil),
				minutes(25)),
			wantChanged: []rollout.Rollout{modified(completedRollout(rev1, minutes(30)), func(r *rollout.Rollout) {
				r.Adopted, r.Started = true, minutes(30)
			})},
		},
		{
			name:        "first sight of a brand-new revision already current is announced as started then current",
			observation: watchingSince(observed(rev1, statusCurrent, minutes(3), nil), minutes(-5)),
			wantChanged: []rollout.Rollout{completedRollout(rev1, minutes(3))},
			wantTransitions: []rollout.Transition{
				{Rollout: modified(startedRollout(rev1), func(r *rollout.Rollout) {
					r.Reason, r.Message, r.Ready, r.Desired = "", "Deployment is available. Replicas: 3", 3, 3
				}), From: ""},
				{Rollout: completedRollout(rev1, minutes(3)), From: rollout.PhaseInProgress},
			},
		},
		{
			name:        "first sight of a current revision created the instant the tracker began to watch is announced",
			observation: watchingSince(observed(rev1, statusCurrent, minutes(3), nil), minutes(0)),
			wantChanged: []rollout.Rollout{completedRollout(rev1, minutes(3))},
			wantTransitions: []rollout.Transition{
				{Rollout: modified(startedRollout(rev1), func(r *rollout.Rollout) {
					r.Reason, r.Message, r.Ready, r.Desired = "", "Deployment is available. Replicas: 3", 3, 3
				}), From: ""},
				{Rollout: completedRollout(rev1, minutes(3)), From: rollout.PhaseInProgress},
			},
		},
		{
			name:        "first sight of a current workload with no watch start known is announced",
			observation: watchingSince(observed(rev1, statusCurrent, minutes(30), nil), time.Time{}),
			wantChanged: []rollout.Rollout{completedRollout(rev1, minutes(30))},
			wantTransitions: []rollout.Transition{
				{Rollout: modified(startedRollout(rev1), func(r *rollout.Rollout) {
					r.Reason, r.Message, r.Ready, r.Desired = "", "Deployment is available. Replicas: 3", 3, 3
				}), From: ""},
				{Rollout: completedRollout(rev1, minutes(30)), From: rollout.PhaseInProgress},
			},
		},
		{
			name:            "first sight of a workload in progress starts an announced rollout",
			observation:     observed(rev1, statusProgressing, minutes(1), nil),
			wantChanged:     []rollout.Rollout{startedRollout(rev1)},
			wantTransitions: []rollout.Transition{{Rollout: startedRollout(rev1), From: ""}},
		},
		{
			name:            "first sight of a workload in progress created before the tracker watched is announced, not adopted",
			observation:     watchingSince(observed(rev1, statusProgressing, minutes(30), nil), minutes(25)),
			wantChanged:     []rollout.Rollout{startedRollout(rev1)},
			wantTransitions: []rollout.Transition{{Rollout: startedRollout(rev1), From: ""}},
		},
		{
			name:        "first sight of a failed workload is announced as started then failed, not adopted",
			observation: observed(rev1, statusFailed, minutes(12), nil),
			wantChanged: []rollout.Rollout{failedRollout(rev1, minutes(12))},
			wantTransitions: []rollout.Transition{
				// The rollout as it started takes the observation's reason, message and counts.
				{Rollout: modified(startedRollout(rev1), func(r *rollout.Rollout) {
					r.Reason, r.Message = "ProgressDeadlineExceeded", "Progress deadline exceeded"
				}), From: ""},
				{Rollout: failedRollout(rev1, minutes(12)), From: rollout.PhaseInProgress},
			},
		},
		{
			// With history present nothing is adopted, even a revision created before the tracker watched.
			name:        "first sight of a new revision already current with history supersedes the latest and completes at once",
			history:     []rollout.Rollout{completedRollout(rev1, minutes(5))},
			observation: watchingSince(observed(rev2, statusCurrent, minutes(40), nil), minutes(30)),
			wantChanged: []rollout.Rollout{
				superseded(completedRollout(rev1, minutes(5)), 2, minutes(40)),
				completedRollout(rev2, minutes(40)),
			},
			wantTransitions: []rollout.Transition{
				{Rollout: superseded(completedRollout(rev1, minutes(5)), 2, minutes(40)), From: rollout.PhaseCurrent},
				{Rollout: modified(startedRollout(rev2), func(r *rollout.Rollout) {
					r.Reason, r.Message, r.Ready, r.Desired = "", "Deployment is available. Replicas: 3", 3, 3
				}), From: ""},
				{Rollout: completedRollout(rev2, minutes(40)), From: rollout.PhaseInProgress},
			},
		},
		{
			name:        "a new revision already current after a final latest is announced as started then current",
			history:     []rollout.Rollout{deleted(completedRollout(rev1, minutes(5)), minutes(8))},
			observation: observed(rev2, statusCurrent, minutes(15), nil),
			wantChanged: []rollout.Rollout{completedRollout(rev2, minutes(15))},
			wantTransitions: []rollout.Transition{
				{Rollout: modified(startedRollout(rev2), func(r *rollout.Rollout) {
					r.Reason, r.Message, r.Ready, r.Desired = "", "Deployment is available. Replicas: 3", 3, 3
				}), From: ""},
				{Rollout: completedRollout(rev2, minutes(15)), From: rollout.PhaseInProgress},
			},
		},
		{
			name:        "a revision of unknown creation time starts now",
			observation: observed(revisionOf(1, hashV140, time.Time{}), statusProgressing, minutes(1), nil),
			wantChanged: []rollout.Rollout{modified(startedRollout(rev1), func(r *rollout.Rollout) { r.Started = minutes(1) })},
			wantTransitions: []rollout.Transition{
				{Rollout: modified(startedRollout(rev1), func(r *rollout.Rollout) { r.Started = minutes(1) }), From: ""},
			},
		},
		{
			name:        "a revision created after now (clock skew) starts now",
			observation: observed(revisionOf(1, hashV140, minutes(3)), statusProgressing, minutes(1), nil),
			wantChanged: []rollout.Rollout{modified(startedRollout(rev1), func(r *rollout.Rollout) { r.Started = minutes(1) })},
			wantTransitions: []rollout.Transition{
				{Rollout: modified(startedRollout(rev1), func(r *rollout.Rollout) { r.Started = minutes(1) }), From: ""},
			},
		},

		// The latest rollout follows kstatus.
		{
			name:            "in progress becomes current: completed now, ready counts taken",
			history:         []rollout.Rollout{startedRollout(rev1)},
			observation:     observed(rev1, statusCurrent, minutes(5), nil),
			wantChanged:     []rollout.Rollout{completedRollout(rev1, minutes(5))},
			wantTransitions: []rollout.Transition{{Rollout: completedRollout(rev1, minutes(5)), From: rollout.PhaseInProgress}},
		},
		{
			name:            "in progress becomes failed: finished now, reason ProgressDeadlineExceeded",
			history:         []rollout.Rollout{startedRollout(rev1)},
			observation:     observed(rev1, statusFailed, minutes(12), nil),
			wantChanged:     []rollout.Rollout{failedRollout(rev1, minutes(12))},
			wantTransitions: []rollout.Transition{{Rollout: failedRollout(rev1, minutes(12)), From: rollout.PhaseInProgress}},
		},
		{
			name:        "failed recovers to current: completed now, finished cleared",
			history:     []rollout.Rollout{failedRollout(rev1, minutes(12))},
			observation: observed(rev1, statusCurrent, minutes(20), nil),
			wantChanged: []rollout.Rollout{completedRollout(rev1, minutes(20))},
			wantTransitions: []rollout.Transition{
				{Rollout: completedRollout(rev1, minutes(20)), From: rollout.PhaseFailed},
			},
		},
		{
			name:        "failed stays failed while kstatus says in progress",
			history:     []rollout.Rollout{failedRollout(rev1, minutes(12))},
			observation: observed(rev1, statusProgressing, minutes(14), nil),
		},
		{
			name:        "in progress with new counts and message is not written again",
			history:     []rollout.Rollout{startedRollout(rev1)},
			observation: observed(rev1, rollout.Status{Phase: rollout.PhaseInProgress, Reason: "LessUpdated", Message: "Updated: 2/3", Ready: 2, Desired: 3}, minutes(3), nil),
		},
		{
			name:        "current stays current while scaling (kstatus in progress)",
			history:     []rollout.Rollout{completedRollout(rev1, minutes(5))},
			observation: observed(rev1, statusScaling, minutes(40), nil),
		},
		{
			name:        "current stays current when kstatus says failed",
			history:     []rollout.Rollout{completedRollout(rev1, minutes(5))},
			observation: observed(rev1, statusFailed, minutes(40), nil),
		},
		{
			name:    "current with new ready counts is not written again",
			history: []rollout.Rollout{completedRollout(rev1, minutes(5))},
			observation: observed(rev1, rollout.Status{Phase: rollout.PhaseCurrent, Message: "Deployment is available. Replicas: 5", Ready: 5, Desired: 5},
				minutes(40), nil),
		},

		// A new revision ends the latest rollout.
		{
			name:        "a new revision while in progress supersedes the latest",
			history:     []rollout.Rollout{startedRollout(rev1)},
			observation: observed(rev2, statusProgressing, minutes(10), nil),
			wantChanged: []rollout.Rollout{superseded(startedRollout(rev1), 2, minutes(10)), startedRollout(rev2)},
			wantTransitions: []rollout.Transition{
				{Rollout: superseded(startedRollout(rev1), 2, minutes(10)), From: rollout.PhaseInProgress},
				{Rollout: startedRollout(rev2), From: ""},
			},
		},
		{
			name:        "a new revision while current supersedes the latest",
			history:     []rollout.Rollout{completedRollout(rev1, minutes(5))},
			observation: observed(rev2, statusProgressing, minutes(10), nil),
			wantChanged: []rollout.Rollout{superseded(completedRollout(rev1, minutes(5)), 2, minutes(10)), startedRollout(rev2)},
			wantTransitions: []rollout.Transition{
				{Rollout: superseded(completedRollout(rev1, minutes(5)), 2, minutes(10)), From: rollout.PhaseCurrent},
				{Rollout: startedRollout(rev2), From: ""},
			},
		},
		{
			name:        "a new revision while failed supersedes the latest: finished now",
			history:     []rollout.Rollout{failedRollout(rev1, minutes(8))},
			observation: observed(rev2, statusProgressing, minutes(10), nil),
			wantChanged: []rollout.Rollout{superseded(failedRollout(rev1, minutes(8)), 2, minutes(10)), startedRollout(rev2)},
			wantTransitions: []rollout.Transition{
				{Rollout: superseded(failedRollout(rev1, minutes(8)), 2, minutes(10)), From: rollout.PhaseFailed},
				{Rollout: startedRollout(rev2), From: ""},
			},
		},
		{
			name:        "a new revision that fails at once supersedes the latest and is announced as started then failed",
			history:     []rollout.Rollout{completedRollout(rev1, minutes(5))},
			observation: observed(rev2, statusFailed, minutes(25), nil),
			wantChanged: []rollout.Rollout{superseded(completedRollout(rev1, minutes(5)), 2, minutes(25)), failedRollout(rev2, minutes(25))},
			wantTransitions: []rollout.Transition{
				{Rollout: superseded(completedRollout(rev1, minutes(5)), 2, minutes(25)), From: rollout.PhaseCurrent},
				{Rollout: modified(startedRollout(rev2), func(r *rollout.Rollout) {
					r.Reason, r.Message = "ProgressDeadlineExceeded", "Progress deadline exceeded"
				}), From: ""},
				{Rollout: failedRollout(rev2, minutes(25)), From: rollout.PhaseInProgress},
			},
		},
		{
			name:            "a new revision after a final latest leaves the latest alone",
			history:         []rollout.Rollout{deleted(completedRollout(rev1, minutes(5)), minutes(8))},
			observation:     observed(rev2, statusProgressing, minutes(10), nil),
			wantChanged:     []rollout.Rollout{startedRollout(rev2)},
			wantTransitions: []rollout.Transition{{Rollout: startedRollout(rev2), From: ""}},
		},
		{
			name:        "an adopted latest is superseded and announced, still marked adopted",
			history:     []rollout.Rollout{modified(completedRollout(rev1, minutes(5)), func(r *rollout.Rollout) { r.Adopted = true })},
			observation: observed(rev2, statusProgressing, minutes(10), nil),
			wantChanged: []rollout.Rollout{
				superseded(modified(completedRollout(rev1, minutes(5)), func(r *rollout.Rollout) { r.Adopted = true }), 2, minutes(10)),
				startedRollout(rev2),
			},
			wantTransitions: []rollout.Transition{
				{Rollout: superseded(modified(completedRollout(rev1, minutes(5)), func(r *rollout.Rollout) { r.Adopted = true }), 2, minutes(10)),
					From: rollout.PhaseCurrent},
				{Rollout: startedRollout(rev2), From: ""},
			},
		},
		{
			name: "a new revision bringing back an earlier template rolls the latest back and restores it, started now",
			history: []rollout.Rollout{
				superseded(completedRollout(rev1, minutes(5)), 2, minutes(10)),
				completedRollout(rev2, minutes(15)),
			},
			observation: observed(rev3RestoresRev1, statusProgressing, minutes(30), nil),
			wantChanged: []rollout.Rollout{
				rolledBack(completedRollout(rev2, minutes(15)), 3, 1, minutes(30)),
				modified(startedRollout(rev3RestoresRev1), func(r *rollout.Rollout) { r.Restores, r.Started = 1, minutes(30) }),
			},
			wantTransitions: []rollout.Transition{
				{Rollout: rolledBack(completedRollout(rev2, minutes(15)), 3, 1, minutes(30)), From: rollout.PhaseCurrent},
				{Rollout: modified(startedRollout(rev3RestoresRev1), func(r *rollout.Rollout) { r.Restores, r.Started = 1, minutes(30) }), From: ""},
			},
		},
		{
			name: "a rollback while the latest is in progress, complete at once",
			history: []rollout.Rollout{
				superseded(completedRollout(rev1, minutes(5)), 2, minutes(10)),
				startedRollout(rev2),
			},
			observation: observed(rev3RestoresRev1, statusCurrent, minutes(30), nil),
			wantChanged: []rollout.Rollout{
				rolledBack(startedRollout(rev2), 3, 1, minutes(30)),
				modified(completedRollout(rev3RestoresRev1, minutes(30)), func(r *rollout.Rollout) { r.Restores, r.Started = 1, minutes(30) }),
			},
			wantTransitions: []rollout.Transition{
				{Rollout: rolledBack(startedRollout(rev2), 3, 1, minutes(30)), From: rollout.PhaseInProgress},
				{Rollout: modified(startedRollout(rev3RestoresRev1), func(r *rollout.Rollout) {
					r.Restores, r.Started = 1, minutes(30)
					r.Reason, r.Message, r.Ready, r.Desired = "", "Deployment is available. Replicas: 3", 3, 3
				}), From: ""},
				{Rollout: modified(completedRollout(rev3RestoresRev1, minutes(30)), func(r *rollout.Rollout) { r.Restores, r.Started = 1, minutes(30) }),
					From: rollout.PhaseInProgress},
			},
		},
		{
			name: "a rollback restores the most recent earlier rollout of the template",
			history: []rollout.Rollout{
				superseded(completedRollout(rev1, minutes(5)), 2, minutes(10)),
				rolledBack(completedRollout(rev2, minutes(15)), 3, 1, minutes(30)),
				superseded(modified(completedRollout(rev3RestoresRev1, minutes(32)), func(r *rollout.Rollout) { r.Restores, r.Started = 1, minutes(30) }),
					4, minutes(40)),
				completedRollout(revisionOf(4, hashV160, minutes(40)), minutes(45)),
			},
			observation: observed(revisionOf(5, hashV140, minutes(0)), statusProgressing, minutes(50), nil),
			wantChanged: []rollout.Rollout{
				rolledBack(completedRollout(revisionOf(4, hashV160, minutes(40)), minutes(45)), 5, 3, minutes(50)),
				modified(startedRollout(revisionOf(5, hashV140, minutes(0))), func(r *rollout.Rollout) { r.Restores, r.Started = 3, minutes(50) }),
			},
			wantTransitions: []rollout.Transition{
				{Rollout: rolledBack(completedRollout(revisionOf(4, hashV160, minutes(40)), minutes(45)), 5, 3, minutes(50)),
					From: rollout.PhaseCurrent},
				{Rollout: modified(startedRollout(revisionOf(5, hashV140, minutes(0))), func(r *rollout.Rollout) { r.Restores, r.Started = 3, minutes(50) }),
					From: ""},
			},
		},
		{
			name:        "a rollback after a final latest restores without ending the latest",
			history:     []rollout.Rollout{superseded(completedRollout(rev1, minutes(5)), 2, minutes(10)), deleted(startedRollout(rev2), minutes(12))},
			observation: observed(rev3RestoresRev1, statusProgressing, minutes(30), nil),
			wantChanged: []rollout.Rollout{
				modified(startedRollout(rev3RestoresRev1), func(r *rollout.Rollout) { r.Restores, r.Started = 1, minutes(30) }),
			},
			wantTransitions: []rollout.Transition{
				{Rollout: modified(startedRollout(rev3RestoresRev1), func(r *rollout.Rollout) { r.Restores, r.Started = 1, minutes(30) }), From: ""},
			},
		},

		// Observations that change nothing.
		{
			name:        "a lower revision than the latest is a lagging cache",
			history:     []rollout.Rollout{superseded(completedRollout(rev1, minutes(5)), 2, minutes(10)), startedRollout(rev2)},
			observation: observed(rev1, statusCurrent, minutes(11), factsV140),
		},
		{
			name:        "a lower revision than a final latest is a lagging cache",
			history:     []rollout.Rollout{superseded(completedRollout(rev1, minutes(5)), 3, minutes(20)), deleted(startedRollout(rev3), minutes(22))},
			observation: observed(rev2, statusProgressing, minutes(23), nil),
		},
		{
			name:        "no revision known changes nothing",
			history:     []rollout.Rollout{startedRollout(rev1)},
			observation: observedWithoutRevision(statusCurrent, minutes(11)),
		},
		{
			name:        "no revision known at first sight changes nothing",
			observation: observedWithoutRevision(statusProgressing, minutes(1)),
		},

		// A gone workload.
		{
			name:            "gone while current: the latest is deleted",
			history:         []rollout.Rollout{completedRollout(rev1, minutes(5))},
			observation:     observedGone(minutes(60)),
			wantChanged:     []rollout.Rollout{deleted(completedRollout(rev1, minutes(5)), minutes(60))},
			wantTransitions: []rollout.Transition{{Rollout: deleted(completedRollout(rev1, minutes(5)), minutes(60)), From: rollout.PhaseCurrent}},
		},
		{
			name:            "gone while in progress: the latest is deleted",
			history:         []rollout.Rollout{startedRollout(rev1)},
			observation:     observedGone(minutes(3)),
			wantChanged:     []rollout.Rollout{deleted(startedRollout(rev1), minutes(3))},
			wantTransitions: []rollout.Transition{{Rollout: deleted(startedRollout(rev1), minutes(3)), From: rollout.PhaseInProgress}},
		},
		{
			name:            "gone while failed: the latest is deleted, finished at the deletion",
			history:         []rollout.Rollout{failedRollout(rev1, minutes(12))},
			observation:     observedGone(minutes(60)),
			wantChanged:     []rollout.Rollout{deleted(failedRollout(rev1, minutes(12)), minutes(60))},
			wantTransitions: []rollout.Transition{{Rollout: deleted(failedRollout(rev1, minutes(12)), minutes(60)), From: rollout.PhaseFailed}},
		},
		{
			name:            "gone ends the latest rollout only",
			history:         []rollout.Rollout{superseded(completedRollout(rev1, minutes(5)), 2, minutes(10)), completedRollout(rev2, minutes(15))},
			observation:     observedGone(minutes(60)),
			wantChanged:     []rollout.Rollout{deleted(completedRollout(rev2, minutes(15)), minutes(60))},
			wantTransitions: []rollout.Transition{{Rollout: deleted(completedRollout(rev2, minutes(15)), minutes(60)), From: rollout.PhaseCurrent}},
		},
		{
			name:    "gone wins over a new revision, its status and its pods",
			history: []rollout.Rollout{completedRollout(rev1, minutes(5))},
			observation: modifiedObservation(observed(rev2, statusProgressing, minutes(60), factsV140), func(o *rollout.Observation) {
				o.Exists = false
			}),
			wantChanged:     []rollout.Rollout{deleted(completedRollout(rev1, minutes(5)), minutes(60))},
			wantTransitions: []rollout.Transition{{Rollout: deleted(completedRollout(rev1, minutes(5)), minutes(60)), From: rollout.PhaseCurrent}},
		},
		{
			name:        "gone with an adopted latest: deleted and announced, still marked adopted",
			history:     []rollout.Rollout{modified(completedRollout(rev1, minutes(5)), func(r *rollout.Rollout) { r.Adopted = true })},
			observation: observedGone(minutes(60)),
			wantChanged: []rollout.Rollout{
				deleted(modified(completedRollout(rev1, minutes(5)), func(r *rollout.Rollout) { r.Adopted = true }), minutes(60)),
			},
			wantTransitions: []rollout.Transition{{
				Rollout: deleted(modified(completedRollout(rev1, minutes(5)), func(r *rollout.Rollout) { r.Adopted = true }), minutes(60)),
				From:    rollout.PhaseCurrent,
			}},
		},
		{
			name:        "gone with no history changes nothing",
			observation: observedGone(minutes(60)),
		},

		// Pod facts fill the timeline.
		{
			name:        "pod facts fill the timeline of an in-progress rollout without a transition",
			history:     []rollout.Rollout{startedRollout(rev1)},
			observation: observed(rev1, statusProgressing, minutes(1), factsV140),
			wantChanged: []rollout.Rollout{timelineV140(startedRollout(rev1))},
		},
		{
			name:        "pod facts fill the timeline of a current rollout without a transition",
			history:     []rollout.Rollout{completedRollout(rev1, minutes(5))},
			observation: observed(rev1, statusScaling, minutes(6), factsV140),
			wantChanged: []rollout.Rollout{timelineV140(completedRollout(rev1, minutes(5)))},
		},
		{
			name:        "pod facts fill the timeline of a failed rollout without a transition",
			history:     []rollout.Rollout{failedRollout(rev1, minutes(12))},
			observation: observed(rev1, statusFailed, minutes(13), factsV140),
			wantChanged: []rollout.Rollout{timelineV140(failedRollout(rev1, minutes(12)))},
		},
		{
			name:            "pod facts and a phase change in one observation: one rollout, one transition",
			history:         []rollout.Rollout{startedRollout(rev1)},
			observation:     observed(rev1, statusCurrent, minutes(5), factsV140),
			wantChanged:     []rollout.Rollout{timelineV140(completedRollout(rev1, minutes(5)))},
			wantTransitions: []rollout.Transition{{Rollout: timelineV140(completedRollout(rev1, minutes(5))), From: rollout.PhaseInProgress}},
		},
		{
			name:    "pod facts fill a new revision; the superseded one keeps its own",
			history: []rollout.Rollout{completedRollout(rev1, minutes(5))},
			observation: observed(rev2, statusProgressing, minutes(10), map[string]rollout.PodFacts{
				hashV140: {
					Submitted: minutes(0), SubmittedBy: "informer", FirstRunning: minutes(0),
					Digests: map[string]string{"migrate": digestOther, "app": digestOther}, Pods: 3,
				},
				hashV150: {
					Submitted: minutes(10).Add(time.Second), SubmittedBy: "webhook", FirstRunning: minutes(10).Add(7 * time.Second),
					Digests: map[string]string{"app": digestApp150}, Pods: 1,
				},
			}),
			wantChanged: []rollout.Rollout{
				superseded(completedRollout(rev1, minutes(5)), 2, minutes(10)),
				withDigests(withTimeline(startedRollout(rev2), minutes(10).Add(time.Second), "webhook", minutes(10).Add(7*time.Second)),
					map[string]string{"app": digestApp150}),
			},
			wantTransitions: []rollout.Transition{
				{Rollout: superseded(completedRollout(rev1, minutes(5)), 2, minutes(10)), From: rollout.PhaseCurrent},
				{Rollout: withDigests(withTimeline(startedRollout(rev2), minutes(10).Add(time.Second), "webhook", minutes(10).Add(7*time.Second)),
					map[string]string{"app": digestApp150}), From: ""},
			},
		},
		{
			name:    "later submitted and first-running times never move the timeline",
			history: []rollout.Rollout{withTimeline(startedRollout(rev2), minutes(10).Add(time.Second), "webhook", minutes(10).Add(7*time.Second))},
			observation: observed(rev2, statusProgressing, minutes(12), map[string]rollout.PodFacts{hashV150: {
				Submitted: minutes(11), SubmittedBy: "informer", FirstRunning: minutes(11).Add(5 * time.Second), Pods: 2,
			}}),
		},
		{
			name:    "earlier submitted and first-running times move the timeline earlier",
			history: []rollout.Rollout{withTimeline(startedRollout(rev2), minutes(11), "webhook", minutes(11).Add(5*time.Second))},
			observation: observed(rev2, statusProgressing, minutes(12), map[string]rollout.PodFacts{hashV150: {
				Submitted: minutes(10).Add(time.Second), SubmittedBy: "informer", FirstRunning: minutes(10).Add(7 * time.Second), Pods: 2,
			}}),
			wantChanged: []rollout.Rollout{
				withTimeline(startedRollout(rev2), minutes(10).Add(time.Second), "informer", minutes(10).Add(7*time.Second)),
			},
		},
		{
			name:    "an earlier first-running time alone moves only first running",
			history: []rollout.Rollout{withTimeline(startedRollout(rev2), minutes(10).Add(time.Second), "webhook", minutes(11))},
			observation: observed(rev2, statusProgressing, minutes(12), map[string]rollout.PodFacts{hashV150: {
				Submitted: minutes(10).Add(3 * time.Second), SubmittedBy: "informer", FirstRunning: minutes(10).Add(7 * time.Second), Pods: 2,
			}}),
			wantChanged: []rollout.Rollout{
				withTimeline(startedRollout(rev2), minutes(10).Add(time.Second), "webhook", minutes(10).Add(7*time.Second)),
			},
		},
		{
			name:    "the same submitted time seen by another source does not change who submitted",
			history: []rollout.Rollout{withTimeline(startedRollout(rev2), minutes(10).Add(time.Second), "webhook", minutes(10).Add(7*time.Second))},
			observation: observed(rev2, statusProgressing, minutes(12), map[string]rollout.PodFacts{hashV150: {
				Submitted: minutes(10).Add(time.Second), SubmittedBy: "informer", FirstRunning: minutes(10).Add(7 * time.Second), Pods: 2,
			}}),
		},
		{
			name:    "zero pod times never clear the timeline",
			history: []rollout.Rollout{withTimeline(startedRollout(rev2), minutes(10).Add(time.Second), "webhook", minutes(10).Add(7*time.Second))},
			observation: observed(rev2, statusProgressing, minutes(12), map[string]rollout.PodFacts{hashV150: {
				SubmittedBy: "informer", Digests: map[string]string{}, Pods: 0,
			}}),
		},
		{
			name:    "digests fill per container name and are never overwritten",
			history: []rollout.Rollout{withDigests(startedRollout(rev2), map[string]string{"app": digestApp150})},
			observation: observed(rev2, statusProgressing, minutes(12), map[string]rollout.PodFacts{hashV150: {
				Digests: map[string]string{"app": digestOther, "migrate": digestMigrate150}, Pods: 2,
			}}),
			wantChanged: []rollout.Rollout{withDigests(startedRollout(rev2), map[string]string{"app": digestApp150, "migrate": digestMigrate150})},
		},
		{
			name:    "digests of unknown containers and empty digests are ignored",
			history: []rollout.Rollout{withDigests(startedRollout(rev2), map[string]string{"app": digestApp150})},
			observation: observed(rev2, statusProgressing, minutes(12), map[string]rollout.PodFacts{hashV150: {
				Digests: map[string]string{"log-shipper": digestOther, "migrate": ""}, Pods: 2,
			}}),
		},
		{
			name:    "facts of another revision key are ignored",
			history: []rollout.Rollout{superseded(completedRollout(rev1, minutes(5)), 2, minutes(10)), startedRollout(rev2)},
			observation: observed(rev2, statusProgressing, minutes(12), map[string]rollout.PodFacts{
				hashV140: factsV140[hashV140],
				hashV160: {Submitted: minutes(1), SubmittedBy: "webhook", FirstRunning: minutes(1), Digests: map[string]string{"app": digestOther}, Pods: 1},
			}),
		},
		{
			name:        "facts of a final latest are ignored",
			history:     []rollout.Rollout{deleted(startedRollout(rev1), minutes(3))},
			observation: observed(rev1, statusCurrent, minutes(4), factsV140),
		},
		{
			name:        "final phases never change: rolled back",
			history:     []rollout.Rollout{rolledBack(completedRollout(rev1, minutes(5)), 2, 1, minutes(10))},
			observation: observed(rev1, statusCurrent, minutes(11), factsV140),
		},
		{
			name:        "final phases never change: superseded",
			history:     []rollout.Rollout{superseded(startedRollout(rev1), 2, minutes(10))},
			observation: observed(rev1, statusFailed, minutes(11), factsV140),
		},
		{
			name:        "final phases never change: deleted",
			history:     []rollout.Rollout{deleted(failedRollout(rev1, minutes(8)), minutes(10))},
			observation: observed(rev1, statusCurrent, minutes(11), factsV140),
		},

		// Idempotence: the decision of an observation already applied is nothing.
		{
			name:        "an identical observation twice changes nothing",
			history:     []rollout.Rollout{timelineV140(completedRollout(rev1, minutes(5)))},
			observation: observed(rev1, statusCurrent, minutes(5), factsV140),
		},
		{
			name:        "the same state observed later changes nothing",
			history:     []rollout.Rollout{timelineV140(completedRollout(rev1, minutes(5)))},
			observation: observed(rev1, statusCurrent, minutes(90), factsV140),
		},
		{
			name:        "a deletion observed twice changes nothing",
			history:     []rollout.Rollout{deleted(completedRollout(rev1, minutes(5)), minutes(60))},
			observation: observedGone(minutes(61)),
		},
	}
	return cases
}

// modifiedObservation returns o changed by f.
func modifiedObservation(o rollout.Observation, f func(*rollout.Observation)) rollout.Observation {
	f(&o)
	return o
}

// TestDecide pins down Decide's decision for each case, and that it is pure: it mutates neither the history
// nor the observation, and the same inputs give the same decision.
func TestDecide(t *testing.T) {
	for _, tc := range decideCases() {
		t.Run(tc.name, func(t *testing.T) {
			if tc.bug != "" {
				t.Skip("BUG: " + tc.bug)
			}
			history, o := cloneHistory(tc.history), cloneObservation(tc.observation)
			gotChanged, gotTransitions := rollout.Decide(history, o)
			if diff := cmp.Diff(tc.wantChanged, gotChanged, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("Decide() changed mismatch (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantTransitions, gotTransitions, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("Decide() transitions mismatch (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.history, history, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("Decide() modified the history (-before +after):\n%s", diff)
			}
			if diff := cmp.Diff(tc.observation, o, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("Decide() modified the observation (-before +after):\n%s", diff)
			}

			againChanged, againTransitions := rollout.Decide(history, o)
			if diff := cmp.Diff(gotChanged, againChanged, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("Decide() changed differs on the same inputs (-first +second):\n%s", diff)
			}
			if diff := cmp.Diff(gotTransitions, againTransitions, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("Decide() transitions differ on the same inputs (-first +second):\n%s", diff)
			}
		})
	}
}

// TestDecideIdempotent applies each case's decision to its history, as the controller does, and decides the
// same observation again: nothing may change a second time, or a rollout would be written and announced once
// per reconcile.
func TestDecideIdempotent(t *testing.T) {
	for _, tc := range decideCases() {
		t.Run(tc.name, func(t *testing.T) {
			if tc.bug != "" {
				t.Skip("BUG: " + tc.bug)
			}
			changed, _ := rollout.Decide(cloneHistory(tc.history), cloneObservation(tc.observation))
			history := applied(tc.history, changed)
			gotChanged, gotTransitions := rollout.Decide(history, cloneObservation(tc.observation))
			if diff := cmp.Diff([]rollout.Rollout(nil), gotChanged, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("Decide() on its own decision changed mismatch (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff([]rollout.Transition(nil), gotTransitions, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("Decide() on its own decision transitions mismatch (-want +got):\n%s", diff)
			}
		})
	}
}
