package controller

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/deployment-tracker/deployment-tracker/internal/owner"
	"github.com/deployment-tracker/deployment-tracker/internal/rollout"
)

var (
	digestApp140     = "sha256:" + strings.Repeat("a1", 32)
	digestMigrate140 = "sha256:" + strings.Repeat("b2", 32)
)

// modified returns r changed by change.
func modified(r rollout.Rollout, change func(*rollout.Rollout)) rollout.Rollout {
	r.Containers = append([]rollout.Container(nil), r.Containers...)
	change(&r)
	return r
}

// started is the rollout of revision n of the template of hash as it starts from a Deployment rolling out,
// started at started.
func started(n int64, hash string, startedAt time.Time) rollout.Rollout {
	return rollout.Rollout{
		Workload: web, Revision: n, RevisionKey: hash, Containers: templateOf(hash),
		Phase: rollout.PhaseInProgress, Reason: "LessUpdated", Message: "Updated: 1/3",
		Started: startedAt, Ready: 1, Desired: 3,
	}
}

// completed is r once the Deployment is available, at completedAt.
func completed(r rollout.Rollout, completedAt time.Time) rollout.Rollout {
	return modified(r, func(r *rollout.Rollout) {
		r.Phase, r.Reason, r.Message = rollout.PhaseCurrent, "", "Deployment is available. Replicas: 3"
		r.Completed, r.Finished, r.Ready, r.Desired = completedAt, time.Time{}, 3, 3
	})
}

// failed is r once the Deployment is past its progress deadline, at failedAt.
func failed(r rollout.Rollout, failedAt time.Time) rollout.Rollout {
	return modified(r, func(r *rollout.Rollout) {
		r.Phase, r.Reason, r.Message = rollout.PhaseFailed, "ProgressDeadlineExceeded", "Progress deadline exceeded"
		r.Finished, r.Ready, r.Desired = failedAt, 1, 3
	})
}

// superseded is r once revision by started, at finishedAt.
func superseded(r rollout.Rollout, by int64, finishedAt time.Time) rollout.Rollout {
	return modified(r, func(r *rollout.Rollout) {
		r.Phase, r.Reason, r.Message = rollout.PhaseSuperseded, "Superseded", fmt.Sprintf("revision %d started", by)
		r.Finished = finishedAt
	})
}

// rolledBack is r once revision by brought back the template of revision restores, at finishedAt.
func rolledBack(r rollout.Rollout, by, restores int64, finishedAt time.Time) rollout.Rollout {
	return modified(r, func(r *rollout.Rollout) {
		r.Phase, r.Reason = rollout.PhaseRolledBack, "RolledBack"
		r.Message = fmt.Sprintf("revision %d brought back the template of revision %d", by, restores)
		r.Finished = finishedAt
	})
}

// deleted is r once its workload is gone, at finishedAt.
func deleted(r rollout.Rollout, finishedAt time.Time) rollout.Rollout {
	return modified(r, func(r *rollout.Rollout) {
		r.Phase, r.Reason, r.Message, r.Finished = rollout.PhaseDeleted, "WorkloadDeleted", "the workload was deleted", finishedAt
	})
}

// images is how an Event lists the containers of the template of hash.
func images(hash string) string {
	return "migrate=ghcr.io/octo-org/web-migrate:" + version(hash) + ", app=ghcr.io/octo-org/web:" + version(hash)
}

// step is one observation of a Reconcile test: the cluster as it is at a time, and what the controller does.
type step struct {
	what     string
	at       time.Time
	workload owner.Workload // zero: web
	objects  []client.Object
	// pods, when not nil, are reported by the tracker (PodsChanged) before reconciling.
	pods map[string]rollout.PodFacts
	// failPut are the revisions the ledger fails to write.
	failPut []int64

	wantErr       bool
	wantPut       []rollout.Rollout // written to the ledger, in order
	wantNotified  []rollout.Rollout
	wantForgotten []int64 // revisions of the workload
	wantEvents    []string
	wantHistory   []string // "<revision> <phase>" of History after the step
}

func (s step) target() owner.Workload {
	if s.workload == (owner.Workload{}) {
		return web
	}
	return s.workload
}

// summary is History as "<revision> <phase>".
func summary(h []rollout.Rollout) []string {
	var out []string
	for _, r := range h {
		out = append(out, fmt.Sprintf("%d %s", r.Revision, r.Phase))
	}
	return out
}

