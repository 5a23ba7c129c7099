package tracker

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/deployment-tracker/deployment-tracker/internal/ledger"
	"github.com/deployment-tracker/deployment-tracker/internal/record"
)

// TestResumeForeign: the ledger holds the records of a running Deployment under another identity (CLUSTER
// renamed, or DN_TEMPLATE changed); the tracker decommissions those keys once and records the Deployment under
// its own identity, or with KeepForeignRecords leaves them as they are. Either way they are not adopted.
func TestResumeForeign(t *testing.T) {
	pod1 := webPod(hash1, "aaaaa", 0, v1)
	current := []record.Record{webApp1, webMigrate, webProxy}
	renamed := func(change func(*record.Record)) []record.Record {
		var out []record.Record
		for _, r := range current {
			change(&r)
			out = append(out, r)
		}
		return out
	}
	oldCluster := renamed(func(r *record.Record) { r.Cluster = "prod-0" })
	oldTemplate := renamed(func(r *record.Record) { r.DeploymentName = "web/" + containerOf(*r) })
	currentPuts := []ledger.Entry{putOf(webApp1, 0, "informer"), putOf(webMigrate, 0, "informer"), putOf(webProxy, 0, "informer")}
	decommissionPuts := func(rs []record.Record) []ledger.Entry {
		var out []ledger.Entry
		for _, r := range decommissioned(rs...) {
			e := putOf(r, -1, "ledger")
			e.Meta.Container = containerOf(r)
			out = append(out, e)
		}
		return out
	}
	tests := []struct {
		name     string
		old      []record.Record
		keep     bool
		want     []record.Record
		wantPuts []ledger.Entry
	}{
		{name: "CLUSTER renamed: the old keys decommissioned", old: oldCluster,
			want: append(decommissioned(oldCluster...), current...), wantPuts: append(decommissionPuts(oldCluster), currentPuts...)},
		{name: "DN_TEMPLATE changed: the old keys decommissioned", old: oldTemplate,
			want: append(decommissioned(oldTemplate...), current...), wantPuts: append(decommissionPuts(oldTemplate), currentPuts...)},
		{name: "kept with -keep-foreign-records", old: oldCluster, keep: true, want: current, wantPuts: currentPuts},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var entries []ledger.Entry
			for _, r := range tt.old {
				e := syncedEntry(r, 0)
				e.Meta.Container = containerOf(r)
				entries = append(entries, e)
			}
			led := newFakeLedger(entries...)
			e := newEnv(t, func(c *Config) {
				withLedger(led, &seeder{})(c)
				c.KeepForeignRecords = tt.keep
			}, webDeployment(nil), webRS(hash1, nil), pod1)
			startResumed(t, e)
			if diff := cmp.Diff(tt.want, e.rec.take(), sortRecords, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("desired mismatch (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantPuts, led.takePuts(), sortPuts, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("ledger puts mismatch (-want +got):\n%s", diff)
			}
			// Restarted on the ledger as it is now: the decommissions are not written again (their delivery, not
			// acknowledged by a sink here, is all that is left), and a kept record stays kept.
			e2 := newEnv(t, func(c *Config) {
				withLedger(led, &seeder{})(c)
				c.KeepForeignRecords = tt.keep
			}, webDeployment(nil), webRS(hash1, nil), pod1)
			startResumed(t, e2)
			e2.settle(t)
			if got := led.takePuts(); len(got) != 0 {
				t.Errorf("after a restart: %d ledger writes, want none", len(got))
			}
			for _, r := range e2.rec.take() {
				if r.Status == record.StatusDecommissioned && tt.keep {
					t.Errorf("after a restart: kept %s decommissioned", r.DeploymentName)
				}
			}
		})
	}
}

// TestNotAttestedFromResume: the entries that remember an artifact without attestation are handed to the
// dispatcher from the resume's one read of the ledger, once.
func TestNotAttestedFromResume(t *testing.T) {
	na := syncedEntry(webMigrate, 0)
	na.NotAttested = &ledger.NotAttested{Name: webMigrate.Name, Digest: webMigrate.Digest, Until: now.Add(time.Hour), Message: "no artifacts found"}
	led := newFakeLedger(syncedEntry(webApp1, 0), na)
	e := newEnv(t, withLedger(led, &seeder{}))
	startResumed(t, e)
	got, err := e.tracker.NotAttested(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].NotAttested == nil || got[0].Want.DeploymentName != webMigrate.DeploymentName {
		t.Errorf("NotAttested() = %+v, want the entry of %s", got, webMigrate.DeploymentName)
	}
	if again, _ := e.tracker.NotAttested(t.Context()); len(again) != 0 {
		t.Errorf("NotAttested() again = %d entries, want none: handed out once", len(again))
	}
	if n := led.listCalls(); n != 1 {
		t.Errorf("the ledger was read %d times, want once", n)
	}
}
