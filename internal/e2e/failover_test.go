package e2e

import (
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/deployment-tracker/deployment-tracker/internal/record"
	"github.com/deployment-tracker/deployment-tracker/internal/testenv"
)

// TestLeaderKilled: the leader dies without releasing its Lease, and the standby takes over only once the
// Lease expired, resumes from the ledger and records the rollout made while nobody led, every record once.
//
// The leader is the real binary (cmd/deployment-tracker) in a process of its own, killed with SIGKILL: no
// shutdown runs, no drain, no Lease release, as when its node dies or the OOM killer strikes. An in-process
// replica could only imitate that (a cancelled context with LeaderElectionReleaseOnCancel off, a transport
// made to fail), and would still run its deferred shutdown. The binary has controller-runtime's lease times
// (15 s lease, 10 s renew deadline, 2 s retry: there is no flag for them); the standby, in process, the
// suite's short ones. It serves the webhook the API server calls, so admissions go on throughout.
func TestLeaderKilled(t *testing.T) {
	bin := buildTrackerBinary(t)
	ctx := ctxFor(t)
	ns := newNamespace(t)
	if err := tracker.stop(); err != nil {
		t.Fatal(err)
	}
	leader := startTrackerBinary(t, bin)
	holder := waitLeaseHolder(t)
	b, err := startTracker(ctx, trackerSettings{leaderElection: true})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := b.stop(); err != nil {
			t.Errorf("stopping the standby: %v", err)
		}
		if tracker, err = startTracker(context.Background(), trackerSettings{}); err != nil {
			t.Fatalf("starting the tracker again: %v", err)
		}
	}()

	d := deployment(ns, "killed", 2, container("app", "ghcr.io/octo-org/killed:1"))
	mustCreate(t, d)
	waitCount(t, ns, 1)
	waitFor(t, "the leader to write the delivery into the ledger", func() bool {
		dr, err := ledgerRecord(t, ns+"/killed/app")
		return err == nil && synced(dr)
	})
	if b.app.Tracker.Ready() {
		t.Fatal("two leaders")
	}

	leader.kill(t)
	lease := readLease(t)
	if got := ptrString(lease.Spec.HolderIdentity); got != holder {
		t.Fatalf("Lease held by %q after the kill, want still the killed leader %q", got, holder)
	}
	expires := lease.Spec.RenewTime.Add(time.Duration(*lease.Spec.LeaseDurationSeconds) * time.Second)
	// The rollout happens while the Lease of the dead leader runs out.
	update(t, d, func(d *appsv1.Deployment) { d.Spec.Template.Spec.Containers[0].Image = "ghcr.io/octo-org/killed:2" })
	waitFor(t, "the standby to take over", b.app.Tracker.Ready)
	tookOver := time.Now()
	t.Logf("the standby leads %v after the Lease expired (%ds lease)", tookOver.Sub(expires).Round(time.Millisecond),
		*lease.Spec.LeaseDurationSeconds)
	if tookOver.Before(expires) {
		t.Errorf("the standby led at %s, before the killed leader's Lease expired at %s", tookOver, expires)
	}
	if got := ptrString(readLease(t).Spec.HolderIdentity); got == holder || got == "" {
		t.Errorf("Lease held by %q after the takeover, want the standby", got)
	}

	waitRunning(t, ns, map[string]string{"app": "killed"}, 2)
	// Recorded once: the first version by the killed leader, the second by the standby, nothing twice.
	var got []string
	for _, r := range waitCount(t, ns, 2) {
		got = append(got, r.Digest+" "+string(r.Status))
	}
	wantRecs := []string{
		digestOf(t, "ghcr.io/octo-org/killed:1") + " " + string(record.StatusDeployed),
		digestOf(t, "ghcr.io/octo-org/killed:2") + " " + string(record.StatusDeployed),
	}
	if len(got) != len(wantRecs) || got[0] != wantRecs[0] || got[1] != wantRecs[1] {
		t.Errorf("records at GitHub %q, want %q", got, wantRecs)
	}
}

// buildTrackerBinary builds cmd/deployment-tracker into the test's temporary directory.
func buildTrackerBinary(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "deployment-tracker")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/deployment-tracker")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the tracker: %v\n%s", err, out)
	}
	return bin
}