// run plays steps against e, one Reconcile each.
func (e *env) run(t *testing.T, steps []step) {
	t.Helper()
	for i, s := range steps {
		e.clock.set(s.at)
		e.cluster.set(s.objects...)
		e.ledger.fail(s.failPut)
		w := s.target()
		if s.pods != nil {
			e.c.PodsChanged(w, s.pods)
		}
		_, err := e.c.Reconcile(t.Context(), w)
		switch {
		case s.wantErr && !errors.Is(err, errLedgerDown):
			t.Errorf("step %d (%s): Reconcile() error = %v, want %v", i, s.what, err, errLedgerDown)
		case !s.wantErr && err != nil:
			t.Errorf("step %d (%s): Reconcile() error = %v", i, s.what, err)
		}
		notified, forgot := e.notifier.take()
		var forgotRevisions []int64
		for _, f := range forgot {
			if f.Workload != w {
				t.Errorf("step %d (%s): Forget(%s, %d), want only rollouts of %s", i, s.what, f.Workload, f.Revision, w)
			}
			forgotRevisions = append(forgotRevisions, f.Revision)
		}
		for _, c := range []struct {
			what      string
			want, got any
		}{
			{"ledger writes", s.wantPut, e.ledger.take()},
			{"notified", s.wantNotified, notified},
			{"forgotten revisions", s.wantForgotten, forgotRevisions},
			{"Events", s.wantEvents, e.events()},
			{"History", s.wantHistory, summary(e.c.History(w))},
		} {
			if diff := cmp.Diff(c.want, c.got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("step %d (%s): %s mismatch (-want +got):\n%s", i, s.what, c.what, diff)
			}
		}
	}
}

// daemonSet returns the DaemonSet shop/agent at generation, running image, updated on updated of 3 nodes.
func daemonSet(generation int64, image string, updated int32) *appsv1.DaemonSet {
	return &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "agent", UID: "uid-agent", Generation: generation},
		Spec: appsv1.DaemonSetSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
			Containers: []corev1.Container{{Name: "agent", Image: image}},
		}}},
		Status: appsv1.DaemonSetStatus{
			ObservedGeneration: generation, DesiredNumberScheduled: 3, CurrentNumberScheduled: 3,
			UpdatedNumberScheduled: updated, NumberAvailable: 3, NumberReady: 3,
		},
	}
}

