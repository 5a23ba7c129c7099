package e2e

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/deployment-tracker/deployment-tracker/internal/apis/records/v1alpha1"
	"github.com/deployment-tracker/deployment-tracker/internal/owner"
	"github.com/deployment-tracker/deployment-tracker/internal/record"
	"github.com/deployment-tracker/deployment-tracker/internal/rollout"
	"github.com/deployment-tracker/deployment-tracker/internal/sink"
)

// labelNeverReady makes kwok run a pod's containers (imageID set) without it ever becoming Ready, like a
// crash-looping container (internal/testenv/kwok-stages.yaml).
const labelNeverReady = "e2e.deployment-tracker.io/ready"

// noteSink is the e2e's rollout sink: it keeps every notification, and checks each as a sink relies on it:
// what it acknowledged is what it was told last about that rollout, and the state it returned comes back.
type noteSink struct {
	mu       sync.Mutex
	got      []rollout.Notification
	problems []string
	last     map[string]rollout.Notification // by workload/revision
}

var notes = &noteSink{last: map[string]rollout.Notification{}}

var _ sink.RolloutSink = (*noteSink)(nil)

func noteKey(w owner.Workload, revision int64) string { return fmt.Sprintf("%s#%d", w, revision) }

func (s *noteSink) Notify(_ context.Context, n rollout.Notification) (map[string]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := noteKey(n.Rollout.Workload, n.Rollout.Revision)
	prev, told := s.last[k]
	deliveries := 0
	if told {
		deliveries, _ = strconv.Atoi(prev.State["deliveries"])
		deliveries++
		if n.Acknowledged != prev.Rollout.Phase {
			s.problems = append(s.problems, fmt.Sprintf("%s: acknowledged %q, but was told %q last", k, n.Acknowledged, prev.Rollout.Phase))
		}
		if n.State["deliveries"] != strconv.Itoa(deliveries-1) {
			s.problems = append(s.problems, fmt.Sprintf("%s: state %v, want deliveries=%d", k, n.State, deliveries-1))
		}
		if rollout.Equal(prev.Rollout, n.Rollout) {
			s.problems = append(s.problems, fmt.Sprintf("%s: the same rollout delivered twice: %+v", k, n.Rollout))
		}
	} else if n.Acknowledged != "" || n.State != nil {
		s.problems = append(s.problems, fmt.Sprintf("%s: first notification acknowledges %q with state %v", k, n.Acknowledged, n.State))
	}
	n.State = map[string]string{"deliveries": strconv.Itoa(deliveries)}
	s.last[k] = n
	s.got = append(s.got, n)
	return n.State, nil
}

// phases returns the phases notified for w's revision, in order, consecutive repeats (updates of the timeline
// within a phase) folded.
func (s *noteSink) phases(w owner.Workload, revision int64) []rollout.Phase {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []rollout.Phase
	for _, n := range s.got {
		if n.Rollout.Workload == w && n.Rollout.Revision == revision && (len(out) == 0 || out[len(out)-1] != n.Rollout.Phase) {
			out = append(out, n.Rollout.Phase)
		}
	}
	return out
}

// check fails t with every problem the sink saw for workloads of namespace ns.
func (s *noteSink) check(t *testing.T) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.problems {
		t.Errorf("rollout sink: %s", p)
	}
}

func workloadOf(kind, ns, name string) owner.Workload {
	return owner.Workload{Group: "apps", Kind: kind, Namespace: ns, Name: name}
}

// rolloutsOf returns the ledger's rollouts of w by revision.
func rolloutsOf(t *testing.T, w owner.Workload) map[int64]v1alpha1.RolloutRecordSpec {
	t.Helper()
	var l v1alpha1.RolloutRecordList
	if err := env.Client.List(context.Background(), &l, client.InNamespace(trackerNamespace)); err != nil {
		t.Fatalf("listing rollouts: %v", err)
	}
	out := map[int64]v1alpha1.RolloutRecordSpec{}
	for _, rr := range l.Items {
		s := rr.Spec
		if s.Workload.Group == w.Group && s.Workload.Kind == w.Kind && s.Workload.Namespace == w.Namespace && s.Workload.Name == w.Name {
			out[s.Revision] = s
		}
	}
	return out
}

