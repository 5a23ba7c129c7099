package e2e

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/deployment-tracker/deployment-tracker/internal/apis/records/v1alpha1"
	"github.com/deployment-tracker/deployment-tracker/internal/ledger"
	"github.com/deployment-tracker/deployment-tracker/internal/record"
)

// ledgerRecord reads the ledger's object for a deployment name.
func ledgerRecord(t *testing.T, deploymentName string) (*v1alpha1.DeploymentRecord, error) {
	t.Helper()
	k := record.Key{LogicalEnvironment: logicalEnvironment, PhysicalEnvironment: physicalEnvironment, Cluster: cluster, DeploymentName: deploymentName}
	var dr v1alpha1.DeploymentRecord
	err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: trackerNamespace, Name: ledger.Name(k)}, &dr)
	return &dr, err
}

func synced(dr *v1alpha1.DeploymentRecord) bool {
	return meta.IsStatusConditionTrue(dr.Status.Conditions, v1alpha1.ConditionSynced)
}

// restart stops the tracker, runs whileStopped, and starts a new one that resumes from the ledger.
func restart(t *testing.T, whileStopped func()) {
	t.Helper()
	if err := tracker.stop(); err != nil {
		t.Fatalf("stopping the tracker: %v", err)
	}
	whileStopped()
	var err error
	if tracker, err = startTracker(ctxFor(t), trackerSettings{}); err != nil {
		t.Fatalf("starting the tracker again: %v", err)
	}
}

// TestLedgerShowsWhatIsSynced: every record is in the ledger, with what GitHub accepted.
func TestLedgerShowsWhatIsSynced(t *testing.T) {
	ns := newNamespace(t)
	image := "ghcr.io/octo-org/ledger:1"
	mustCreate(t, deployment(ns, "books", 2, container("app", image)))
	waitCount(t, ns, 1)
	waitFor(t, "the ledger to show the record synced", func() bool {
		dr, err := ledgerRecord(t, ns+"/books/app")
		return err == nil && synced(dr)
	})
	dr, _ := ledgerRecord(t, ns+"/books/app")
	want := v1alpha1.DeploymentRecordSpec{
		Name: "ghcr.io/octo-org/ledger", Digest: digestOf(t, image), Version: "1", Status: v1alpha1.StatusDeployed,
		LogicalEnvironment: logicalEnvironment, PhysicalEnvironment: physicalEnvironment, Cluster: cluster,
		DeploymentName: ns + "/books/app",
		Workload:       v1alpha1.Workload{Group: "apps", Kind: "Deployment", Namespace: ns, Name: "books"},
		Container:      "app", Source: v1alpha1.SourceWebhook, Revision: 1,
	}
	got := dr.Spec
	got.FirstSeen, got.PodStarted = want.FirstSeen, nil
	if fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", want) {
		t.Errorf("ledger spec\n got %+v\nwant %+v", got, want)
	}
	if dr.Spec.PodStarted == nil || dr.Spec.FirstSeen.IsZero() {
		t.Errorf("podStarted %v, firstSeen %v: want both set", dr.Spec.PodStarted, dr.Spec.FirstSeen)
	}
	if len(dr.Status.Sinks) != 1 || dr.Status.Sinks[0].Digest != want.Digest || dr.Status.Sinks[0].ObservedGeneration != dr.Generation {
		t.Errorf("sink status %+v, want the digest accepted at generation %d", dr.Status.Sinks, dr.Generation)
	}
}

// TestRestartOfSyncedClusterCostsNothing: a restart lists the pods and the ledger and posts nothing.
func TestRestartOfSyncedClusterCostsNothing(t *testing.T) {
	ns := newNamespace(t)
	mustCreate(t, deployment(ns, "steady", 3, container("app", "ghcr.io/octo-org/steady:1"), container("side", "ghcr.io/octo-org/side:1")))
	waitCount(t, ns, 2)
	settle(t, ns)
	calls := gh.Calls()
	restart(t, func() {})
	time.Sleep(quiet)
	if got := gh.Calls() - calls; got != 0 {
		t.Errorf("the restart cost %d calls to GitHub, want 0; records: %+v", got, gh.Accepted()[len(gh.Accepted())-got:])
	}
}