func TestReconcile(t *testing.T) {
	rev1 := started(1, hashV140, at(1))
	rev2 := started(2, hashV150, at(10))
	rev3 := started(3, hashV160, at(20))
	firstRS := step{
		what:         "the Deployment's first ReplicaSet appears",
		at:           at(1),
		objects:      []client.Object{deployment(1, hashV140, rollingOut), replicaSet("web", hashV140, "1", at(1))},
		wantPut:      []rollout.Rollout{rev1},
		wantNotified: []rollout.Rollout{rev1},
		wantEvents:   []string{"Normal RolloutStarted Rollout of revision 1 started: " + images(hashV140)},
		wantHistory:  []string{"1 InProgress"},
	}
	firstAvailable := step{
		what:         "revision 1 becomes available",
		at:           at(3),
		objects:      []client.Object{deployment(1, hashV140, available), replicaSet("web", hashV140, "1", at(1))},
		wantPut:      []rollout.Rollout{completed(rev1, at(3))},
		wantNotified: []rollout.Rollout{completed(rev1, at(3))},
		wantEvents:   []string{"Normal RolloutCompleted Revision 1 is available: 3/3 ready after 2m0s"},
		wantHistory:  []string{"1 Current"},
	}
	secondRS := step{
		what: "a new template makes revision 2",
		at:   at(10),
		objects: []client.Object{
			deployment(2, hashV150, rollingOut), replicaSet("web", hashV140, "1", at(1)), replicaSet("web", hashV150, "2", at(10)),
		},
		wantPut:      []rollout.Rollout{superseded(completed(rev1, at(3)), 2, at(10)), rev2},
		wantNotified: []rollout.Rollout{superseded(completed(rev1, at(3)), 2, at(10)), rev2},
		wantEvents:   []string{"Normal RolloutStarted Rollout of revision 2 started: " + images(hashV150)},
		wantHistory:  []string{"1 Superseded", "2 InProgress"},
	}
	tests := []struct {
		name       string
		configure  func(*Config)
		steps      []step
		regression string
	}{
		{
			name: "a Deployment rolls out and completes",
			steps: []step{
				{
					what:    "the Deployment is created, its ReplicaSet not in the cache yet",
					at:      at(1),
					objects: []client.Object{deployment(1, hashV140, rollingOut)},
				},
				firstRS,
				{
					what:        "nothing changed",
					at:          at(2),
					objects:     firstRS.objects,
					wantHistory: []string{"1 InProgress"},
				},
				firstAvailable,
				{
					what:        "still available: a Current rollout stays as it is",
					at:          at(4),
					objects:     firstAvailable.objects,
					wantHistory: []string{"1 Current"},
				},
			},
		},
		{
			name: "a new revision supersedes the current one",
			steps: []step{
				firstRS, firstAvailable, secondRS,
				{
					what: "revision 2 becomes available",
					at:   at(12),
					objects: []client.Object{
						deployment(2, hashV150, available), replicaSet("web", hashV140, "1", at(1)), replicaSet("web", hashV150, "2", at(10)),
					},
					wantPut:      []rollout.Rollout{completed(rev2, at(12))},
					wantNotified: []rollout.Rollout{completed(rev2, at(12))},
					wantEvents:   []string{"Normal RolloutCompleted Revision 2 is available: 3/3 ready after 2m0s"},
					wantHistory:  []string{"1 Superseded", "2 Current"},
				},
				{
					what: "the cache lags: revision 2's ReplicaSet is not seen",
					at:   at(13),
					objects: []client.Object{
						deployment(2, hashV150, available), replicaSet("web", hashV140, "1", at(1)),
					},
					wantHistory: []string{"1 Superseded", "2 Current"},
				},
			},
		},
		{
			name: "a rollout past its progress deadline fails, then recovers",
			steps: []step{
				firstRS,
				{
					what:         "the progress deadline passes",
					at:           at(11),
					objects:      []client.Object{deployment(1, hashV140, deadlineExceeded), replicaSet("web", hashV140, "1", at(1))},
					wantPut:      []rollout.Rollout{failed(rev1, at(11))},
					wantNotified: []rollout.Rollout{failed(rev1, at(11))},
					wantEvents:   []string{"Warning RolloutFailed Revision 1 failed: ProgressDeadlineExceeded: Progress deadline exceeded"},
					wantHistory:  []string{"1 Failed"},
				},
				{
					what:         "the pods come up after all",
					at:           at(15),
					objects:      firstAvailable.objects,
					wantPut:      []rollout.Rollout{completed(failed(rev1, at(11)), at(15))},
					wantNotified: []rollout.Rollout{completed(failed(rev1, at(11)), at(15))},
					wantEvents:   []string{"Normal RolloutCompleted Revision 1 is available: 3/3 ready after 14m0s"},
					wantHistory:  []string{"1 Current"},
				},
			},
		},
		{
			name: "a rollback makes an old ReplicaSet the highest revision",
			steps: []step{
				firstRS, firstAvailable, secondRS,
				{
					what: "revision 2 is past its progress deadline",
					at:   at(20),
					objects: []client.Object{
						deployment(2, hashV150, deadlineExceeded), replicaSet("web", hashV140, "1", at(1)), replicaSet("web", hashV150, "2", at(10)),
					},
					wantPut:      []rollout.Rollout{failed(rev2, at(20))},
					wantNotified: []rollout.Rollout{failed(rev2, at(20))},
					wantEvents:   []string{"Warning RolloutFailed Revision 2 failed: ProgressDeadlineExceeded: Progress deadline exceeded"},
					wantHistory:  []string{"1 Superseded", "2 Failed"},
				},
				{
					what: "kubectl rollout undo: revision 1's ReplicaSet is renumbered 3",
					at:   at(25),
					objects: []client.Object{
						deployment(3, hashV140, rollingOut), replicaSet("web", hashV140, "3", at(1)), replicaSet("web", hashV150, "2", at(10)),
					},
					wantPut: []rollout.Rollout{
						rolledBack(failed(rev2, at(20)), 3, 1, at(25)),
						modified(started(3, hashV140, at(25)), func(r *rollout.Rollout) { r.Restores = 1 }),
					},
					wantNotified: []rollout.Rollout{
						rolledBack(failed(rev2, at(20)), 3, 1, at(25)),
						modified(started(3, hashV140, at(25)), func(r *rollout.Rollout) { r.Restores = 1 }),
					},
					wantEvents: []string{
						"Warning RolloutRolledBack Revision 2 rolled back: revision 3 brought back the template of revision 1",
						"Normal RolloutStarted Rollout of revision 3 started, restoring revision 1: " + images(hashV140),
					},
					wantHistory: []string{"1 Superseded", "2 RolledBack", "3 InProgress"},
				},
			},
		},
		{
			name: "a deleted Deployment ends its latest rollout",
			steps: []step{
				firstRS, firstAvailable,
				{
					what:         "the Deployment is gone",
					at:           at(30),
					wantPut:      []rollout.Rollout{deleted(completed(rev1, at(3)), at(30))},
					wantNotified: []rollout.Rollout{deleted(completed(rev1, at(3)), at(30))},
					wantHistory:  []string{"1 Deleted"},
				},
				{
					what:        "still gone",
					at:          at(31),
					wantHistory: []string{"1 Deleted"},
				},
			},
		},
		{
			name: "a Deployment being deleted ends its latest rollout",
			steps: []step{
				firstRS,
				{
					what: "the Deployment has a deletion timestamp, its finalizer pending",
					at:   at(30),
					objects: []client.Object{
						func() client.Object {
							d := deployment(1, hashV140, rollingOut)
							d.DeletionTimestamp = &metav1.Time{Time: at(29)}
							d.Finalizers = []string{"foregroundDeletion"}
							return d
						}(),
						replicaSet("web", hashV140, "1", at(1)),
					},
					wantPut:      []rollout.Rollout{deleted(rev1, at(30))},
					wantNotified: []rollout.Rollout{deleted(rev1, at(30))},
					wantHistory:  []string{"1 Deleted"},
				},
			},
		},
		{
			name: "a ledger failure writes, keeps and announces nothing; the retry decides again",
			steps: []step{
				{
					what:    "the ledger is down as the first ReplicaSet appears",
					at:      at(1),
					objects: firstRS.objects,
					failPut: []int64{1},
					wantErr: true,
				},
				func() step { s := firstRS; s.what, s.at = "the retry", at(2); return s }(),
			},
		},
		{
			name: "a ledger failure on the second write of a transition: the retry writes both again",
			steps: []step{
				firstRS,
				{
					what:    "revision 2 starts; writing it fails after revision 1 was written superseded",
					at:      at(10),
					objects: secondRS.objects,
					failPut: []int64{2},
					wantErr: true,
					wantPut: []rollout.Rollout{superseded(rev1, 2, at(10))},
					// Nothing kept: revision 1 is still in progress as far as the controller knows.
					wantHistory: []string{"1 InProgress"},
				},
				{
					what:         "the retry",
					at:           at(11),
					objects:      secondRS.objects,
					wantPut:      []rollout.Rollout{superseded(rev1, 2, at(11)), rev2},
					wantNotified: []rollout.Rollout{superseded(rev1, 2, at(11)), rev2},
					wantEvents:   []string{"Normal RolloutStarted Rollout of revision 2 started: " + images(hashV150)},
					wantHistory:  []string{"1 Superseded", "2 InProgress"},
				},
			},
		},
		{
			name: "what the tracker reports of the pods fills in the rollout's timeline",
			steps: []step{
				func() step {
					s := firstRS
					s.pods = map[string]rollout.PodFacts{hashV140: {Submitted: at(1).Add(3 * time.Second), SubmittedBy: "webhook"}}
					r := modified(rev1, func(r *rollout.Rollout) { r.Submitted, r.SubmittedBy = at(1).Add(3*time.Second), "webhook" })
					s.wantPut, s.wantNotified = []rollout.Rollout{r}, []rollout.Rollout{r}
					return s
				}(),
				{
					what:    "the first pod runs",
					at:      at(2),
					objects: firstRS.objects,
					pods: map[string]rollout.PodFacts{
						hashV140: {
							Submitted: at(1).Add(3 * time.Second), SubmittedBy: "webhook", FirstRunning: at(1).Add(40 * time.Second),
							Digests: map[string]string{"app": digestApp140, "migrate": digestMigrate140}, Pods: 1,
						},
						hashV150: {Submitted: at(0), SubmittedBy: "informer", Digests: map[string]string{"app": "sha256:other"}},
					},
					wantPut: []rollout.Rollout{modified(rev1, func(r *rollout.Rollout) {
						r.Submitted, r.SubmittedBy, r.FirstRunning = at(1).Add(3*time.Second), "webhook", at(1).Add(40*time.Second)
						r.Containers[0].Digest, r.Containers[1].Digest = digestMigrate140, digestApp140
					})},
					wantNotified: []rollout.Rollout{modified(rev1, func(r *rollout.Rollout) {
						r.Submitted, r.SubmittedBy, r.FirstRunning = at(1).Add(3*time.Second), "webhook", at(1).Add(40*time.Second)
						r.Containers[0].Digest, r.Containers[1].Digest = digestMigrate140, digestApp140
					})},
					wantHistory: []string{"1 InProgress"},
				},
				{
					what:    "more pods run, later: the earliest times stay",
					at:      at(3),
					objects: firstRS.objects,
					pods: map[string]rollout.PodFacts{hashV140: {
						Submitted: at(2), SubmittedBy: "informer", FirstRunning: at(3),
						Digests: map[string]string{"app": digestApp140, "migrate": digestMigrate140}, Pods: 3,
					}},
					wantHistory: []string{"1 InProgress"},
				},
			},
		},
		{
			name:      "history is kept to Config.History, the dropped revisions forgotten",
			configure: func(cfg *Config) { cfg.History = 2 },
			steps: []step{
				firstRS, firstAvailable, secondRS,
				{
					what: "revision 3 starts",
					at:   at(20),
					objects: []client.Object{
						deployment(3, hashV160, rollingOut), replicaSet("web", hashV140, "1", at(1)),
						replicaSet("web", hashV150, "2", at(10)), replicaSet("web", hashV160, "3", at(20)),
					},
					wantPut:       []rollout.Rollout{superseded(rev2, 3, at(20)), rev3},
					wantNotified:  []rollout.Rollout{superseded(rev2, 3, at(20)), rev3},
					wantForgotten: []int64{1},
					wantEvents:    []string{"Normal RolloutStarted Rollout of revision 3 started: " + images(hashV160)},
					wantHistory:   []string{"2 Superseded", "3 InProgress"},
				},
			},
		},
		{
			name:      "finished rollouts older than Config.MaxAge are dropped and forgotten",
			configure: func(cfg *Config) { cfg.MaxAge = time.Hour },
			steps: []step{
				firstRS, firstAvailable, secondRS,
				{
					what: "revision 3 starts, revision 1 finished more than an hour ago",
					at:   at(80),
					objects: []client.Object{
						deployment(3, hashV160, rollingOut), replicaSet("web", hashV140, "1", at(1)),
						replicaSet("web", hashV150, "2", at(10)), replicaSet("web", hashV160, "3", at(80)),
					},
					wantPut:       []rollout.Rollout{superseded(rev2, 3, at(80)), started(3, hashV160, at(80))},
					wantNotified:  []rollout.Rollout{superseded(rev2, 3, at(80)), started(3, hashV160, at(80))},
					wantForgotten: []int64{1},
					wantEvents:    []string{"Normal RolloutStarted Rollout of revision 3 started: " + images(hashV160)},
					wantHistory:   []string{"2 Superseded", "3 InProgress"},
				},
			},
			regression: "retain drops aged rollouts with slices.DeleteFunc, which shifts and zeroes the caller's slice in place: " +
				"Reconcile then hands that mangled slice to forget as the history before, so the dropped revision 1 is " +
				"never forgotten (the dispatcher keeps its entries) and Forget(w, 0) is called for the zeroed tail instead",
		},
		{
			name: "a rollout complete before the controller watched is adopted: recorded, not announced",
			steps: []step{
				{
					what:    "first sight of an available Deployment whose ReplicaSet was created before the controller",
					at:      at(1),
					objects: []client.Object{deployment(1, hashV140, available), replicaSet("web", hashV140, "1", at(-30))},
					wantPut: []rollout.Rollout{adoptedRev1()},
					// No notification, no Event.
					wantHistory: []string{"1 Current"},
				},
				{
					what: "a new template makes revision 2: the adopted rollout is superseded, silently; revision 2 is announced",
					at:   at(10),
					objects: []client.Object{
						deployment(2, hashV150, rollingOut), replicaSet("web", hashV140, "1", at(-30)), replicaSet("web", hashV150, "2", at(10)),
					},
					wantPut:      []rollout.Rollout{superseded(adoptedRev1(), 2, at(10)), rev2},
					wantNotified: []rollout.Rollout{rev2},
					wantEvents:   []string{"Normal RolloutStarted Rollout of revision 2 started: " + images(hashV150)},
					wantHistory:  []string{"1 Superseded", "2 InProgress"},
				},
			},
		},
		{
			name: "the deletion of a workload whose rollout was adopted is announced",
			steps: []step{
				{
					what:        "first sight of an available Deployment whose ReplicaSet was created before the controller",
					at:          at(1),
					objects:     []client.Object{deployment(1, hashV140, available), replicaSet("web", hashV140, "1", at(-30))},
					wantPut:     []rollout.Rollout{adoptedRev1()},
					wantHistory: []string{"1 Current"},
				},
				{
					what:         "the Deployment is gone",
					at:           at(10),
					wantPut:      []rollout.Rollout{deleted(adoptedRev1(), at(10))},
					wantNotified: []rollout.Rollout{deleted(adoptedRev1(), at(10))},
					wantHistory:  []string{"1 Deleted"},
				},
			},
		},
		{
			name: "deleted and created again under the same name: its revisions start over, the old ones forgotten",
			steps: []step{
				firstRS, firstAvailable, secondRS,
				{
					what:         "the Deployment is gone",
					at:           at(20),
					wantPut:      []rollout.Rollout{deleted(rev2, at(20))},
					wantNotified: []rollout.Rollout{deleted(rev2, at(20))},
					wantHistory:  []string{"1 Superseded", "2 Deleted"},
				},
				{
					what:    "created again within deletedGrace: its first ReplicaSet is revision 1 again",
					at:      at(25),
					objects: []client.Object{deployment(1, hashV160, rollingOut), replicaSet("web", hashV160, "1", at(25))},
					wantPut: []rollout.Rollout{started(1, hashV160, at(25))},
					// The dispatcher must drop what it keeps of the old incarnation's revisions (revision 1 is about
					// to be notified anew, with nothing acknowledged).
					wantForgotten: []int64{1, 2},
					wantNotified:  []rollout.Rollout{started(1, hashV160, at(25))},
					wantEvents:    []string{"Normal RolloutStarted Rollout of revision 1 started: " + images(hashV160)},
					wantHistory:   []string{"1 InProgress"},
				},
			},
			regression: "when a workload is created again, Reconcile starts its history over (history = nil) and passes that " +
				"fresh history to forget as the one before: the previous incarnation's revisions are never forgotten " +
				"(dropDeleted does not see them either, the latest rollout is no longer Deleted), so the dispatcher keeps " +
				"their entries and delivers the new revision 1 as an update of the old revision 1 (its acknowledged " +
				"phase Superseded/Deleted and its sink state, e.g. the old chat message), instead of as a new rollout",
		},
		{
			name: "a DaemonSet rolls out",
			steps: []step{
				{
					what:     "its first ControllerRevision, 1 of 3 nodes updated",
					at:       at(1),
					workload: owner.Workload{Group: "apps", Kind: "DaemonSet", Namespace: "shop", Name: "agent"},
					objects: []client.Object{
						daemonSet(1, "ghcr.io/octo-org/agent:2.0.0", 1),
						controllerRevision("DaemonSet", "agent", "agent-5d4f8b7c9", "5d4f8b7c9", 1, at(1)),
					},
					wantPut:      []rollout.Rollout{agentRollout()},
					wantNotified: []rollout.Rollout{agentRollout()},
					wantEvents:   []string{"Normal RolloutStarted Rollout of revision 1 started: agent=ghcr.io/octo-org/agent:2.0.0"},
					wantHistory:  []string{"1 InProgress"},
				},
				{
					what:     "every node updated",
					at:       at(2),
					workload: owner.Workload{Group: "apps", Kind: "DaemonSet", Namespace: "shop", Name: "agent"},
					objects: []client.Object{
						daemonSet(1, "ghcr.io/octo-org/agent:2.0.0", 3),
						controllerRevision("DaemonSet", "agent", "agent-5d4f8b7c9", "5d4f8b7c9", 1, at(1)),
					},
					wantPut: []rollout.Rollout{modified(agentRollout(), func(r *rollout.Rollout) {
						r.Phase, r.Reason, r.Message, r.Completed = rollout.PhaseCurrent, "", "All replicas scheduled as expected. Replicas: 3", at(2)
					})},
					wantNotified: []rollout.Rollout{modified(agentRollout(), func(r *rollout.Rollout) {
						r.Phase, r.Reason, r.Message, r.Completed = rollout.PhaseCurrent, "", "All replicas scheduled as expected. Replicas: 3", at(2)
					})},
					wantEvents:  []string{"Normal RolloutCompleted Revision 1 is available: 3/3 ready after 1m0s"},
					wantHistory: []string{"1 Current"},
				},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, tc.configure)
			e.start(t)
			e.run(t, tc.steps)
		})
	}
}