// trackerProcess is the binary running as one of the replicas.
type trackerProcess struct {
	cmd  *exec.Cmd
	done chan error
	log  *bytes.Buffer
}

// startTrackerBinary runs bin as a replica like startTracker's (leader election, the ledger, GitHub App
// authentication against gh, the shipped ServiceAccount's RBAC), its webhook on a port of its own. It is
// killed at cleanup if still running, and its log shown if the test failed.
func startTrackerBinary(t *testing.T, bin string) *trackerProcess {
	t.Helper()
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	wo := env.WebhookServerOptions()
	cmd := exec.Command(bin,
		"-kubeconfig="+serviceAccountKubeconfig(t),
		"-webhook-host="+wo.Host,
		"-webhook-port="+strconv.Itoa(port),
		"-cert-dir="+wo.CertDir,
		"-exclude-namespaces="+trackerNamespace+",kube-system",
		"-github-requests-per-minute=0",
		"-github-requests-per-hour=0",
		"-metrics-port=0",
		"-health-probe-bind-address=0",
		"-shutdown-timeout=5s",
		"-ledger-namespace="+trackerNamespace,
		"-leader-elect",
		"-leader-election-namespace="+trackerNamespace,
		// The standby's rollouts go to the suite's note sink: none here either.
		"-github-deployments=false",
		"-delivery-metrics=false",
	)
	// Only what the tracker needs: nothing of the developer's environment (tokens, KUBECONFIG) leaks in.
	cmd.Env = []string{
		"ORG=" + org,
		"BASE_URL=" + gh.URL(),
		"LOGICAL_ENVIRONMENT=" + logicalEnvironment,
		"PHYSICAL_ENVIRONMENT=" + physicalEnvironment,
		"CLUSTER=" + cluster,
		"GH_APP_ID=" + strconv.Itoa(appID),
		"GH_INSTALL_ID=" + strconv.Itoa(installationID),
		"GH_APP_PRIV_KEY=" + keyPath,
		"POD_NAMESPACE=" + trackerNamespace,
	}
	p := &trackerProcess{cmd: cmd, done: make(chan error, 1), log: &bytes.Buffer{}}
	cmd.Stdout, cmd.Stderr = p.log, p.log
	cmd.SysProcAttr = testenv.ChildProcAttr()
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", bin, err)
	}
	go func() { p.done <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("log of the tracker binary:\n%s", p.log)
		}
	})
	return p
}

// kill sends SIGKILL and waits until the process is gone.
func (p *trackerProcess) kill(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("killing the tracker: %v", err)
	}
	select {
	case <-p.done:
	case <-time.After(waitTimeout):
		t.Fatal("the killed tracker did not exit")
	}
}

// serviceAccountKubeconfig writes a kubeconfig for the control plane that acts as the shipped ServiceAccount
// (env.ServiceAccountConfig's impersonation), so that the binary runs with the shipped RBAC.
func serviceAccountKubeconfig(t *testing.T) string {
	t.Helper()
	kc, err := clientcmd.LoadFromFile(env.KubeconfigPath)
	if err != nil {
		t.Fatalf("reading the control plane's kubeconfig: %v", err)
	}
	sa := env.ServiceAccountConfig(trackerNamespace, serviceAccount).Impersonate
	for _, u := range kc.AuthInfos {
		u.Impersonate, u.ImpersonateGroups = sa.UserName, sa.Groups
	}
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		t.Fatalf("writing the tracker's kubeconfig: %v", err)
	}
	return path
}

// readLease reads the leader election Lease.
func readLease(t *testing.T) *coordinationv1.Lease {
	t.Helper()
	var l coordinationv1.Lease
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: trackerNamespace, Name: "deployment-tracker"}, &l); err != nil {
		t.Fatalf("reading the Lease: %v", err)
	}
	return &l
}

// waitLeaseHolder waits until a replica holds the Lease, and returns its identity.
func waitLeaseHolder(t *testing.T) string {
	t.Helper()
	var holder string
	waitFor(t, "a replica to hold the Lease", func() bool {
		var l coordinationv1.Lease
		err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: trackerNamespace, Name: "deployment-tracker"}, &l)
		holder = ptrString(l.Spec.HolderIdentity)
		return err == nil && holder != "" && l.Spec.RenewTime != nil && l.Spec.LeaseDurationSeconds != nil
	})
	return holder
}

func ptrString(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
