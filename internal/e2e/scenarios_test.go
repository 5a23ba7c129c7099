package e2e

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus/testutil"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/deployment-tracker/deployment-tracker/deploy"
	"github.com/deployment-tracker/deployment-tracker/internal/githubtest"
	"github.com/deployment-tracker/deployment-tracker/internal/metrics"
	"github.com/deployment-tracker/deployment-tracker/webhook"

	"github.com/deployment-tracker/deployment-tracker/internal/record"
)

const pinnedDigest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// TestDeploymentLifecycle follows one Deployment from creation through scaling and a rollout to deletion:
// one deployed record per container, nothing for scaling, one deployed record for the new digest, one
// decommissioned record per container.
func TestDeploymentLifecycle(t *testing.T) {
	ns := newNamespace(t)
	app := container("app", "ghcr.io/octo-org/web:1.0")
	proxy := container("proxy", "ghcr.io/octo-org/proxy@"+pinnedDigest)
	d := deployment(ns, "web", 3, app, proxy)
	d.Spec.Template.Spec.InitContainers = []corev1.Container{container("migrate", "registry.local:5000/octo-org/migrate:2.1")}
	d.Annotations = map[string]string{
		"metadata.github.com/team":          "payments",
		"metadata.github.com/runtime-risks": "internet-exposed",
		"metadata.github.com/repository":    "octo-org/web",
	}
	d.Spec.Template.Annotations = map[string]string{"metadata.github.com/team": "checkout"} // the pod's value wins
	firstSeen := testutil.ToFloat64(tracker.app.Metrics.PodsFirstSeen.WithLabelValues("webhook"))
	mustCreate(t, d)

	deployed := func(container, name, digest, version string) record.Record {
		r := want(ns, "web", container, name, digest, version, record.StatusDeployed)
		r.Tags = map[string]string{"team": "checkout"}
		r.RuntimeRisks = []string{"internet-exposed"}
		r.GitHubRepository = "web"
		return r
	}
	v1 := []record.Record{
		deployed("app", "ghcr.io/octo-org/web", digestOf(t, app.Image), "1.0"),
		deployed("migrate", "registry.local:5000/octo-org/migrate", digestOf(t, "registry.local:5000/octo-org/migrate:2.1"), "2.1"),
		deployed("proxy", "ghcr.io/octo-org/proxy", pinnedDigest, ""),
	}
	got := waitCount(t, ns, 3)
	if diff := cmp.Diff(v1, sortByName(got)); diff != "" {
		t.Fatalf("records after creation (-want +got):\n%s", diff)
	}
	if n := testutil.ToFloat64(tracker.app.Metrics.PodsFirstSeen.WithLabelValues("webhook")) - firstSeen; n < 3 {
		t.Errorf("pods first seen by the webhook = %v, want ≥ 3", n)
	}

	t.Run("scaling posts nothing", func(t *testing.T) {
		update(t, d, func(d *appsv1.Deployment) { d.Spec.Replicas = ptr.To[int32](10) })
		waitRunning(t, ns, map[string]string{"app": "web"}, 10)
		stayCount(t, ns, 3)
		update(t, d, func(d *appsv1.Deployment) { d.Spec.Replicas = ptr.To[int32](2) })
		waitRunning(t, ns, map[string]string{"app": "web"}, 2)
		stayCount(t, ns, 3)
	})

	t.Run("rollout posts the new digest once", func(t *testing.T) {
		update(t, d, func(d *appsv1.Deployment) { d.Spec.Template.Spec.Containers[0].Image = "ghcr.io/octo-org/web:1.1" })
		newDigest := digestOf(t, "ghcr.io/octo-org/web:1.1")
		rs := waitRecords(t, ns, "the new digest", func(rs []record.Record) bool {
			r, _ := last(rs, ns+"/web/app")
			return r.Digest == newDigest
		})
		if r, n := last(rs, ns+"/web/app"); n != 2 || r.Version != "1.1" {
			t.Errorf("app records: %d, last %+v; want 2, the last at 1.1", n, r)
		}
		waitRunning(t, ns, map[string]string{"app": "web"}, 2)
		stayCount(t, ns, 4)
	})

	t.Run("deletion decommissions every container", func(t *testing.T) {
		mustDelete(t, d)
		rs := waitCount(t, ns, 7)
		for _, c := range []string{"app", "migrate", "proxy"} {
			r, _ := last(rs, ns+"/web/"+c)
			if r.Status != record.StatusDecommissioned {
				t.Errorf("%s: last record %+v, want decommissioned", c, r)
			}
		}
		if r, _ := last(rs, ns+"/web/app"); r.Digest != digestOf(t, "ghcr.io/octo-org/web:1.1") {
			t.Errorf("app decommissioned with digest %s, want the running one", r.Digest)
		}
	})
}

