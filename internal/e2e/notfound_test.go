package e2e

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/api/meta"

	v1alpha1 "github.com/deployment-tracker/deployment-tracker/internal/apis/records/v1alpha1"
	"github.com/deployment-tracker/deployment-tracker/internal/ledger"
	"github.com/deployment-tracker/deployment-tracker/internal/record"
)

// misconfiguredGauge reads deptracker_sink_misconfigured{sink="github"} of an instance (-1: not exported).
func misconfiguredGauge(t *testing.T, reg *prometheus.Registry) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gathering metrics: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "deptracker_sink_misconfigured" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "sink" && l.GetValue() == ledger.SinkGitHub {
					return m.GetGauge().GetValue()
				}
			}
		}
	}
	return -1
}

// syncedReason is the reason of the Synced condition of the ledger's record of deploymentName ("" when none).
func syncedReason(t *testing.T, deploymentName string) (string, *v1alpha1.DeploymentRecord) {
	t.Helper()
	dr, err := ledgerRecord(t, deploymentName)
	if err != nil {
		return "", nil
	}
	c := meta.FindStatusCondition(dr.Status.Conditions, v1alpha1.ConditionSynced)
	if c == nil {
		return "", dr
	}
	return c.Reason, dr
}

// TestNotFoundStaysTrue: (a) a tracker started with an ORG GitHub does not know says so (gauge, ledger reason
// Misconfigured) and posts nothing, and the records it kept are delivered once it runs with the right ORG;
// (c) a new digest without attestation is shown NotAttested and not posted again by a restart; (b) when the
// workload is then deleted, the digest GitHub holds (the first one) is decommissioned.
func TestNotFoundStaysTrue(t *testing.T) {
	ns := newNamespace(t)
	dn := ns + "/web/app"
	imageV1, imageV2 := "ghcr.io/octo-org/notfound:1", "ghcr.io/octo-org/notfound:2"
	d1, d2 := digestOf(t, imageV1), digestOf(t, imageV2)

	// (a) A wrong ORG: nothing posted, nothing dropped.
	if err := tracker.stop(); err != nil {
		t.Fatalf("stopping the suite's tracker: %v", err)
	}
	wrong, err := startTracker(ctxFor(t), trackerSettings{env: map[string]string{"ORG": org + "-typo"}})
	if err != nil {
		t.Fatalf("starting a tracker with a wrong ORG: %v", err)
	}
	stopWrong := sync.OnceValue(wrong.stop)
	t.Cleanup(func() {
		if tracker == wrong {
			_ = stopWrong()
			if tracker, err = startTracker(context.Background(), trackerSettings{}); err != nil {
				t.Errorf("starting the suite's tracker again: %v", err)
			}
		}
	})
	tracker = wrong
	waitFor(t, "deptracker_sink_misconfigured 1", func() bool { return misconfiguredGauge(t, wrong.reg) == 1 })
	d := deployment(ns, "web", 1, container("app", imageV1))
	mustCreate(t, d)
	waitFor(t, "the ledger to show the record waiting for a misconfigured sink", func() bool {
		reason, _ := syncedReason(t, dn)
		return reason == ledger.ReasonMisconfigured
	})
	if rs := recordsIn(ns); len(rs) != 0 {
		t.Fatalf("accepted %+v with a wrong ORG, want nothing", rs)
	}

	// The right ORG: the record kept is delivered. The misconfigured tracker stops without waiting for a drain
	// that cannot post anything.
	if err := stopWrong(); err != nil {
		t.Errorf("stopping the tracker with a wrong ORG: %v", err)
	}
	if tracker, err = startTracker(ctxFor(t), trackerSettings{}); err != nil {
		t.Fatalf("starting the tracker with the right ORG: %v", err)
	}
	if got := misconfiguredGauge(t, tracker.reg); got != 0 {
		t.Errorf("deptracker_sink_misconfigured = %v with the right ORG, want 0", got)
	}
	rs := waitCount(t, ns, 1)
	if wantRec := want(ns, "web", "app", "ghcr.io/octo-org/notfound", d1, "1", record.StatusDeployed); !record.Equal(rs[0], wantRec) {
		t.Errorf("delivered %+v, want %+v", rs[0], wantRec)
	}

	// (c) A new digest without attestation: NotAttested, kept, not posted again by a restart.
	gh.UnknownArtifact("ghcr.io/octo-org/notfound", d2)
	defer gh.ClearUnknownArtifacts()
	update(t, d, func(d *appsv1.Deployment) { d.Spec.Template.Spec.Containers[0].Image = imageV2 })
	var since time.Time
	waitFor(t, "the ledger to show the new digest not attested", func() bool {
		reason, dr := syncedReason(t, dn)
		if reason != ledger.ReasonNotAttested || len(dr.Status.Sinks) != 1 || dr.Status.Sinks[0].NotAttested == nil {
			return false
		}
		s := dr.Status.Sinks[0]
		since = s.NotAttested.Since.Time
		return s.NotAttested.Digest == d2 && s.Digest == d1 && s.NextRetry != nil
	})
	notFound := gh.StatusCounts()[404]
	restart(t, func() {})
	time.Sleep(quiet)
	if got := gh.StatusCounts()[404] - notFound; got != 0 {
		t.Errorf("the restart posted the digest without attestation again (%d 404s), want it remembered", got)
	}
	if reason, dr := syncedReason(t, dn); reason != ledger.ReasonNotAttested || dr.Status.Sinks[0].NotAttested == nil ||
		!dr.Status.Sinks[0].NotAttested.Since.Time.Equal(since) {
		t.Errorf("after the restart the ledger shows %q, %+v; want NotAttested since %s", reason, dr.Status.Sinks, since)
	}

	// (b) Deleted: GitHub holds digest 1 for the key; that is what is decommissioned.
	mustDelete(t, d)
	waitRecords(t, ns, "the decommission", func(rs []record.Record) bool {
		return len(rs) == 2 && rs[1].Status == record.StatusDecommissioned
	})
	gone := want(ns, "web", "app", "", "", "", "")
	key := gone.Key()
	if got := gh.Current()[key]; got.Status != record.StatusDecommissioned || got.Digest != d1 {
		t.Errorf("GitHub holds %s@%s for the key, want %s decommissioned", got.Status, got.Digest, d1)
	}
	waitFor(t, "the ledger to show the key synced", func() bool {
		dr, err := ledgerRecord(t, dn)
		return err == nil && synced(dr)
	})
	stayCount(t, ns, 2)
}