// adoptedRev1 is the rollout of revision 1 adopted at minute 1, its ReplicaSet created half an hour before.
func adoptedRev1() rollout.Rollout {
	return rollout.Rollout{
		Workload: web, Revision: 1, RevisionKey: hashV140, Containers: templateOf(hashV140),
		Phase: rollout.PhaseCurrent, Message: "Deployment is available. Replicas: 3", Adopted: true,
		Started: at(-30), Completed: at(1), Ready: 3, Desired: 3,
	}
}

// agentRollout is the rollout of the DaemonSet shop/agent's first revision as it starts.
func agentRollout() rollout.Rollout {
	return rollout.Rollout{
		Workload:    owner.Workload{Group: "apps", Kind: "DaemonSet", Namespace: "shop", Name: "agent"},
		Revision:    1,
		RevisionKey: "5d4f8b7c9",
		Containers:  []rollout.Container{{Name: "agent", Image: "ghcr.io/octo-org/agent:2.0.0"}},
		Phase:       rollout.PhaseInProgress, Reason: "LessUpdated", Message: "Updated: 1/3",
		Started: at(1), Ready: 3, Desired: 3,
	}
}

func TestReconcileIgnores(t *testing.T) {
	tests := []struct {
		name     string
		workload owner.Workload
		objects  []client.Object
	}{
		{
			name:     "a Deployment in an excluded namespace",
			workload: owner.Workload{Group: "apps", Kind: "Deployment", Namespace: "kube-system", Name: "web"},
			objects: []client.Object{
				func() client.Object { d := deployment(1, hashV140, rollingOut); d.Namespace = "kube-system"; return d }(),
				modifiedRS(replicaSet("web", hashV140, "1", at(1)), func(rs *appsv1.ReplicaSet) { rs.Namespace = "kube-system" }),
			},
		},
		{
			name:     "an Argo Rollout: its revisions are known, its readiness is not modelled",
			workload: owner.Workload{Group: "argoproj.io", Kind: "Rollout", Namespace: "shop", Name: "checkout"},
			objects:  []client.Object{argoReplicaSet(hashV140, "4", at(1))},
		},
		{
			name:     "a Job",
			workload: owner.Workload{Group: "batch", Kind: "Job", Namespace: "shop", Name: "web"},
		},
		{
			name:     "a bare Pod",
			workload: owner.Workload{Kind: "Pod", Namespace: "shop", Name: "web"},
		},
		{
			name:     "a ReplicaSet",
			workload: owner.Workload{Group: "apps", Kind: "ReplicaSet", Namespace: "shop", Name: "web-" + hashV140},
			objects:  []client.Object{replicaSet("web", hashV140, "1", at(1))},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, nil)
			e.start(t)
			e.clock.set(at(1))
			e.cluster.set(tc.objects...)
			e.c.PodsChanged(tc.workload, map[string]rollout.PodFacts{hashV140: {Submitted: at(1), SubmittedBy: "webhook"}})
			if _, err := e.c.Reconcile(t.Context(), tc.workload); err != nil {
				t.Fatalf("Reconcile() error = %v", err)
			}
			notified, forgot := e.notifier.take()
			e.c.mu.Lock()
			facts := len(e.c.facts)
			e.c.mu.Unlock()
			for _, c := range []struct {
				what      string
				want, got any
			}{
				{"ledger writes", []rollout.Rollout(nil), e.ledger.take()},
				{"notified", []rollout.Rollout(nil), notified},
				{"forgotten", []forgotten(nil), forgot},
				{"Events", []string(nil), e.events()},
				{"History", []rollout.Rollout(nil), e.c.History(tc.workload)},
				{"enqueued by PodsChanged", []owner.Workload(nil), e.enqueued()},
				{"workloads with pod facts kept", 0, facts},
			} {
				if diff := cmp.Diff(c.want, c.got, cmpopts.EquateEmpty()); diff != "" {
					t.Errorf("%s mismatch (-want +got):\n%s", c.what, diff)
				}
			}
		})
	}
}