// waitRollout waits until the ledger shows revision of w in phase.
func waitRollout(t *testing.T, w owner.Workload, revision int64, phase rollout.Phase) v1alpha1.RolloutRecordSpec {
	t.Helper()
	waitFor(t, fmt.Sprintf("rollout %d of %s to be %s (ledger: %+v)", revision, w, phase, rolloutsOf(t, w)), func() bool {
		return rolloutsOf(t, w)[revision].Phase == string(phase)
	})
	return rolloutsOf(t, w)[revision]
}

// eventReasons are the reasons of the Events on the named object of kind in ns.
func eventReasons(t *testing.T, ns, kind, name string) []string {
	t.Helper()
	var l corev1.EventList
	if err := env.Client.List(context.Background(), &l, client.InNamespace(ns)); err != nil {
		t.Fatalf("listing events: %v", err)
	}
	var out []string
	for _, e := range l.Items {
		if e.InvolvedObject.Kind == kind && e.InvolvedObject.Name == name {
			out = append(out, e.Reason)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func digestRecords(rs []record.Record, deploymentName, digest string, status record.Status) int {
	n := 0
	for _, r := range rs {
		if r.DeploymentName == deploymentName && r.Digest == digest && r.Status == status {
			n++
		}
	}
	return n
}

// TestRollbackAfterFailedRollout: a rollout whose pods never become Ready fails at its progress deadline; the
// undo makes the old ReplicaSet current again: its digest is posted once more, the failed rollout is
// RolledBack and the restored revision Current, with Events on the Deployment.
func TestRollbackAfterFailedRollout(t *testing.T) {
	ns := newNamespace(t)
	good, bad := "ghcr.io/octo-org/rb:1", "ghcr.io/octo-org/rb:2"
	d := deployment(ns, "web", 2, container("app", good))
	d.Spec.ProgressDeadlineSeconds = ptr.To[int32](5)
	mustCreate(t, d)
	w := workloadOf("Deployment", ns, "web")
	name := ns + "/web/app"
	waitRecords(t, ns, "the first digest", func(rs []record.Record) bool { r, _ := last(rs, name); return r.Digest == digestOf(t, good) })
	waitRollout(t, w, 1, rollout.PhaseCurrent)

	update(t, d, func(d *appsv1.Deployment) {
		d.Spec.Template.Spec.Containers[0].Image = bad
		d.Spec.Template.Labels[labelNeverReady] = "false"
	})
	failed := waitRollout(t, w, 2, rollout.PhaseFailed)
	if failed.Reason != "ProgressDeadlineExceeded" {
		t.Errorf("failed rollout reason %q, want ProgressDeadlineExceeded", failed.Reason)
	}
	waitRecords(t, ns, "the failing digest (its pod runs it)", func(rs []record.Record) bool {
		r, _ := last(rs, name)
		return r.Digest == digestOf(t, bad)
	})

	// kubectl rollout undo: the template of the previous revision back, without its pod-template-hash.
	update(t, d, func(d *appsv1.Deployment) {
		d.Spec.Template.Spec.Containers[0].Image = good
		delete(d.Spec.Template.Labels, labelNeverReady)
	})
	restored := waitRollout(t, w, 3, rollout.PhaseCurrent)
	if restored.Restores != 1 {
		t.Errorf("revision 3 restores %d, want 1", restored.Restores)
	}
	waitRollout(t, w, 2, rollout.PhaseRolledBack)
	rs := waitCount(t, ns, 3)
	if r, _ := last(rs, name); r.Digest != digestOf(t, good) || r.Status != record.StatusDeployed {
		t.Errorf("after the undo the record is %+v, want %s deployed", r, digestOf(t, good))
	}
	if n := digestRecords(rs, name, digestOf(t, good), record.StatusDeployed); n != 2 {
		t.Errorf("the restored digest was posted %d times, want 2 (created, restored)", n)
	}
	if got := rolloutsOf(t, w)[1].Phase; got != string(rollout.PhaseSuperseded) {
		t.Errorf("revision 1 is %s, want Superseded", got)
	}
	for _, reason := range []string{"RolloutStarted", "RolloutCompleted", "RolloutFailed", "RolloutRolledBack"} {
		waitFor(t, "Event "+reason+" on the Deployment", func() bool {
			return slices.Contains(eventReasons(t, ns, "Deployment", "web"), reason)
		})
	}
	if got, want := notes.phases(w, 2), []rollout.Phase{rollout.PhaseInProgress, rollout.PhaseFailed, rollout.PhaseRolledBack}; !slices.Equal(got, want) {
		t.Errorf("revision 2 notified %v, want %v", got, want)
	}
	// The restored ReplicaSet's pods run already: its rollout may complete before its first notification is
	// delivered, which is then the completed rollout (delivery is level-based).
	if got := notes.phases(w, 3); !slices.Equal(got, []rollout.Phase{rollout.PhaseInProgress, rollout.PhaseCurrent}) &&
		!slices.Equal(got, []rollout.Phase{rollout.PhaseCurrent}) {
		t.Errorf("revision 3 notified %v, want [InProgress Current] or [Current]", got)
	}
	notes.check(t)
}

// TestRolloutTimeline: a rollout is InProgress, then Current, with its timeline (submitted by the webhook, first
// running, completed) in the ledger and Events on the Deployment.
func TestRolloutTimeline(t *testing.T) {
	ns := newNamespace(t)
	d := deployment(ns, "api", 1, container("api", "ghcr.io/octo-org/timeline:1"))
	d.Spec.MinReadySeconds = 3 // InProgress for a few seconds after the pod is Ready
	mustCreate(t, d)
	w := workloadOf("Deployment", ns, "api")
	waitRollout(t, w, 1, rollout.PhaseInProgress)
	r := waitRollout(t, w, 1, rollout.PhaseCurrent)
	if r.Submitted == nil || r.FirstRunning == nil || r.Completed == nil {
		t.Fatalf("timeline incomplete: %+v", r)
	}
	if r.SubmittedBy != v1alpha1.SourceWebhook {
		t.Errorf("submitted by %q, want the webhook", r.SubmittedBy)
	}
	if r.Submitted.Before(&r.Started) || r.FirstRunning.Before(r.Submitted) || r.Completed.Before(r.FirstRunning) {
		t.Errorf("timeline out of order: started %s submitted %s running %s completed %s", r.Started, r.Submitted, r.FirstRunning, r.Completed)
	}
	if len(r.Containers) != 1 || r.Containers[0].Image != "ghcr.io/octo-org/timeline:1" || r.Containers[0].Digest != digestOf(t, "ghcr.io/octo-org/timeline:1") {
		t.Errorf("containers %+v, want the image with its running digest", r.Containers)
	}
	if got, want := notes.phases(w, 1), []rollout.Phase{rollout.PhaseInProgress, rollout.PhaseCurrent}; !slices.Equal(got, want) {
		t.Errorf("notified %v, want %v", got, want)
	}
	waitFor(t, "Events RolloutStarted and RolloutCompleted", func() bool {
		got := eventReasons(t, ns, "Deployment", "api")
		return slices.Contains(got, "RolloutStarted") && slices.Contains(got, "RolloutCompleted")
	})

	t.Run("scaling is not a rollout", func(t *testing.T) {
		update(t, d, func(d *appsv1.Deployment) { d.Spec.Replicas = ptr.To[int32](3) })
		waitRunning(t, ns, map[string]string{"app": "api"}, 3)
		time.Sleep(quiet)
		if got := rolloutsOf(t, w); len(got) != 1 || got[1].Phase != string(rollout.PhaseCurrent) {
			t.Errorf("rollouts after scaling: %+v, want revision 1 Current only", got)
		}
	})
	t.Run("deletion ends the rollout", func(t *testing.T) {
		mustDelete(t, d)
		waitRollout(t, w, 1, rollout.PhaseDeleted)
	})
	notes.check(t)
}

// TestRolloutRestartMidway: the tracker stops while a rollout is in progress and the rollout completes while it
// is down; after the restart the rollout continues: Current is delivered once, InProgress not again.
func TestRolloutRestartMidway(t *testing.T) {
	ns := newNamespace(t)
	d := deployment(ns, "slow", 1, container("app", "ghcr.io/octo-org/slow:1"))
	d.Spec.MinReadySeconds = 6
	mustCreate(t, d)
	w := workloadOf("Deployment", ns, "slow")
	waitFor(t, "InProgress notified", func() bool { return slices.Contains(notes.phases(w, 1), rollout.PhaseInProgress) })
	restart(t, func() {
		cur := &appsv1.Deployment{}
		ctx := ctxFor(t)
		for {
			err := env.Client.Get(ctx, client.ObjectKeyFromObject(d), cur)
			if err == nil && cur.Status.AvailableReplicas == 1 && cur.Status.ObservedGeneration == cur.Generation {
				break
			}
			select {
			case <-ctx.Done():
				t.Errorf("the Deployment did not become available while the tracker was down: %v; status %+v", err, cur.Status)
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	})
	waitRollout(t, w, 1, rollout.PhaseCurrent)
	waitFor(t, "Current notified", func() bool { return slices.Contains(notes.phases(w, 1), rollout.PhaseCurrent) })
	time.Sleep(quiet)
	if got, want := notes.phases(w, 1), []rollout.Phase{rollout.PhaseInProgress, rollout.PhaseCurrent}; !slices.Equal(got, want) {
		t.Errorf("notified %v, want %v", got, want)
	}
	if got := rolloutsOf(t, w); len(got) != 1 {
		t.Errorf("rollouts %+v, want revision 1 only", got)
	}
	notes.check(t)
}

// TestSameNameTwoKinds: a Deployment and a StatefulSet named web render the same deployment name; deleting one
// leaves the record of the other deployed.
func TestSameNameTwoKinds(t *testing.T) {
	ns := newNamespace(t)
	name := ns + "/web/app"
	collisions := testutil.ToFloat64(tracker.app.Metrics.KeyCollisions)
	mustCreate(t, deployment(ns, "web", 1, container("app", "ghcr.io/octo-org/twin-d:1")))
	waitRecords(t, ns, "the Deployment's record", func(rs []record.Record) bool {
		r, _ := last(rs, name)
		return r.Digest == digestOf(t, "ghcr.io/octo-org/twin-d:1")
	})
	labels := map[string]string{"app": "web-sts"}
	sts := &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web"},
		Spec: appsv1.StatefulSetSpec{
			Replicas: ptr.To[int32](1), ServiceName: "web",
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: podTemplate(labels, container("app", "ghcr.io/octo-org/twin-s:1")),
		},
	}
	mustCreate(t, sts)
	waitRecords(t, ns, "the StatefulSet's record", func(rs []record.Record) bool {
		r, _ := last(rs, name)
		return r.Digest == digestOf(t, "ghcr.io/octo-org/twin-s:1")
	})
	if n := testutil.ToFloat64(tracker.app.Metrics.KeyCollisions) - collisions; n < 1 {
		t.Errorf("collisions counted %v, want ≥ 1", n)
	}
	mustDelete(t, sts)
	rs := waitRecords(t, ns, "the Deployment's record again", func(rs []record.Record) bool {
		r, _ := last(rs, name)
		return r.Digest == digestOf(t, "ghcr.io/octo-org/twin-d:1") && r.Status == record.StatusDeployed && len(rs) >= 3
	})
	stayCount(t, ns, len(rs))
	for _, r := range recordsIn(ns) {
		if r.Status == record.StatusDecommissioned {
			t.Errorf("a record was decommissioned while the Deployment runs: %+v", r)
		}
	}
}