// TestDeletedWhileStopped: a workload deleted while no tracker runs is decommissioned when one starts again.
func TestDeletedWhileStopped(t *testing.T) {
	ns := newNamespace(t)
	d := deployment(ns, "gone", 2, container("app", "ghcr.io/octo-org/gone:1"))
	mustCreate(t, d)
	waitCount(t, ns, 1)
	waitFor(t, "the ledger to be synced", func() bool {
		dr, err := ledgerRecord(t, ns+"/gone/app")
		return err == nil && synced(dr)
	})
	restart(t, func() {
		mustDelete(t, d)
		waitRunning(t, ns, map[string]string{"app": "gone"}, 0)
	})
	rs := waitCount(t, ns, 2)
	if rs[1].Status != record.StatusDecommissioned || rs[1].Digest != rs[0].Digest {
		t.Errorf("after the restart: %+v, want decommissioned %s", rs[1], rs[0].Digest)
	}
}

// TestRestartMidRollout: the tracker stops in the middle of a rollout; after the restart the latest digest is
// recorded once, and nothing twice.
func TestRestartMidRollout(t *testing.T) {
	ns := newNamespace(t)
	d := deployment(ns, "roll", 5, container("app", "ghcr.io/octo-org/roll:1"))
	mustCreate(t, d)
	waitRunning(t, ns, map[string]string{"app": "roll"}, 5)
	waitCount(t, ns, 1)
	restart(t, func() {
		update(t, d, func(d *appsv1.Deployment) { d.Spec.Template.Spec.Containers[0].Image = "ghcr.io/octo-org/roll:2" })
		waitRunning(t, ns, map[string]string{"app": "roll"}, 5)
	})
	rs := waitCount(t, ns, 2)
	if rs[1].Digest != digestOf(t, "ghcr.io/octo-org/roll:2") || rs[1].Status != record.StatusDeployed {
		t.Errorf("after the restart: %+v, want deployed roll:2", rs[1])
	}
}

// TestLeaderFailover: two replicas; the leader stops during a rollout; the other takes over within the lease
// time and records the rollout once.
func TestLeaderFailover(t *testing.T) {
	ctx := ctxFor(t)
	ns := newNamespace(t)
	if err := tracker.stop(); err != nil {
		t.Fatal(err)
	}
	a, err := startTracker(ctx, trackerSettings{leaderElection: true})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "replica a to lead", a.app.Tracker.Ready)
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	b, err := startTracker(ctx, trackerSettings{leaderElection: true, webhookPort: port})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := b.stop(); err != nil {
			t.Errorf("stopping replica b: %v", err)
		}
		if tracker, err = startTracker(context.Background(), trackerSettings{}); err != nil {
			t.Fatalf("starting the tracker again: %v", err)
		}
	}()
	if b.app.Tracker.Ready() {
		t.Fatal("two leaders")
	}
	d := deployment(ns, "ha", 4, container("app", "ghcr.io/octo-org/ha:1"))
	mustCreate(t, d)
	waitCount(t, ns, 1)
	update(t, d, func(d *appsv1.Deployment) {
		d.Spec.Template.Spec.Containers[0].Image = "ghcr.io/octo-org/ha:2"
		d.Spec.Replicas = ptr.To[int32](4)
	})
	stopped := time.Now()
	if err := a.stop(); err != nil {
		t.Fatalf("stopping the leader: %v", err)
	}
	waitFor(t, "replica b to take over", b.app.Tracker.Ready)
	t.Logf("replica b leads %v after the leader stopped", time.Since(stopped).Round(time.Millisecond))
	waitRunning(t, ns, map[string]string{"app": "ha"}, 4)
	rs := waitCount(t, ns, 2)
	if rs[1].Digest != digestOf(t, "ghcr.io/octo-org/ha:2") {
		t.Errorf("after the failover: %+v, want ha:2", rs[1])
	}
}

