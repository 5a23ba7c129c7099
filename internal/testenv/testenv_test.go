package testenv_test

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/deployment-tracker/deployment-tracker/internal/testenv"
)

// One control plane for the package, as the real-API-server suites use it.
var (
	env      *testenv.Env
	startErr error
)

const (
	webhookPath  = "/validate-pod"
	webhookLabel = "testenv.example/webhook"
)

func TestMain(m *testing.M) {
	began := time.Now()
	env, startErr = testenv.Start(context.Background(), testenv.Options{Webhooks: &envtest.WebhookInstallOptions{
		ValidatingWebhooks: []*admissionregistrationv1.ValidatingWebhookConfiguration{podWebhook()},
	}})
	if startErr != nil {
		// Loud even without -v; the tests themselves skip or fail through SkipOrFail.
		fmt.Fprintf(os.Stderr, "testenv: %v\n", startErr)
		os.Exit(m.Run())
	}
	fmt.Fprintf(os.Stderr, "testenv: control plane started in %s (%s, log %s)\n",
		time.Since(began).Round(time.Millisecond), env.Config.Host, env.LogPath)
	code := m.Run()
	if code != 0 {
		env.KeepLog()
		fmt.Fprintf(os.Stderr, "testenv: control plane log kept at %s\n", env.LogPath)
	}
	if err := env.Stop(); err != nil {
		fmt.Fprintf(os.Stderr, "testenv: stop: %v\n", err)
		code = 1
	}
	os.Exit(code)
}

// podWebhook is a validating webhook for pod creation, limited to pods carrying webhookLabel.
func podWebhook() *admissionregistrationv1.ValidatingWebhookConfiguration {
	return &admissionregistrationv1.ValidatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "testenv-smoke"},
		Webhooks: []admissionregistrationv1.ValidatingWebhook{{
			Name:                    "pods.testenv.example",
			AdmissionReviewVersions: []string{"v1"},
			SideEffects:             ptr.To(admissionregistrationv1.SideEffectClassNone),
			FailurePolicy:           ptr.To(admissionregistrationv1.Fail),
			ObjectSelector:          &metav1.LabelSelector{MatchLabels: map[string]string{webhookLabel: "true"}},
			ClientConfig: admissionregistrationv1.WebhookClientConfig{
				Service: &admissionregistrationv1.ServiceReference{Namespace: "default", Name: "unused", Path: ptr.To(webhookPath)},
			},
			Rules: []admissionregistrationv1.RuleWithOperations{{
				Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
				Rule:       admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"}},
			}},
		}},
	}
}

func requireEnv(t *testing.T) {
	t.Helper()
	testenv.SkipOrFail(t, startErr)
	if err := env.Err(); err != nil {
		t.Fatalf("control plane is down: %v", err)
	}
}

func newNamespace(t *testing.T) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "smoke-"}}
	if err := env.Client.Create(t.Context(), ns); err != nil {
		t.Fatalf("create namespace: %v", err)
	}
	t.Cleanup(func() { _ = env.Client.Delete(context.Background(), ns) })
	return ns.Name
}