// TestCallsIndependentOfReplicas: a 50-replica Deployment costs as many calls as a 1-replica one.
func TestCallsIndependentOfReplicas(t *testing.T) {
	for _, replicas := range []int32{1, 50} {
		t.Run(fmt.Sprintf("replicas=%d", replicas), func(t *testing.T) {
			ns := newNamespace(t)
			d := deployment(ns, "api", replicas, container("api", "ghcr.io/octo-org/api:1"))
			mustCreate(t, d)
			waitRunning(t, ns, map[string]string{"app": "api"}, int(replicas))
			waitCount(t, ns, 1)
			update(t, d, func(d *appsv1.Deployment) { d.Spec.Template.Spec.Containers[0].Image = "ghcr.io/octo-org/api:2" })
			waitRunning(t, ns, map[string]string{"app": "api"}, int(replicas))
			waitCount(t, ns, 2)
			mustDelete(t, d)
			rs := waitCount(t, ns, 3)
			statuses := []record.Status{rs[0].Status, rs[1].Status, rs[2].Status}
			if diff := cmp.Diff([]record.Status{record.StatusDeployed, record.StatusDeployed, record.StatusDecommissioned}, statuses); diff != "" {
				t.Errorf("statuses (-want +got):\n%s", diff)
			}
		})
	}
}

// TestWorkloadKinds: the deployment name is the owning workload's, for every kind, and deleting it
// decommissions.
func TestWorkloadKinds(t *testing.T) {
	labels := map[string]string{"app": "w"}
	image := "ghcr.io/octo-org/worker:3"
	tests := []struct {
		name     string
		workload string
		object   func(ns string) clientObject
	}{
		{"bare pod", "solo", func(ns string) clientObject {
			p := podTemplate(labels, container("main", image))
			return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "solo", Labels: labels}, Spec: p.Spec}
		}},
		{"statefulset", "db", func(ns string) clientObject {
			return &appsv1.StatefulSet{
				ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "db"},
				Spec: appsv1.StatefulSetSpec{Replicas: ptr.To[int32](2), Selector: &metav1.LabelSelector{MatchLabels: labels},
					Template: podTemplate(labels, container("main", image))},
			}
		}},
		{"daemonset", "agent", func(ns string) clientObject {
			return &appsv1.DaemonSet{
				ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "agent"},
				Spec:       appsv1.DaemonSetSpec{Selector: &metav1.LabelSelector{MatchLabels: labels}, Template: podTemplate(labels, container("main", image))},
			}
		}},
		{"job", "batch", func(ns string) clientObject {
			tpl := podTemplate(labels, container("main", image))
			tpl.Spec.RestartPolicy = corev1.RestartPolicyNever
			return &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "batch"}, Spec: batchv1.JobSpec{Template: tpl}}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ns := newNamespace(t)
			obj := tc.object(ns)
			mustCreate(t, obj)
			rs := waitCount(t, ns, 1)
			if diff := cmp.Diff(want(ns, tc.workload, "main", "ghcr.io/octo-org/worker", digestOf(t, image), "3", record.StatusDeployed), rs[0]); diff != "" {
				t.Errorf("deployed record (-want +got):\n%s", diff)
			}
			mustDelete(t, obj)
			rs = waitCount(t, ns, 2)
			if rs[1].Status != record.StatusDecommissioned || rs[1].DeploymentName != rs[0].DeploymentName {
				t.Errorf("after deletion: %+v, want decommissioned %s", rs[1], rs[0].DeploymentName)
			}
		})
	}
}