// TestOutageShowsInLedger: GitHub fails for a while; the ledger shows why the record is not synced, pods are
// still admitted, and the record is delivered after recovery.
func TestOutageShowsInLedger(t *testing.T) {
	ns := newNamespace(t)
	gh.FailNext(1000, 503)
	defer gh.Reset()
	mustCreate(t, deployment(ns, "outage", 2, container("app", "ghcr.io/octo-org/outage:1")))
	waitRunning(t, ns, map[string]string{"app": "outage"}, 2)
	waitFor(t, "the ledger to show the failure", func() bool {
		dr, err := ledgerRecord(t, ns+"/outage/app")
		if err != nil || synced(dr) || len(dr.Status.Sinks) == 0 {
			return false
		}
		s := dr.Status.Sinks[0]
		return s.Attempts >= 2 && s.LastError != "" && s.NextRetry != nil
	})
	dr, _ := ledgerRecord(t, ns+"/outage/app")
	if c := meta.FindStatusCondition(dr.Status.Conditions, v1alpha1.ConditionSynced); c == nil || c.Reason != "PostFailed" {
		t.Errorf("Synced condition %+v, want False/PostFailed", c)
	}
	gh.Reset()
	waitCount(t, ns, 1)
	waitFor(t, "the ledger to be synced", func() bool {
		dr, err := ledgerRecord(t, ns+"/outage/app")
		return err == nil && synced(dr) && dr.Status.Sinks[0].LastError == ""
	})
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// settle waits until the namespaces of earlier tests are gone (their workloads decommissioned) and the
// tracker has nothing left to post, so that a test can count calls.
func settle(t *testing.T, keep string) {
	t.Helper()
	waitFor(t, "earlier test namespaces to be deleted", func() bool {
		var list corev1.NamespaceList
		if err := env.Client.List(context.Background(), &list); err != nil {
			return false
		}
		for _, n := range list.Items {
			if strings.HasPrefix(n.Name, "e2e-") && n.Name != keep {
				return false
			}
		}
		return true
	})
	last := -1
	waitFor(t, "the tracker to be idle", func() bool {
		n := gh.Calls()
		idle := tracker.app.Dispatcher.Idle() && n == last
		last = n
		time.Sleep(500 * time.Millisecond)
		return idle
	})
}

// TestFirstSyncIsBulk: a tracker that starts with an empty ledger in a cluster that already runs workloads
// delivers them with one bulk request, not one call per container.
func TestFirstSyncIsBulk(t *testing.T) {
	ns := newNamespace(t)
	settle(t, ns)
	before, calls := gh.ClusterStats(), gh.Calls()
	restart(t, func() {
		if err := env.Client.DeleteAllOf(context.Background(), &v1alpha1.DeploymentRecord{}, client.InNamespace(trackerNamespace)); err != nil {
			t.Fatalf("emptying the ledger: %v", err)
		}
		for i := range 3 {
			name := fmt.Sprintf("svc%d", i)
			mustCreate(t, deployment(ns, name, 2, container("app", "ghcr.io/octo-org/"+name+":1"), container("proxy", "ghcr.io/octo-org/proxy:7")))
			waitRunning(t, ns, map[string]string{"app": name}, 2)
		}
	})
	rs := waitCount(t, ns, 6)
	for _, r := range rs {
		if r.Status != record.StatusDeployed {
			t.Errorf("record %+v, want deployed", r)
		}
	}
	after := gh.ClusterStats()
	if after.Sets-before.Sets != 1 || gh.Calls() != calls {
		t.Errorf("%d bulk requests and %d single posts, want 1 and 0", after.Sets-before.Sets, gh.Calls()-calls)
	}
	waitFor(t, "the ledger to be synced", func() bool {
		dr, err := ledgerRecord(t, ns+"/svc0/app")
		return err == nil && synced(dr)
	})
}