// eventually polls cond until it returns true, failing the test with the last reason after timeout. The
// timeout is generous on purpose: it bounds a hung control plane, it does not measure speed.
func eventually(t *testing.T, what string, cond func(ctx context.Context) (bool, string)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	why := ""
	for {
		var ok bool
		if ok, why = cond(ctx); ok {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s: timed out: %s (control plane: %v)", what, why, env.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

const pinned = "ghcr.io/example/app@sha256:d95596f6bd589defd9c3cc2efe25ddd0632d9d0f5647e49ecf9f9d769f4eb66f"

func TestDeploymentLifecycle(t *testing.T) {
	requireEnv(t)
	ctx := t.Context()
	c := env.Client
	ns := newNamespace(t)

	labels := map[string]string{"app": "web"}
	deploy := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web"},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](2),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					InitContainers: []corev1.Container{{Name: "init", Image: "busybox:1.36"}},
					Containers: []corev1.Container{
						{Name: "app", Image: pinned},
						{Name: "sidecar", Image: "nginx:1.27"},
					},
				},
			},
		},
	}
	created := time.Now()
	if err := c.Create(ctx, deploy); err != nil {
		t.Fatalf("create deployment: %v", err)
	}

	var pods corev1.PodList
	eventually(t, "2 pods Running", func(ctx context.Context) (bool, string) {
		if err := c.List(ctx, &pods, client.InNamespace(ns), client.MatchingLabels(labels)); err != nil {
			return false, err.Error()
		}
		running := 0
		for _, p := range pods.Items {
			if p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil {
				running++
			}
		}
		return running == 2 && len(pods.Items) == 2, fmt.Sprintf("%d of %d pods Running", running, len(pods.Items))
	})
	t.Logf("deployment created → 2 pods Running in %s", time.Since(created).Round(time.Millisecond))

	wantImageIDs := map[string]string{
		// Pinned by digest: the spec's own repository and digest.
		"app": pinned,
		// Not pinned: the repository, tag dropped, with sha256 of the image string ("busybox:1.36" and
		// "nginx:1.27", as `printf %s IMAGE | sha256sum` prints it).
		"init":    "busybox@sha256:ab512471e34f10e894cfa69eec441e1412a1c418f681cdb04b15c219c8b1dd67",
		"sidecar": "nginx@sha256:cd4495bb73de9b01bf009710b80ecf4be2d298db47492f4e9e7d0b04981c4614",
	}
	podCIDR := netip.MustParsePrefix("127.1.0.0/24")
	for _, p := range pods.Items {
		t.Run(p.Name, func(t *testing.T) {
			// Owner chain Pod → ReplicaSet → Deployment, through controller references.
			rsRef := metav1.GetControllerOf(&p)
			if rsRef == nil || rsRef.Kind != "ReplicaSet" {
				t.Fatalf("pod controller = %+v, want a ReplicaSet", rsRef)
			}
			var rs appsv1.ReplicaSet
			if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: rsRef.Name}, &rs); err != nil {
				t.Fatalf("get replicaset: %v", err)
			}
			dRef := metav1.GetControllerOf(&rs)
			if dRef == nil || dRef.Kind != "Deployment" || dRef.Name != "web" || dRef.UID != deploy.UID {
				t.Errorf("replicaset controller = %+v, want Deployment web %s", dRef, deploy.UID)
			}

			got := map[string]string{}
			for _, s := range append(append([]corev1.ContainerStatus{}, p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...) {
				got[s.Name] = s.ImageID
				if s.ContainerID == "" {
					t.Errorf("container %s has no containerID", s.Name)
				}
			}
			if diff := cmp.Diff(wantImageIDs, got); diff != "" {
				t.Errorf("imageIDs (-want +got):\n%s", diff)
			}
			for _, s := range p.Status.InitContainerStatuses {
				if s.State.Terminated == nil || s.State.Terminated.ExitCode != 0 {
					t.Errorf("init container %s state = %+v, want terminated with exit code 0", s.Name, s.State)
				}
			}

			// Loopback addresses only: nothing may ever be sent to a private-range address.
			if p.Status.HostIP != "127.0.0.2" {
				t.Errorf("hostIP = %q, want 127.0.0.2", p.Status.HostIP)
			}
			if ip, err := netip.ParseAddr(p.Status.PodIP); err != nil || !podCIDR.Contains(ip) {
				t.Errorf("podIP = %q, want an address in %s", p.Status.PodIP, podCIDR)
			}
		})
	}

	t.Run("job completes", func(t *testing.T) {
		job := &batchv1.Job{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "once"},
			Spec: batchv1.JobSpec{
				BackoffLimit: ptr.To[int32](0),
				Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
					RestartPolicy: corev1.RestartPolicyNever,
					Containers:    []corev1.Container{{Name: "work", Image: "busybox:1.36"}},
				}},
			},
		}
		if err := c.Create(ctx, job); err != nil {
			t.Fatalf("create job: %v", err)
		}
		eventually(t, "job Complete", func(ctx context.Context) (bool, string) {
			if err := c.Get(ctx, client.ObjectKeyFromObject(job), job); err != nil {
				return false, err.Error()
			}
			for _, cond := range job.Status.Conditions {
				if cond.Type == batchv1.JobComplete && cond.Status == corev1.ConditionTrue {
					return true, ""
				}
			}
			return false, fmt.Sprintf("status %+v", job.Status)
		})
		var jobPods corev1.PodList
		if err := c.List(ctx, &jobPods, client.InNamespace(ns), client.MatchingLabels{"batch.kubernetes.io/job-name": "once"}); err != nil {
			t.Fatalf("list job pods: %v", err)
		}
		if len(jobPods.Items) != 1 {
			t.Fatalf("job pods = %d, want 1", len(jobPods.Items))
		}
		p := jobPods.Items[0]
		if p.Status.Phase != corev1.PodSucceeded {
			t.Errorf("job pod phase = %s, want Succeeded", p.Status.Phase)
		}
		for _, s := range p.Status.ContainerStatuses {
			if want := "busybox@sha256:ab512471e34f10e894cfa69eec441e1412a1c418f681cdb04b15c219c8b1dd67"; s.ImageID != want {
				t.Errorf("completed container %s imageID = %q, want %q", s.Name, s.ImageID, want)
			}
		}
	})

	t.Run("deleting the deployment removes its pods", func(t *testing.T) {
		if err := c.Delete(ctx, deploy); err != nil {
			t.Fatalf("delete deployment: %v", err)
		}
		eventually(t, "pods gone", func(ctx context.Context) (bool, string) {
			var left corev1.PodList
			if err := c.List(ctx, &left, client.InNamespace(ns), client.MatchingLabels(labels)); err != nil {
				return false, err.Error()
			}
			var rss appsv1.ReplicaSetList
			if err := c.List(ctx, &rss, client.InNamespace(ns), client.MatchingLabels(labels)); err != nil {
				return false, err.Error()
			}
			return len(left.Items) == 0 && len(rss.Items) == 0, fmt.Sprintf("%d pods, %d replicasets left", len(left.Items), len(rss.Items))
		})
	})
}

