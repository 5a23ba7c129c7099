package controller

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/deployment-tracker/deployment-tracker/internal/ledger"
	"github.com/deployment-tracker/deployment-tracker/internal/owner"
	"github.com/deployment-tracker/deployment-tracker/internal/rollout"
)

// of returns r as a rollout of w.
func of(w owner.Workload, r rollout.Rollout) rollout.Rollout {
	r.Workload = w
	return r
}

func TestStartResumes(t *testing.T) {
	api := owner.Workload{Group: "apps", Kind: "Deployment", Namespace: "shop", Name: "api"}
	cache := owner.Workload{Group: "apps", Kind: "Deployment", Namespace: "shop", Name: "cache"}

	webRev1 := superseded(completed(started(1, hashV140, at(1)), at(3)), 2, at(10))
	webRev2 := completed(started(2, hashV150, at(10)), at(12))
	apiRev4 := of(api, superseded(modified(adoptedRev1(), func(r *rollout.Rollout) { r.Revision = 4 }), 5, at(20)))
	apiRev5 := of(api, started(5, hashV160, at(20)))
	// cache was deleted at minute 8 and created again: the ledger holds the new incarnation's revisions 1 and 2
	// (revision 1 replaced the old one's) and the old incarnation's Deleted revision 3.
	cacheOldRev3 := of(cache, deleted(completed(started(3, hashV150, at(-60)), at(-58)), at(8)))
	cacheRev1 := of(cache, superseded(completed(started(1, hashV140, at(9)), at(10)), 2, at(15)))
	cacheRev2 := of(cache, completed(started(2, hashV150, at(15)), at(16)))

	githubState := map[string]string{"deployment_id": "42"}
	slackState := map[string]string{"channel": "C0123", "ts": "1748854800.000100"}
	entries := []ledger.RolloutEntry{
		{
			Rollout: webRev1,
			Sinks: map[string]ledger.RolloutDelivery{
				"github": {Phase: rollout.PhaseSuperseded, Synced: true, State: githubState},
				// Told it started, not yet that it was superseded.
				"slack": {Phase: rollout.PhaseInProgress, State: slackState, LastError: "slack: 503"},
			},
		},
		{
			Rollout: webRev2,
			Sinks: map[string]ledger.RolloutDelivery{
				"github": {Phase: rollout.PhaseCurrent, Synced: true, State: githubState},
				"slack":  {Phase: rollout.PhaseInProgress, State: slackState},
				"teams":  {Phase: rollout.PhaseCurrent, Synced: true}, // a sink no longer configured
			},
		},
		{Rollout: apiRev4}, // adopted, never told: nothing to seed
		{
			Rollout: apiRev5,
			Sinks:   map[string]ledger.RolloutDelivery{"slack": {Phase: rollout.PhaseInProgress, Synced: true, State: slackState}},
		},
		{Rollout: cacheOldRev3},
		{Rollout: cacheRev1}, // final, never told (a sink added later): nothing to seed
		{Rollout: cacheRev2},
	}

	e := newEnv(t, nil)
	// The ledger lists in name order, which is not revision order: the controller sorts.
	e.ledger.entries = slices.Clone(entries)
	slices.Reverse(e.ledger.entries)
	e.clock.set(at(30))
	e.cluster.set(
		deployment(2, hashV150, available), replicaSet("web", hashV140, "1", at(1)), replicaSet("web", hashV150, "2", at(10)),
	)
	e.start(t)

	t.Run("the history of each workload is restored, of its latest incarnation", func(t *testing.T) {
		for _, c := range []struct {
			workload owner.Workload
			want     []rollout.Rollout
		}{
			{workload: web, want: []rollout.Rollout{webRev1, webRev2}},
			{workload: api, want: []rollout.Rollout{apiRev4, apiRev5}},
			{workload: cache, want: []rollout.Rollout{cacheRev1, cacheRev2}},
		} {
			if diff := gocmp.Diff(c.want, e.c.History(c.workload)); diff != "" {
				t.Errorf("History(%s) mismatch (-want +got):\n%s", c.workload, diff)
			}
		}
	})

	t.Run("each sink is seeded with what it acknowledged, not with final or adopted rollouts it never heard of", func(t *testing.T) {
		want := []seeded{
			{Sink: "github", Rollout: apiRev5},
			{Sink: "slack", Rollout: apiRev5, Acknowledged: rollout.PhaseInProgress, State: slackState, Synced: true},
			{Sink: "github", Rollout: cacheRev2},
			{Sink: "slack", Rollout: cacheRev2},
			{Sink: "github", Rollout: webRev1, Acknowledged: rollout.PhaseSuperseded, State: githubState, Synced: true},
			{Sink: "slack", Rollout: webRev1, Acknowledged: rollout.PhaseInProgress, State: slackState},
			{Sink: "github", Rollout: webRev2, Acknowledged: rollout.PhaseCurrent, State: githubState, Synced: true},
			{Sink: "slack", Rollout: webRev2, Acknowledged: rollout.PhaseInProgress, State: slackState},
		}
		e.notifier.mu.Lock()
		got := slices.Clone(e.notifier.seeded)
		e.notifier.mu.Unlock()
		slices.SortFunc(got, func(a, b seeded) int {
			return cmp.Or(cmp.Compare(a.Rollout.Workload.Name, b.Rollout.Workload.Name), cmp.Compare(a.Rollout.Revision, b.Rollout.Revision),
				cmp.Compare(a.Sink, b.Sink))
		})
		if diff := gocmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("Seed() calls mismatch (-want +got):\n%s", diff)
		}
	})

	t.Run("every workload with history is decided again", func(t *testing.T) {
		got := e.enqueued()
		slices.SortFunc(got, func(a, b owner.Workload) int { return cmp.Compare(a.Name, b.Name) })
		if diff := gocmp.Diff([]owner.Workload{api, cache, web}, got); diff != "" {
			t.Errorf("enqueued mismatch (-want +got):\n%s", diff)
		}
	})

	t.Run("the ledger is pruned with the retention", func(t *testing.T) {
		e.ledger.mu.Lock()
		got := slices.Clone(e.ledger.prunes)
		e.ledger.mu.Unlock()
		if diff := gocmp.Diff([]pruneCall{{Keep: 10, MaxAge: 30 * 24 * time.Hour}}, got); diff != "" {
			t.Errorf("PruneRollouts() calls mismatch (-want +got):\n%s", diff)
		}
	})

	t.Run("a known revision is not started again", func(t *testing.T) {
		if _, err := e.c.Reconcile(t.Context(), web); err != nil {
			t.Fatalf("Reconcile(%s) error = %v", web, err)
		}
		notified, forgot := e.notifier.take()
		for _, c := range []struct {
			what      string
			want, got any
		}{
			{"ledger writes", []rollout.Rollout(nil), e.ledger.take()},
			{"notified", []rollout.Rollout(nil), notified},
			{"forgotten", []forgotten(nil), forgot},
			{"Events", []string(nil), e.events()},
		} {
			if diff := gocmp.Diff(c.want, c.got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("%s mismatch (-want +got):\n%s", c.what, diff)
			}
		}
	})

	t.Run("a workload deleted while no controller ran is deleted", func(t *testing.T) {
		if _, err := e.c.Reconcile(t.Context(), api); err != nil {
			t.Fatalf("Reconcile(%s) error = %v", api, err)
		}
		want := []rollout.Rollout{deleted(apiRev5, at(30))}
		if diff := gocmp.Diff(want, e.ledger.take()); diff != "" {
			t.Errorf("ledger writes mismatch (-want +got):\n%s", diff)
		}
		notified, _ := e.notifier.take()
		if diff := gocmp.Diff(want, notified); diff != "" {
			t.Errorf("notified mismatch (-want +got):\n%s", diff)
		}
	})
}

