package e2e

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/deployment-tracker/deployment-tracker/internal/apis/records/v1alpha1"
	"github.com/deployment-tracker/deployment-tracker/internal/record"
)

// Churn: waves of short-lived bare pods with unique names, as CI runners and one-off pods bring them.
const (
	churnWaves = 3
	churnPods  = 150
	// churnRetention is the test's -ledger-retention, and churnInterval how often its retention passes.
	churnRetention = time.Second
	churnInterval  = 500 * time.Millisecond
)

// TestChurnIsBounded: each wave of short-lived pods under names that never come back grows the ledger and the
// dispatcher's memory while the pods run, and both come back to where they were once the pods are gone and
// their decommissions delivered (the ledger through its retention, the dispatcher by forgetting the keys);
// meanwhile every pod got its deployed and its decommissioned record at GitHub, and no deployed record left the
// ledger.
func TestChurnIsBounded(t *testing.T) {
	ns := newNamespace(t)
	settle(t, ns)
	current, _ := withTracker(t, trackerSettings{retention: churnRetention, retentionInterval: churnInterval})
	in := current()
	image := "ghcr.io/octo-org/runner:5"
	digest := digestOf(t, image)
	// The first passes delete what earlier tests left decommissioned; the baselines are taken after them.
	time.Sleep(3 * churnInterval)

	for wave := range churnWaves {
		names := make([]string, churnPods)
		for i := range names {
			names[i] = fmt.Sprintf("w%d-runner-%03d", wave, i)
		}
		baseLedger := ledgerSize(t, "")
		waitFor(t, "the dispatcher to be idle", in.app.Dispatcher.Idle)
		baseKeys := testutil.ToFloat64(in.app.Metrics.DispatchKeys)

		ctx := ctxFor(t)
		err := benchForEach(ctx, len(names), bulkWorkers, func(ctx context.Context, i int) error {
			spec := podTemplate(nil, container("job", image)).Spec
			return env.Client.Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: names[i]}, Spec: spec})
		})
		if err != nil {
			t.Fatalf("wave %d: creating pods: %v", wave, err)
		}
		waitRecords(t, ns, fmt.Sprintf("wave %d deployed", wave), func(rs []record.Record) bool {
			return countStatus(rs, ns, names, record.StatusDeployed) == len(names)
		})
		// The records of running pods stay, however small the retention: passes go by without deleting them.
		waitFor(t, "the deployed records in the ledger", func() bool { return ledgerSize(t, ns) == len(names) })
		time.Sleep(2 * churnInterval)
		if n := ledgerSize(t, ns); n != len(names) {
			t.Fatalf("wave %d: %d records of running pods in the ledger, want %d: the retention deleted deployed records", wave, n, len(names))
		}
		if got, want := testutil.ToFloat64(in.app.Metrics.DispatchKeys), baseKeys+float64(len(names)); got != want {
			t.Errorf("wave %d: the dispatcher keeps %v keys with the pods running, want %v", wave, got, want)
		}

		err = benchForEach(ctx, len(names), bulkWorkers, func(ctx context.Context, i int) error {
			pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: names[i]}}
			return client.IgnoreNotFound(env.Client.Delete(ctx, pod, client.GracePeriodSeconds(0)))
		})
		if err != nil {
			t.Fatalf("wave %d: deleting pods: %v", wave, err)
		}
		waitRecords(t, ns, fmt.Sprintf("wave %d decommissioned", wave), func(rs []record.Record) bool {
			return countStatus(rs, ns, names, record.StatusDecommissioned) == len(names)
		})

		waitFor(t, fmt.Sprintf("wave %d: the ledger back to its size before (%d)", wave, baseLedger), func() bool {
			return ledgerSize(t, ns) == 0 && ledgerSize(t, "") <= baseLedger
		})
		waitFor(t, fmt.Sprintf("wave %d: the dispatcher's keys back to %v", wave, baseKeys), func() bool {
			return in.app.Dispatcher.Idle() && testutil.ToFloat64(in.app.Metrics.DispatchKeys) == baseKeys
		})
		// Nothing lost: each pod's container was recorded deployed, then decommissioned, once each.
		byName := map[string][]record.Record{}
		for _, r := range recordsIn(ns) {
			byName[r.DeploymentName] = append(byName[r.DeploymentName], r)
		}
		for _, name := range names {
			dn := ns + "/" + name + "/job"
			wantRecs := []record.Record{
				want(ns, name, "job", "ghcr.io/octo-org/runner", digest, "5", record.StatusDeployed),
				want(ns, name, "job", "ghcr.io/octo-org/runner", digest, "5", record.StatusDecommissioned),
			}
			if got := byName[dn]; !slices.EqualFunc(got, wantRecs, record.Equal) {
				t.Errorf("wave %d: records of %s %+v, want deployed then decommissioned", wave, dn, got)
			}
		}
	}
	if n := testutil.ToFloat64(in.app.Metrics.Ledger.RecordsDeleted); n < churnWaves*churnPods {
		t.Errorf("deptracker_ledger_records_deleted_total = %v, want at least %d", n, churnWaves*churnPods)
	}
}

// ledgerSize is the number of DeploymentRecords in the ledger of workloads in ns ("": all of them).
func ledgerSize(t *testing.T, ns string) int {
	t.Helper()
	var list v1alpha1.DeploymentRecordList
	for {
		err := env.Client.List(context.Background(), &list, client.InNamespace(trackerNamespace))
		if err == nil {
			break
		}
		if !apierrors.IsTimeout(err) && !apierrors.IsServerTimeout(err) {
			t.Fatalf("listing the ledger: %v", err)
		}
	}
	if ns == "" {
		return len(list.Items)
	}
	n := 0
	for _, dr := range list.Items {
		if dr.Spec.Workload.Namespace == ns {
			n++
		}
	}
	return n
}

// countStatus counts the pods of ns among names whose container job has a record of status in rs.
func countStatus(rs []record.Record, ns string, names []string, status record.Status) int {
	seen := map[string]bool{}
	for _, r := range rs {
		if r.Status == status {
			seen[r.DeploymentName] = true
		}
	}
	n := 0
	for _, name := range names {
		if seen[ns+"/"+name+"/job"] {
			n++
		}
	}
	return n
}