func TestPodsChanged(t *testing.T) {
	e := newEnv(t, nil)
	facts := map[string]rollout.PodFacts{hashV140: {Submitted: at(1), SubmittedBy: "webhook"}}
	e.c.PodsChanged(web, facts)
	if diff := cmp.Diff([]owner.Workload{web}, e.enqueued()); diff != "" {
		t.Errorf("enqueued mismatch (-want +got):\n%s", diff)
	}
	e.c.mu.Lock()
	got := e.c.facts[web]
	e.c.mu.Unlock()
	if diff := cmp.Diff(facts, got); diff != "" {
		t.Errorf("facts kept mismatch (-want +got):\n%s", diff)
	}

	e.c.PodsChanged(web, nil) // no pods left
	if diff := cmp.Diff([]owner.Workload{web}, e.enqueued()); diff != "" {
		t.Errorf("enqueued after no pods mismatch (-want +got):\n%s", diff)
	}
	e.c.mu.Lock()
	_, kept := e.c.facts[web]
	e.c.mu.Unlock()
	if kept {
		t.Error("facts still kept after PodsChanged(w, nil)")
	}
}

func TestReconcileWaitsForResume(t *testing.T) {
	e := newEnv(t, nil)
	e.cluster.set(firstRSObjects()...)
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if _, err := e.c.Reconcile(ctx, web); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Reconcile() before Start error = %v, want %v", err, context.DeadlineExceeded)
	}
	if got := e.ledger.take(); len(got) != 0 {
		t.Errorf("Reconcile() before Start wrote %d rollouts, want none", len(got))
	}
}