func TestStartResumesNothingWithoutNotifier(t *testing.T) {
	e := newEnv(t, func(cfg *Config) { cfg.Notifier = nil })
	e.ledger.entries = []ledger.RolloutEntry{{Rollout: started(1, hashV140, at(1))}}
	e.start(t)
	if diff := gocmp.Diff([]rollout.Rollout{started(1, hashV140, at(1))}, e.c.History(web)); diff != "" {
		t.Errorf("History mismatch (-want +got):\n%s", diff)
	}
	if diff := gocmp.Diff([]owner.Workload{web}, e.enqueued()); diff != "" {
		t.Errorf("enqueued mismatch (-want +got):\n%s", diff)
	}
}

func TestStartCacheSync(t *testing.T) {
	tests := []struct {
		name    string
		cancel  bool // the context ends while waiting
		wantErr bool
	}{
		{name: "the caches do not sync: an error", wantErr: true},
		{name: "the context ends while waiting: no error", cancel: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			e := newEnv(t, func(cfg *Config) {
				cfg.WaitForCacheSync = func(context.Context) bool {
					if tc.cancel {
						cancel()
					}
					return false
				}
			})
			e.ledger.entries = []ledger.RolloutEntry{{Rollout: started(1, hashV140, at(1))}}
			err := e.c.Start(ctx)
			if (err != nil) != tc.wantErr {
				t.Errorf("Start() error = %v, want error %t", err, tc.wantErr)
			}
			if got := e.c.History(web); len(got) != 0 {
				t.Errorf("History = %v, want nothing resumed", got)
			}
			// Start has returned: Reconcile does not wait for ever.
			e.cluster.set([]client.Object{deployment(1, hashV140, rollingOut)}...)
			rctx, rcancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer rcancel()
			if _, err := e.c.Reconcile(rctx, web); errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("Reconcile() after Start returned still waits for the resumption")
			}
		})
	}
}
