package controller

import (
	"cmp"
	"slices"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/deployment-tracker/deployment-tracker/internal/owner"
	"github.com/deployment-tracker/deployment-tracker/internal/rollout"
)

// days returns the time n days after t0.
func days(n float64) time.Time { return t0.Add(time.Duration(n * float64(24*time.Hour))) }

// ro is the rollout of revision n of web in phase, started and finished (zero: not) at the times given.
func ro(n int64, phase rollout.Phase, startedAt, finishedAt time.Time) rollout.Rollout {
	return rollout.Rollout{Workload: web, Revision: n, RevisionKey: "hash-" + itoa(n), Phase: phase, Started: startedAt, Finished: finishedAt}
}

func TestRetain(t *testing.T) {
	now := days(10)
	tests := []struct {
		name    string
		history []rollout.Rollout
		keep    int
		maxAge  time.Duration
		want    []rollout.Rollout
	}{
		{
			name: "no rollouts",
			keep: 10, maxAge: 24 * time.Hour,
		},
		{
			name: "fewer than keep, none too old: all stay",
			history: []rollout.Rollout{
				ro(1, rollout.PhaseSuperseded, days(9), days(9.5)), ro(2, rollout.PhaseCurrent, days(9.5), time.Time{}),
			},
			keep: 10, maxAge: 24 * time.Hour,
			want: []rollout.Rollout{
				ro(1, rollout.PhaseSuperseded, days(9), days(9.5)), ro(2, rollout.PhaseCurrent, days(9.5), time.Time{}),
			},
		},
		{
			name: "more than keep: the newest keep stay, whatever their phase",
			history: []rollout.Rollout{
				ro(1, rollout.PhaseSuperseded, days(9), days(9.1)), ro(2, rollout.PhaseInProgress, days(9.1), time.Time{}),
				ro(3, rollout.PhaseRolledBack, days(9.2), days(9.3)), ro(4, rollout.PhaseCurrent, days(9.3), time.Time{}),
			},
			keep: 2, maxAge: 24 * time.Hour,
			want: []rollout.Rollout{
				ro(3, rollout.PhaseRolledBack, days(9.2), days(9.3)), ro(4, rollout.PhaseCurrent, days(9.3), time.Time{}),
			},
		},
		{
			name: "exactly keep: all stay",
			history: []rollout.Rollout{
				ro(1, rollout.PhaseSuperseded, days(9), days(9.1)), ro(2, rollout.PhaseCurrent, days(9.1), time.Time{}),
			},
			keep: 2, maxAge: 24 * time.Hour,
			want: []rollout.Rollout{
				ro(1, rollout.PhaseSuperseded, days(9), days(9.1)), ro(2, rollout.PhaseCurrent, days(9.1), time.Time{}),
			},
		},
		{
			name: "final rollouts that finished more than maxAge ago go",
			history: []rollout.Rollout{
				ro(1, rollout.PhaseSuperseded, days(1), days(2)), ro(2, rollout.PhaseRolledBack, days(2), days(3)),
				ro(3, rollout.PhaseSuperseded, days(3), days(9.5)), ro(4, rollout.PhaseCurrent, days(9.5), time.Time{}),
			},
			keep: 10, maxAge: 24 * time.Hour,
			want: []rollout.Rollout{
				ro(3, rollout.PhaseSuperseded, days(3), days(9.5)), ro(4, rollout.PhaseCurrent, days(9.5), time.Time{}),
			},
		},
		{
			name: "a final rollout that finished exactly maxAge ago stays",
			history: []rollout.Rollout{
				ro(1, rollout.PhaseSuperseded, days(8), days(9)), ro(2, rollout.PhaseCurrent, days(9), time.Time{}),
			},
			keep: 10, maxAge: 24 * time.Hour,
			want: []rollout.Rollout{
				ro(1, rollout.PhaseSuperseded, days(8), days(9)), ro(2, rollout.PhaseCurrent, days(9), time.Time{}),
			},
		},
		{
			name: "a final rollout without a finish time is aged from its start",
			history: []rollout.Rollout{
				ro(1, rollout.PhaseSuperseded, days(1), time.Time{}), ro(2, rollout.PhaseSuperseded, days(9.5), time.Time{}),
				ro(3, rollout.PhaseCurrent, days(9.5), time.Time{}),
			},
			keep: 10, maxAge: 24 * time.Hour,
			want: []rollout.Rollout{
				ro(2, rollout.PhaseSuperseded, days(9.5), time.Time{}), ro(3, rollout.PhaseCurrent, days(9.5), time.Time{}),
			},
		},
		{
			name: "rollouts not final stay however old: Failed, Current, InProgress",
			history: []rollout.Rollout{
				ro(1, rollout.PhaseFailed, days(1), days(1.5)), ro(2, rollout.PhaseInProgress, days(2), time.Time{}),
				ro(3, rollout.PhaseCurrent, days(3), time.Time{}),
			},
			keep: 10, maxAge: 24 * time.Hour,
			want: []rollout.Rollout{
				ro(1, rollout.PhaseFailed, days(1), days(1.5)), ro(2, rollout.PhaseInProgress, days(2), time.Time{}),
				ro(3, rollout.PhaseCurrent, days(3), time.Time{}),
			},
		},
		{
			name: "the latest rollout stays however old, final or not",
			history: []rollout.Rollout{
				ro(1, rollout.PhaseSuperseded, days(1), days(2)), ro(2, rollout.PhaseDeleted, days(2), days(3)),
			},
			keep: 10, maxAge: 24 * time.Hour,
			want: []rollout.Rollout{ro(2, rollout.PhaseDeleted, days(2), days(3))},
		},
		{
			name: "keep first, then age among the kept",
			history: []rollout.Rollout{
				ro(1, rollout.PhaseSuperseded, days(9.9), days(9.9)), ro(2, rollout.PhaseSuperseded, days(1), days(2)),
				ro(3, rollout.PhaseSuperseded, days(2), days(3)), ro(4, rollout.PhaseCurrent, days(3), time.Time{}),
			},
			keep: 3, maxAge: 24 * time.Hour,
			want: []rollout.Rollout{ro(4, rollout.PhaseCurrent, days(3), time.Time{})},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := retain(slices.Clone(tc.history), tc.keep, tc.maxAge, now)
			if diff := gocmp.Diff(tc.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("retain() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestMerge(t *testing.T) {
	r1 := ro(1, rollout.PhaseSuperseded, days(1), days(2))
	r2 := ro(2, rollout.PhaseSuperseded, days(2), days(3))
	r3 := ro(3, rollout.PhaseCurrent, days(3), time.Time{})
	r3Superseded := ro(3, rollout.PhaseSuperseded, days(3), days(4))
	r5 := ro(5, rollout.PhaseInProgress, days(4), time.Time{})
	tests := []struct {
		name    string
		history []rollout.Rollout
		r       rollout.Rollout
		want    []rollout.Rollout
	}{
		{name: "into no history", r: r1, want: []rollout.Rollout{r1}},
		{name: "a higher revision goes last", history: []rollout.Rollout{r1, r2}, r: r3, want: []rollout.Rollout{r1, r2, r3}},
		{name: "a lower revision goes first", history: []rollout.Rollout{r2, r3}, r: r1, want: []rollout.Rollout{r1, r2, r3}},
		{name: "a revision between goes between", history: []rollout.Rollout{r1, r3, r5}, r: r2, want: []rollout.Rollout{r1, r2, r3, r5}},
		{
			name:    "the same revision replaces the rollout",
			history: []rollout.Rollout{r1, r2, r3, r5},
			r:       r3Superseded,
			want:    []rollout.Rollout{r1, r2, r3Superseded, r5},
		},
		{name: "the same revision, the only one", history: []rollout.Rollout{r3}, r: r3Superseded, want: []rollout.Rollout{r3Superseded}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := slices.Clone(tc.history)
			got := merge(tc.history, tc.r)
			if diff := gocmp.Diff(tc.want, got); diff != "" {
				t.Errorf("merge() mismatch (-want +got):\n%s", diff)
			}
			// The controller's history is read by History() while Reconcile merges: merge never writes through.
			if diff := gocmp.Diff(before, tc.history, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("merge() modified its input (-before +after):\n%s", diff)
			}
		})
	}
}

func TestIncarnation(t *testing.T) {
	old1 := ro(1, rollout.PhaseSuperseded, at(0), at(10))
	old2 := ro(2, rollout.PhaseDeleted, at(10), at(20))
	tests := []struct {
		name       string
		history    []rollout.Rollout
		want       []rollout.Rollout
		regression string
	}{
		{name: "no rollouts"},
		{
			name:    "never deleted: the whole history",
			history: []rollout.Rollout{old1, ro(2, rollout.PhaseCurrent, at(10), time.Time{})},
			want:    []rollout.Rollout{old1, ro(2, rollout.PhaseCurrent, at(10), time.Time{})},
		},
		{
			name:    "deleted, not created again: the whole history",
			history: []rollout.Rollout{old1, old2},
			want:    []rollout.Rollout{old1, old2},
		},
		{
			// The ledger names a rollout by workload and revision: the new incarnation's revision 1 replaced the
			// old one's, the old revision 2 (Deleted) is still there.
			name:    "created again: the rollouts that started after the deletion",
			history: []rollout.Rollout{ro(1, rollout.PhaseCurrent, at(30), time.Time{}), old2},
			want:    []rollout.Rollout{ro(1, rollout.PhaseCurrent, at(30), time.Time{})},
		},
		{
			name: "created again with several revisions, the old incarnation longer",
			history: []rollout.Rollout{
				ro(1, rollout.PhaseSuperseded, at(30), at(40)), ro(2, rollout.PhaseCurrent, at(40), time.Time{}),
				ro(3, rollout.PhaseSuperseded, at(5), at(10)), ro(4, rollout.PhaseDeleted, at(10), at(20)),
			},
			want: []rollout.Rollout{ro(1, rollout.PhaseSuperseded, at(30), at(40)), ro(2, rollout.PhaseCurrent, at(40), time.Time{})},
		},
		{
			name: "deleted twice: after the latest deletion",
			history: []rollout.Rollout{
				ro(1, rollout.PhaseCurrent, at(60), time.Time{}),
				ro(2, rollout.PhaseDeleted, at(30), at(50)),
				ro(3, rollout.PhaseDeleted, at(10), at(20)),
			},
			want: []rollout.Rollout{ro(1, rollout.PhaseCurrent, at(60), time.Time{})},
		},
		{
			name: "deleted again, not created again since: the whole history",
			history: []rollout.Rollout{
				ro(1, rollout.PhaseDeleted, at(30), at(50)),
				ro(3, rollout.PhaseDeleted, at(10), at(20)),
			},
			want: []rollout.Rollout{ro(1, rollout.PhaseDeleted, at(30), at(50)), ro(3, rollout.PhaseDeleted, at(10), at(20))},
		},
		{
			// kubectl replace --force: the Deployment is deleted and created again at once. The deletion's
			// Finished is the controller's clock; the new ReplicaSet's creationTimestamp, which starts the new
			// rollout, has the API server's second precision.
			name: "created again within the second of the deletion",
			history: []rollout.Rollout{
				ro(1, rollout.PhaseInProgress, at(20), time.Time{}),
				ro(2, rollout.PhaseDeleted, at(10), at(20).Add(400*time.Millisecond)),
			},
			want: []rollout.Rollout{ro(1, rollout.PhaseInProgress, at(20), time.Time{})},
			regression: "incarnation compares the new rollouts' Started (a creationTimestamp, whole seconds) with the deletion's " +
				"Finished (the controller's clock, sub-second) strictly: a workload created again within the second of its " +
				"deletion is taken for the old incarnation on resume; with no rollout after the deletion the whole history " +
				"is kept, its latest the old Deleted one, and the next Reconcile starts the workload over (its revision 1 " +
				"decided anew, adopted if complete) — the same second-precision issue Decide's WatchingSince.Truncate handles",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := incarnation(slices.Clone(tc.history))
			if diff := gocmp.Diff(tc.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("incarnation() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDropDeleted(t *testing.T) {
	api := owner.Workload{Group: "apps", Kind: "Deployment", Namespace: "shop", Name: "api"}
	ofAPI := func(r rollout.Rollout) rollout.Rollout { r.Workload = api; return r }
	webDeleted := []rollout.Rollout{ro(1, rollout.PhaseSuperseded, at(0), at(5)), ro(2, rollout.PhaseDeleted, at(5), at(20))}
	apiCurrent := []rollout.Rollout{ofAPI(ro(3, rollout.PhaseCurrent, at(0), time.Time{}))}
	apiDeleted := []rollout.Rollout{ofAPI(ro(4, rollout.PhaseDeleted, at(0), at(25)))}
	tests := []struct {
		name          string
		history       map[owner.Workload][]rollout.Rollout
		now           time.Time
		want          map[owner.Workload][]rollout.Rollout
		wantForgotten []forgotten
	}{
		{
			name:    "deleted within deletedGrace: kept for its notifications",
			history: map[owner.Workload][]rollout.Rollout{web: webDeleted},
			now:     at(25),
			want:    map[owner.Workload][]rollout.Rollout{web: webDeleted},
		},
		{
			name:    "deleted exactly deletedGrace ago: kept",
			history: map[owner.Workload][]rollout.Rollout{web: webDeleted},
			now:     at(20).Add(deletedGrace),
			want:    map[owner.Workload][]rollout.Rollout{web: webDeleted},
		},
		{
			name:          "deleted longer than deletedGrace ago: dropped, each of its rollouts forgotten",
			history:       map[owner.Workload][]rollout.Rollout{web: webDeleted},
			now:           at(31),
			wantForgotten: []forgotten{{Workload: web, Revision: 1}, {Workload: web, Revision: 2}},
		},
		{
			name:    "only the workloads gone long enough are dropped",
			history: map[owner.Workload][]rollout.Rollout{web: webDeleted, api: apiCurrent},
			now:     at(100),
			want:    map[owner.Workload][]rollout.Rollout{api: apiCurrent},
			wantForgotten: []forgotten{
				{Workload: web, Revision: 1}, {Workload: web, Revision: 2},
			},
		},
		{
			name:    "several workloads gone",
			history: map[owner.Workload][]rollout.Rollout{web: webDeleted, api: apiDeleted},
			now:     at(100),
			wantForgotten: []forgotten{
				{Workload: api, Revision: 4}, {Workload: web, Revision: 1}, {Workload: web, Revision: 2},
			},
		},
		{
			name:    "a workload whose latest rollout is not Deleted is kept, however old",
			history: map[owner.Workload][]rollout.Rollout{api: apiCurrent},
			now:     days(100),
			want:    map[owner.Workload][]rollout.Rollout{api: apiCurrent},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, nil)
			e.c.mu.Lock()
			for w, h := range tc.history {
				e.c.history[w] = slices.Clone(h)
			}
			e.c.mu.Unlock()
			e.c.dropDeleted(tc.now)
			e.c.mu.Lock()
			got := e.c.history
			e.c.mu.Unlock()
			if diff := gocmp.Diff(tc.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("history after dropDeleted() mismatch (-want +got):\n%s", diff)
			}
			_, forgot := e.notifier.take()
			slices.SortFunc(forgot, func(a, b forgotten) int {
				return cmp.Or(cmp.Compare(a.Workload.Name, b.Workload.Name), cmp.Compare(a.Revision, b.Revision))
			})
			if diff := gocmp.Diff(tc.wantForgotten, forgot, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("forgotten mismatch (-want +got):\n%s", diff)
			}
		})
	}
}