func TestReconcileWithoutLedger(t *testing.T) {
	e := newEnv(t, func(cfg *Config) { cfg.Ledger = nil })
	e.cluster.set(firstRSObjects()...)
	e.clock.set(at(1))
	// No Start: without a ledger there is nothing to resume from.
	if _, err := e.c.Reconcile(t.Context(), web); err != nil {
		t.Fatalf("Reconcile() error = %v", err)
	}
	notified, _ := e.notifier.take()
	if diff := cmp.Diff([]rollout.Rollout{started(1, hashV140, at(1))}, notified); diff != "" {
		t.Errorf("notified mismatch (-want +got):\n%s", diff)
	}
}

// firstRSObjects is the Deployment shop/web rolling out its first ReplicaSet.
func firstRSObjects() []client.Object {
	return []client.Object{deployment(1, hashV140, rollingOut), replicaSet("web", hashV140, "1", at(1))}
}

// TestReconcileOutOfScope: a workload out of the tracker's scope has nothing decided, what it had before stays
// as it is and is decided on when it comes back; its deletion ends what was announced.
func TestReconcileOutOfScope(t *testing.T) {
	in, scopeErr := true, error(nil)
	var asked []string
	e := newEnv(t, func(cfg *Config) {
		cfg.InScope = func(_ context.Context, obj client.Object) (bool, error) {
			asked = append(asked, obj.GetNamespace()+"/"+obj.GetName())
			return in, scopeErr
		}
	})
	e.start(t)
	reconcileOnce := func(step string) []rollout.Rollout {
		t.Helper()
		if _, err := e.c.Reconcile(t.Context(), web); err != nil {
			t.Fatalf("%s: Reconcile() error = %v", step, err)
		}
		notified, _ := e.notifier.take()
		return notified
	}
	check := func(step string, want, got []rollout.Rollout) {
		t.Helper()
		if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("%s: notified mismatch (-want +got):\n%s", step, diff)
		}
	}

	in = false
	e.clock.set(at(1))
	e.cluster.set(firstRSObjects()...)
	check("out of the scope from the start", nil, reconcileOnce("out of the scope"))
	if got := e.ledger.take(); len(got) != 0 || len(e.c.History(web)) != 0 || len(e.events()) != 0 {
		t.Errorf("out of the scope: wrote %d rollouts, kept %d, emitted Events; want none", len(got), len(e.c.History(web)))
	}

	in = true
	rev1 := started(1, hashV140, at(1))
	check("in the scope", []rollout.Rollout{rev1}, reconcileOnce("in the scope"))

	in = false
	e.clock.set(at(3))
	e.cluster.set(deployment(1, hashV140, available), replicaSet("web", hashV140, "1", at(1)))
	check("left the scope while rolling out", nil, reconcileOnce("left the scope"))
	if diff := cmp.Diff([]rollout.Rollout{rev1}, e.c.History(web)); diff != "" {
		t.Errorf("left the scope: history mismatch (-want +got):\n%s", diff)
	}

	scopeErr = errors.New("namespace cache not synced")
	if _, err := e.c.Reconcile(t.Context(), web); err == nil {
		t.Error("Reconcile() with the scope unreadable: no error, want one (retried)")
	}
	scopeErr = nil

	in = true
	e.clock.set(at(4))
	check("back in the scope", []rollout.Rollout{completed(rev1, at(4))}, reconcileOnce("back in the scope"))

	in = false
	e.clock.set(at(5))
	e.cluster.set()
	check("deleted out of the scope", []rollout.Rollout{deleted(completed(rev1, at(4)), at(5))}, reconcileOnce("deleted"))
	if want := 5; len(asked) != want { // not asked once the workload is gone
		t.Errorf("InScope asked %d times (%v), want %d", len(asked), asked, want)
	}
}