// TestWebhookMissed: with the webhook unreachable (failurePolicy Ignore), pods are created anyway and the
// informer still records them.
func TestWebhookMissed(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	restore := breakWebhook(t)
	defer restore()
	informer := testutil.ToFloat64(tracker.app.Metrics.PodsFirstSeen.WithLabelValues("informer"))
	p := podTemplate(nil, container("main", "ghcr.io/octo-org/unseen:1"))
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "unseen"}, Spec: p.Spec}
	if err := env.Client.Create(ctx, pod); err != nil {
		t.Fatalf("pod creation with the webhook down must succeed (failurePolicy Ignore): %v", err)
	}
	waitCount(t, ns, 1)
	if n := testutil.ToFloat64(tracker.app.Metrics.PodsFirstSeen.WithLabelValues("informer")) - informer; n != 1 {
		t.Errorf("pods first seen by the informer = %v, want 1", n)
	}
}

// TestGitHubFailures: 5xx and rate limits delay records, never lose them, never block pods.
func TestGitHubFailures(t *testing.T) {
	ns := newNamespace(t)
	before := gh.StatusCounts()
	gh.FailNext(2, 502)
	gh.TooManyRequestsNext(1, time.Second)
	d := deployment(ns, "flaky", 2, container("app", "ghcr.io/octo-org/flaky:1"))
	mustCreate(t, d)
	waitRunning(t, ns, map[string]string{"app": "flaky"}, 2)
	rs := waitCount(t, ns, 1)
	if rs[0].Status != record.StatusDeployed {
		t.Errorf("record %+v, want deployed", rs[0])
	}
	after := gh.StatusCounts()
	if after[502]-before[502] != 2 || after[429]-before[429] != 1 {
		t.Errorf("status counts before %v after %v: want 2 more 502 and 1 more 429", before, after)
	}
}

type clientObject = client.Object

func sortByName(rs []record.Record) []record.Record {
	out := slices.Clone(rs)
	slices.SortFunc(out, func(a, b record.Record) int { return strings.Compare(a.DeploymentName, b.DeploymentName) })
	return out
}

// breakWebhook points the installed webhook at a closed port until the API server no longer reaches the
// tracker, and returns the function that restores it.
func breakWebhook(t *testing.T) (restore func()) {
	t.Helper()
	shipped, err := deploy.WebhookConfiguration()
	if err != nil {
		t.Fatal(err)
	}
	vwc := &admissionregistrationv1.ValidatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: shipped.Name}}
	var saved []admissionregistrationv1.WebhookClientConfig
	update(t, vwc, func(v *admissionregistrationv1.ValidatingWebhookConfiguration) {
		saved = nil
		for i := range v.Webhooks {
			saved = append(saved, *v.Webhooks[i].ClientConfig.DeepCopy())
			v.Webhooks[i].ClientConfig.URL = ptr.To("https://127.0.0.1:1" + webhook.Path)
		}
	})
	probeNS := newNamespace(t)
	waitWebhookReached(t, probeNS, false)
	return func() {
		update(t, vwc, func(v *admissionregistrationv1.ValidatingWebhookConfiguration) {
			for i := range v.Webhooks {
				v.Webhooks[i].ClientConfig = saved[i]
			}
		})
		waitWebhookReached(t, probeNS, true)
	}
}