// TestWebhook runs a controller-runtime manager whose webhook server listens where the Env installed the
// validating webhook, and checks the API server calls it over TLS for a pod creation.
func TestWebhook(t *testing.T) {
	requireEnv(t)
	ctx := t.Context()
	ns := newNamespace(t)

	mgr, err := manager.New(env.Config, manager.Options{
		Scheme:                 env.Scheme,
		WebhookServer:          webhook.NewServer(env.WebhookServerOptions()),
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
	})
	if err != nil {
		t.Fatalf("new manager: %v", err)
	}
	seen := &recorder{}
	mgr.GetWebhookServer().Register(webhookPath, &webhook.Admission{Handler: seen})
	mgrCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- mgr.Start(mgrCtx) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("manager: %v", err)
		}
	})
	eventually(t, "webhook server serving", func(context.Context) (bool, string) {
		if err := mgr.GetWebhookServer().StartedChecker()(&http.Request{}); err != nil {
			return false, err.Error()
		}
		return true, ""
	})

	var installed admissionregistrationv1.ValidatingWebhookConfiguration
	if err := env.Client.Get(ctx, client.ObjectKey{Name: "testenv-smoke"}, &installed); err != nil {
		t.Fatalf("get webhook configuration: %v", err)
	}
	wantURL := fmt.Sprintf("https://127.0.0.1:%d%s", env.Webhooks.LocalServingPort, webhookPath)
	if got := ptr.Deref(installed.Webhooks[0].ClientConfig.URL, ""); got != wantURL {
		t.Errorf("installed webhook URL = %q, want %q", got, wantURL)
	}

	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "hooked", Labels: map[string]string{webhookLabel: "true"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "nginx:1.27"}}},
	}
	if err := env.Client.Create(ctx, pod); err != nil {
		t.Fatalf("create pod through the webhook: %v", err)
	}
	if diff := cmp.Diff([]string{ns + "/hooked"}, seen.names()); diff != "" {
		t.Errorf("webhook saw (-want +got):\n%s", diff)
	}

	// The service account impersonation config is subject to RBAC: a fresh service account may not list pods.
	saClient, err := client.New(env.ServiceAccountConfig(ns, "nobody"), client.Options{Scheme: env.Scheme})
	if err != nil {
		t.Fatalf("service account client: %v", err)
	}
	if err := saClient.List(ctx, &corev1.PodList{}, client.InNamespace(ns)); !apierrors.IsForbidden(err) {
		t.Errorf("list pods as system:serviceaccount:%s:nobody: err = %v, want Forbidden", ns, err)
	}
}

// recorder is an admission handler that allows everything and remembers which pods it saw.
type recorder struct {
	mu   sync.Mutex
	seen []string
}

func (r *recorder) Handle(_ context.Context, req admission.Request) admission.Response {
	r.mu.Lock()
	r.seen = append(r.seen, req.Namespace+"/"+req.Name)
	r.mu.Unlock()
	return admission.Allowed("")
}

func (r *recorder) names() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.seen...)
}

func TestImageID(t *testing.T) {
	for _, tc := range []struct {
		name, image, want string
	}{
		{name: "pinned", image: pinned, want: pinned},
		{name: "tag and digest", image: "ghcr.io/example/app:1.2@sha256:" + hex64, want: "ghcr.io/example/app@sha256:" + hex64},
		{name: "tag", image: "nginx:1.27", want: "nginx@sha256:cd4495bb73de9b01bf009710b80ecf4be2d298db47492f4e9e7d0b04981c4614"},
		{name: "registry port, no tag", image: "localhost:5000/team/app", want: "localhost:5000/team/app@sha256:5cef825cb954bd4cec34ba3092f3897c4841bcb22d6a9bafa5fd2d14e68190c8"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := testenv.ImageID(tc.image); got != tc.want {
				t.Errorf("ImageID(%q) = %q, want %q", tc.image, got, tc.want)
			}
		})
	}
}

const hex64 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