// waitWebhookReached creates probe pods until the API server does (or no longer does) call the tracker's
// webhook: the API server picks webhook configuration changes up asynchronously.
func waitWebhookReached(t *testing.T, ns string, reached bool) {
	t.Helper()
	ctx := ctxFor(t)
	observed := tracker.app.Metrics.Admission.WithLabelValues("CREATE", metrics.AdmissionObserved)
	for i := 0; ; i++ {
		before := testutil.ToFloat64(observed)
		p := podTemplate(nil, container("probe", "ghcr.io/octo-org/probe:1"))
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("probe-%t-%d", reached, i)}, Spec: p.Spec}
		if err := env.Client.Create(ctx, pod); err != nil {
			t.Fatalf("creating a probe pod: %v", err)
		}
		_ = env.Client.Delete(ctx, pod)
		if (testutil.ToFloat64(observed) > before) == reached {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the API server did not pick up the webhook change (reached=%t)", reached)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// TestCronJobJob: the pods of a Job created by a CronJob are recorded under the CronJob's name. The Job is
// created the way the CronJob controller creates it (controller owner reference), without waiting for a
// schedule.
func TestCronJobJob(t *testing.T) {
	ns := newNamespace(t)
	image := "ghcr.io/octo-org/report:5"
	tpl := podTemplate(nil, container("report", image))
	tpl.Spec.RestartPolicy = corev1.RestartPolicyNever
	cj := &batchv1.CronJob{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "nightly"},
		Spec: batchv1.CronJobSpec{Schedule: "0 3 * * *", Suspend: ptr.To(true),
			JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: tpl}}},
	}
	mustCreate(t, cj)
	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "nightly-29000000",
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "batch/v1", Kind: "CronJob", Name: cj.Name, UID: cj.UID,
				Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true)}}},
		Spec: batchv1.JobSpec{Template: tpl},
	}
	mustCreate(t, job)
	rs := waitCount(t, ns, 1)
	if diff := cmp.Diff(want(ns, "nightly", "report", "ghcr.io/octo-org/report", digestOf(t, image), "5", record.StatusDeployed), rs[0]); diff != "" {
		t.Errorf("record (-want +got):\n%s", diff)
	}
	mustDelete(t, job) // a finished run goes away: the CronJob still runs the container
	stayCount(t, ns, 1)
	mustDelete(t, cj)
	rs = waitCount(t, ns, 2)
	if rs[1].Status != record.StatusDecommissioned || rs[1].DeploymentName != ns+"/nightly/report" {
		t.Errorf("after deleting the CronJob: %+v", rs[1])
	}
}

// TestNamespaceScoping: -namespace limits a tracker to one namespace; -exclude-namespaces (the shipped
// kube-system and the tracker's own) are never recorded.
func TestNamespaceScoping(t *testing.T) {
	ctx := ctxFor(t)
	inside, outside := newNamespace(t), newNamespace(t)
	scoped, err := githubtest.New(githubtest.Options{Org: org, Tokens: []string{"scoped-token"}})
	if err != nil {
		t.Fatal(err)
	}
	defer scoped.Close()
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	in, err := startTracker(ctx, trackerSettings{
		namespace: inside, webhookPort: port, args: []string{"-ledger-namespace=-"},
		env: map[string]string{"BASE_URL": scoped.URL(), "API_TOKEN": "scoped-token", "GH_APP_ID": "", "GH_INSTALL_ID": "", "GH_APP_PRIV_KEY": ""},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := in.stop(); err != nil {
			t.Error(err)
		}
	}()
	for _, ns := range []string{inside, outside, "kube-system"} {
		p := podTemplate(nil, container("main", "ghcr.io/octo-org/scoped:1"))
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "scoped-" + ns[:min(len(ns), 20)]}, Spec: p.Spec}
		mustCreate(t, pod)
		if ns == "kube-system" {
			defer func() { _ = env.Client.Delete(context.Background(), pod) }()
		}
	}
	waitCount(t, inside, 1)
	waitCount(t, outside, 1)
	if rs := recordsIn("kube-system"); len(rs) != 0 {
		t.Errorf("kube-system recorded: %+v", rs)
	}
	waitFor(t, "the scoped tracker's record", func() bool { return len(scoped.Accepted()) >= 1 })
	time.Sleep(quiet)
	for _, r := range scoped.Accepted() {
		if !strings.HasPrefix(r.DeploymentName, inside+"/") {
			t.Errorf("the tracker scoped to %s recorded %s", inside, r.DeploymentName)
		}
	}
}
