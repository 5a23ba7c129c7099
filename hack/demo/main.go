// Command demo runs deployment-tracker end to end on this machine: a local control plane on 127.0.0.1
// (etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok's fake nodes), a GitHub API test
// server, and the tracker itself, registered as the API server's admission webhook with the shipped
// configuration and running with the shipped RBAC. It applies the sample workloads in hack/demo/workloads,
// scales, rolls out and deletes them, and prints every deployment record as the GitHub test server accepts it,
// and, at the end, every Slack message the Slack test server (internal/slacktest) received, with its updates,
// and the GitHub deployments and deployment statuses of shop/web's rollouts.
//
//	go run ./hack/demo            # or: make demo
//	go run ./hack/demo -keep      # then keep running: kubectl --kubeconfig <printed path> …, Ctrl-C to stop
package main

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/deployment-tracker/deployment-tracker/deploy"
	v1alpha1 "github.com/deployment-tracker/deployment-tracker/internal/apis/records/v1alpha1"
	"github.com/deployment-tracker/deployment-tracker/internal/app"
	"github.com/deployment-tracker/deployment-tracker/internal/config"
	"github.com/deployment-tracker/deployment-tracker/internal/ghclient"
	"github.com/deployment-tracker/deployment-tracker/internal/githubtest"
	"github.com/deployment-tracker/deployment-tracker/internal/record"
	"github.com/deployment-tracker/deployment-tracker/internal/rollout"
	"github.com/deployment-tracker/deployment-tracker/internal/sink"
	"github.com/deployment-tracker/deployment-tracker/internal/sink/githubdeploy"
	slacksink "github.com/deployment-tracker/deployment-tracker/internal/sink/slack"
	"github.com/deployment-tracker/deployment-tracker/internal/slacktest"
	"github.com/deployment-tracker/deployment-tracker/internal/testenv"
)

//go:embed workloads/*.yaml
var workloads embed.FS

const (
	token      = "ghp_demo_token_not_a_secret"
	slackToken = "xoxb-demo-token-not-a-secret"
)

func main() {
	keep := flag.Bool("keep", false, "keep the control plane and the tracker running after the scenario, until Ctrl-C")
	verbose := flag.Bool("v", false, "show the tracker's logs")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *keep, *verbose); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

type demo struct {
	start time.Time
	env   *testenv.Env
	gh    *githubtest.Server
	slack *slacktest.Server
	mu    sync.Mutex
	out   io.Writer
}

func (d *demo) say(format string, a ...any) {
	d.mu.Lock()
	defer d.mu.Unlock()
	fmt.Fprintf(d.out, "[%6.2fs] "+format+"\n", append([]any{time.Since(d.start).Seconds()}, a...)...)
}

func run(ctx context.Context, keep, verbose bool) error {
	d := &demo{start: time.Now(), out: os.Stdout}
	log := logr.Discard()
	if verbose {
		log = zap.New(zap.UseDevMode(true))
	}
	ctrllog.SetLogger(log)

	d.say("starting a local control plane on 127.0.0.1 (etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok)")
	vwc, err := deploy.WebhookConfiguration()
	if err != nil {
		return err
	}
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return err
	}
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		return err
	}
	env, err := testenv.Start(ctx, testenv.Options{Scheme: scheme, Webhooks: &envtest.WebhookInstallOptions{
		ValidatingWebhooks: []*admissionregistrationv1.ValidatingWebhookConfiguration{vwc},
	}})
	if errors.Is(err, testenv.ErrBinariesMissing) {
		return fmt.Errorf("%w\nrun `make k8s-bin` first (or use `make demo`, which does)", err)
	}
	if err != nil {
		return err
	}
	defer env.Stop()
	d.env = env
	d.say("control plane up: %d fake nodes; kubeconfig %s", len(env.Nodes), env.KubeconfigPath)

	if err := applyRBAC(ctx, env); err != nil {
		return err
	}
	d.gh, err = githubtest.New(githubtest.Options{
		Org:    "octo-org",
		Tokens: []string{token},
		// The repository of shop/web, with the tags its images are built from.
		Repos: map[string]githubtest.Repo{"shop": {
			Branches: map[string]string{"main": demoSHA(3)},
			Tags:     map[string]string{"v1.4.0": demoSHA(1), "v1.5.0": demoSHA(2), "v1.6.0": demoSHA(3)},
			Commits: map[string]githubtest.Commit{
				demoSHA(1): {Message: "Release 1.4.0"}, demoSHA(2): {Message: "Release 1.5.0"}, demoSHA(3): {Message: "Release 1.6.0"},
			},
		}},
		OnAccept: func(r record.Record) {
			d.say("GitHub accepted  %-14s %-28s %s@%s %s", r.Status, r.DeploymentName, r.Name, short(r.Digest), tags(r))
		},
	})
	if err != nil {
		return err
	}
	defer d.gh.Close()
	d.say("GitHub API test server at %s", d.gh.URL())

	d.slack = slacktest.NewServer(slackToken)
	defer d.slack.Close()
	d.slack.AddChannel("deploys")
	d.slack.AddChannel("shop-cache")
	d.say("Slack API test server at %s (channels #deploys, #shop-cache)", d.slack.URL())

	reg := prometheus.NewRegistry()
	tr, err := startTracker(ctx, env, d.gh, d.slack, reg, log, rolloutPrinter{d})
	if err != nil {
		return err
	}
	d.say("tracker running: webhook on https://%s:%d, RBAC of serviceaccount deployment-tracker/deployment-tracker", env.Webhooks.LocalServingHost, env.Webhooks.LocalServingPort)

	if err := d.scenario(ctx); err != nil {
		return err
	}
	m := tr.app.Metrics
	d.say("done: %d records accepted in %d calls to GitHub; %v admission reviews observed; pods first seen: webhook %v, informer %v",
		len(d.gh.Accepted()), d.gh.Calls(),
		testutil.ToFloat64(m.Admission.WithLabelValues("CREATE", "observed"))+testutil.ToFloat64(m.Admission.WithLabelValues("DELETE", "observed")),
		testutil.ToFloat64(m.PodsFirstSeen.WithLabelValues("webhook")), testutil.ToFloat64(m.PodsFirstSeen.WithLabelValues("informer")))
	if err := d.printLedger(ctx); err != nil {
		return err
	}
	if err := d.printRollouts(ctx); err != nil {
		return err
	}
	if err := d.printSlack(ctx, tr); err != nil {
		return err
	}
	d.printGitHubDeployments()
	if keep {
		d.say("still running; try: kubectl --kubeconfig %s create deployment hello --image=ghcr.io/octo-org/hello:1 — Ctrl-C stops", env.KubeconfigPath)
		<-ctx.Done()
	}
	return tr.stop()
}

func (d *demo) scenario(ctx context.Context) error {
	c := d.env.Client
	objs, err := readWorkloads()
	if err != nil {
		return err
	}
	d.say("applying hack/demo/workloads: Deployment shop/web (3 replicas, init container + 2 containers), StatefulSet shop/cache (2), Job shop/reindex")
	for _, o := range objs {
		if err := c.Patch(ctx, o, client.Apply, client.FieldOwner("demo"), client.ForceOwnership); err != nil {
			return fmt.Errorf("applying %s %s: %w", o.GetKind(), o.GetName(), err)
		}
	}
	if err := d.waitRecords(ctx, 5); err != nil {
		return err
	}
	web := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web"}}
	d.say("scaling shop/web from 3 to 8 replicas: no record expected")
	if err := change(ctx, c, web, func() { web.Spec.Replicas = ptrTo(int32(8)) }); err != nil {
		return err
	}
	if err := d.waitRunning(ctx, "shop", "web", 8); err != nil {
		return err
	}
	if err := d.quiet(ctx, 5); err != nil {
		return err
	}
	d.say("rolling shop/web out to ghcr.io/octo-org/shop-web:1.5.0: one record, whatever the replica count")
	if err := change(ctx, c, web, func() { web.Spec.Template.Spec.Containers[0].Image = "ghcr.io/octo-org/shop-web:1.5.0" }); err != nil {
		return err
	}
	if err := d.waitRecords(ctx, 6); err != nil {
		return err
	}
	if err := d.waitRunning(ctx, "shop", "web", 8); err != nil {
		return err
	}
	if err := d.quiet(ctx, 6); err != nil {
		return err
	}
	if err := d.waitPhase(ctx, "web", 2, rollout.PhaseCurrent); err != nil {
		return err
	}
	d.say("rolling shop/web out to 1.6.0, whose pods never become Ready (progressDeadlineSeconds: 5): the rollout fails")
	if err := change(ctx, c, web, func() {
		web.Spec.ProgressDeadlineSeconds = ptrTo(int32(5))
		web.Spec.Template.Spec.Containers[0].Image = "ghcr.io/octo-org/shop-web:1.6.0"
		web.Spec.Template.Labels["e2e.deployment-tracker.io/ready"] = "false" // kwok: containers run, never Ready
	}); err != nil {
		return err
	}
	if err := d.waitPhase(ctx, "web", 3, rollout.PhaseFailed); err != nil {
		return err
	}
	d.say("kubectl rollout undo: the template of revision 2 is current again as revision 4; its digest is posted once more")
	if err := change(ctx, c, web, func() {
		web.Spec.Template.Spec.Containers[0].Image = "ghcr.io/octo-org/shop-web:1.5.0"
		delete(web.Spec.Template.Labels, "e2e.deployment-tracker.io/ready")
	}); err != nil {
		return err
	}
	if err := d.waitPhase(ctx, "web", 4, rollout.PhaseCurrent); err != nil {
		return err
	}
	if err := d.waitRecords(ctx, 8); err != nil {
		return err
	}
	if err := d.quiet(ctx, 8); err != nil {
		return err
	}
	d.say("deleting shop/web and shop/cache: decommissioned, once their last pod is gone")
	for _, o := range []client.Object{web, &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "cache"}}} {
		if err := c.Delete(ctx, o, client.PropagationPolicy(metav1.DeletePropagationBackground)); err != nil {
			return err
		}
	}
	return d.waitRecords(ctx, 12)
}

// waitPhase waits until the ledger shows revision of Deployment shop/name in phase.
func (d *demo) waitPhase(ctx context.Context, name string, revision int64, phase rollout.Phase) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for {
		var list v1alpha1.RolloutRecordList
		if err := d.env.Client.List(ctx, &list, client.InNamespace("deployment-tracker")); err == nil {
			for _, r := range list.Items {
				if r.Spec.Workload.Namespace == "shop" && r.Spec.Workload.Name == name && r.Spec.Revision == revision && r.Spec.Phase == string(phase) {
					return nil
				}
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for revision %d of shop/%s to be %s: %w", revision, name, phase, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// rolloutPrinter is the demo's rollout sink: it prints every rollout notification, as a chat or deployment
// sink would receive it.
type rolloutPrinter struct{ d *demo }

var _ sink.RolloutSink = rolloutPrinter{}

func (p rolloutPrinter) Notify(_ context.Context, n rollout.Notification) (map[string]string, error) {
	r := n.Rollout
	images := ""
	for _, c := range r.Containers {
		if c.Digest != "" && !strings.Contains(c.Image, "@") {
			images += fmt.Sprintf(" %s=%s@%s", c.Name, c.Image, short(c.Digest))
		} else {
			images += fmt.Sprintf(" %s=%s", c.Name, c.Image)
		}
	}
	from := string(n.Acknowledged)
	if from == "" {
		from = "new"
	}
	extra := ""
	if r.Restores > 0 {
		extra = fmt.Sprintf(" (restores revision %d)", r.Restores)
	}
	if r.Reason != "" && r.Phase != rollout.PhaseCurrent {
		extra += " " + r.Reason
	}
	p.d.say("rollout notified %-10s %s %s/%s revision %d (was %s)%s%s", r.Phase, r.Workload.Kind, r.Workload.Namespace, r.Workload.Name,
		r.Revision, from, extra, images)
	return nil, nil
}

// printRollouts shows the rollouts as kubectl get rolloutrecords -n deployment-tracker would.
func (d *demo) printRollouts(ctx context.Context) error {
	var list v1alpha1.RolloutRecordList
	if err := d.env.Client.List(ctx, &list, client.InNamespace("deployment-tracker")); err != nil {
		return fmt.Errorf("reading the rollouts: %w", err)
	}
	d.say("the rollouts (kubectl get rolloutrecords -n deployment-tracker):")
	w := tabwriter.NewWriter(d.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "  NAMESPACE\tKIND\tWORKLOAD\tREVISION\tPHASE\tREASON\tSTARTED\tCOMPLETED\tSUBMITTED BY")
	for _, r := range list.Items {
		completed := "-"
		if r.Spec.Completed != nil {
			completed = r.Spec.Completed.Format(time.TimeOnly)
		}
		fmt.Fprintf(w, "  %s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\n", r.Spec.Workload.Namespace, r.Spec.Workload.Kind, r.Spec.Workload.Name,
			r.Spec.Revision, r.Spec.Phase, r.Spec.Reason, r.Spec.Started.Format(time.TimeOnly), completed, r.Spec.SubmittedBy)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	var events corev1.EventList
	if err := d.env.Client.List(ctx, &events, client.InNamespace("shop")); err != nil {
		return fmt.Errorf("reading the events: %w", err)
	}
	d.say("the tracker's Events on the workloads (kubectl get events -n shop):")
	w = tabwriter.NewWriter(d.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "  TYPE\tREASON\tOBJECT\tMESSAGE")
	for _, e := range events.Items {
		if e.Source.Component == "deployment-tracker" || e.ReportingController == "deployment-tracker" {
			fmt.Fprintf(w, "  %s\t%s\t%s/%s\t%s\n", e.Type, e.Reason, strings.ToLower(e.InvolvedObject.Kind), e.InvolvedObject.Name, e.Message)
		}
	}
	return w.Flush()
}

func (d *demo) waitRecords(ctx context.Context, n int) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := d.gh.WaitFor(ctx, func(rs []record.Record) bool { return len(rs) >= n }); err != nil {
		return fmt.Errorf("waiting for %d records (have %d): %w", n, len(d.gh.Accepted()), err)
	}
	return nil
}

// quiet checks for a few seconds that no record beyond n arrives.
func (d *demo) quiet(ctx context.Context, n int) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(2 * time.Second):
	}
	if got := len(d.gh.Accepted()); got != n {
		return fmt.Errorf("%d records, want %d", got, n)
	}
	d.say("no new record: still %d", n)
	return nil
}

func (d *demo) waitRunning(ctx context.Context, ns, app string, n int) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for {
		var pods corev1.PodList
		if err := d.env.Client.List(ctx, &pods, client.InNamespace(ns), client.MatchingLabels{"app": app}); err == nil {
			running := 0
			for _, p := range pods.Items {
				if p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil {
					running++
				}
			}
			if running == n && len(pods.Items) == n {
				d.say("%s/%s: %d pods running", ns, app, n)
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %d pods of %s/%s: %w", n, ns, app, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func change(ctx context.Context, c client.Client, d *appsv1.Deployment, f func()) error {
	for i := 0; ; i++ {
		if err := c.Get(ctx, client.ObjectKeyFromObject(d), d); err != nil {
			return err
		}
		f()
		err := c.Update(ctx, d)
		if err == nil || i == 10 {
			return err
		}
	}
}

func readWorkloads() ([]*unstructured.Unstructured, error) {
	var out []*unstructured.Unstructured
	err := fs.WalkDir(workloads, "workloads", func(path string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		b, err := workloads.ReadFile(path)
		if err != nil {
			return err
		}
		dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(b), 4096)
		for {
			u := &unstructured.Unstructured{}
			if err := dec.Decode(&u.Object); errors.Is(err, io.EOF) {
				return nil
			} else if err != nil {
				return fmt.Errorf("%s: %w", path, err)
			}
			if len(u.Object) > 0 {
				out = append(out, u)
			}
		}
	})
	return out, err
}

func applyRBAC(ctx context.Context, env *testenv.Env) error {
	objs, err := deploy.Objects()
	if err != nil {
		return err
	}
	for _, o := range objs {
		switch o.GetKind() {
		case "Namespace", "CustomResourceDefinition", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding":
			if err := env.Client.Patch(ctx, o, client.Apply, client.FieldOwner("demo"), client.ForceOwnership); err != nil {
				return fmt.Errorf("applying %s %s: %w", o.GetKind(), o.GetName(), err)
			}
		}
	}
	return nil
}

type tracker struct {
	app    *app.App
	cancel context.CancelFunc
	done   chan error
}

func startTracker(ctx context.Context, env *testenv.Env, gh *githubtest.Server, sl *slacktest.Server, reg *prometheus.Registry, log logr.Logger,
	rollouts sink.RolloutSink) (*tracker, error) {
	wo := env.WebhookServerOptions()
	vars := map[string]string{
		"ORG": gh.Org(), "BASE_URL": gh.URL(), "API_TOKEN": token,
		"LOGICAL_ENVIRONMENT": "demo", "PHYSICAL_ENVIRONMENT": "localhost", "CLUSTER": "local",
	}
	cfg, err := config.Parse(flag.NewFlagSet("tracker", flag.ContinueOnError), []string{
		"-webhook-host=" + wo.Host, "-webhook-port=" + strconv.Itoa(wo.Port), "-cert-dir=" + wo.CertDir,
		"-exclude-namespaces=deployment-tracker,kube-system", "-metrics-port=0", "-shutdown-timeout=5s",
		"-ledger-namespace=deployment-tracker",
	}, func(k string) (string, bool) { v, ok := vars[k]; return v, ok })
	if err != nil {
		return nil, err
	}
	noProbe := "0"
	// The Slack sink as app.go builds it from SLACK_* (the demo passes its rollout sinks itself, to keep the
	// printer); it reads the workloads' annotations from the manager's cache, which exists once app.New returns.
	workloads := &lateReader{}
	ghc, err := ghclient.New(ghclient.Config{BaseURL: gh.URL(), Token: token})
	if err != nil {
		return nil, err
	}
	// The GitHub Deployments sink as app.go builds it, reading the workloads' annotations from the cache.
	deploySink, err := githubdeploy.New(githubdeploy.Config{
		Client: ghc, Org: gh.Org(), LogicalEnvironment: cfg.LogicalEnvironment, Cluster: cfg.Cluster,
		Targets: githubdeploy.Targets{Cache: workloads},
	})
	if err != nil {
		return nil, err
	}
	slackSink, err := slacksink.New(slacksink.Config{
		Token: slackToken, Channel: "#deploys", APIURL: sl.URL(), HTTPClient: sl.Client(),
		LogicalEnvironment: cfg.LogicalEnvironment, Cluster: cfg.Cluster, Workloads: slacksink.CacheWorkloads{Reader: workloads},
	})
	if err != nil {
		return nil, err
	}
	a, err := app.New(cfg, app.Options{
		RolloutSinks:           map[string]sink.RolloutSink{"demo": rollouts, "slack": slackSink, "github-deployments": deploySink},
		RestConfig:             env.ServiceAccountConfig("deployment-tracker", "deployment-tracker"),
		Registry:               reg,
		HealthProbeBindAddress: &noProbe,
		Log:                    log,
	})
	if err != nil {
		return nil, err
	}
	workloads.Reader = a.Manager.GetCache()
	runCtx, cancel := context.WithCancel(context.Background())
	t := &tracker{app: a, cancel: cancel, done: make(chan error, 1)}
	go func() { t.done <- a.Start(runCtx) }()
	syncCtx, cancelSync := context.WithTimeout(ctx, time.Minute)
	defer cancelSync()
	if !a.Manager.GetCache().WaitForCacheSync(syncCtx) {
		cancel()
		return nil, errors.New("the tracker's cache did not sync")
	}
	if err := a.Manager.GetWebhookServer().StartedChecker()(nil); err != nil {
		time.Sleep(500 * time.Millisecond) // the webhook server starts with the manager; give it a moment
	}
	return t, nil
}

func (t *tracker) stop() error {
	t.cancel()
	return <-t.done
}

// printLedger shows the ledger as kubectl get deploymentrecords -n deployment-tracker would.
func (d *demo) printLedger(ctx context.Context) error {
	var list v1alpha1.DeploymentRecordList
	if err := d.env.Client.List(ctx, &list, client.InNamespace("deployment-tracker")); err != nil {
		return fmt.Errorf("reading the ledger: %w", err)
	}
	d.say("the ledger (kubectl get deploymentrecords -n deployment-tracker):")
	w := tabwriter.NewWriter(d.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "  NAME\tDEPLOYMENT\tSTATUS\tVERSION\tSYNCED\tSOURCE")
	for _, r := range list.Items {
		synced := "False"
		if meta.IsStatusConditionTrue(r.Status.Conditions, v1alpha1.ConditionSynced) {
			synced = "True"
		}
		fmt.Fprintf(w, "  %s\t%s\t%s\t%s\t%s\t%s\n", r.Name, r.Spec.DeploymentName, r.Spec.Status, r.Spec.Version, synced, r.Spec.Source)
	}
	return w.Flush()
}

func short(digest string) string {
	if len(digest) > 19 {
		return digest[:19] + "…"
	}
	return digest
}

func tags(r record.Record) string {
	if len(r.Tags) == 0 && len(r.RuntimeRisks) == 0 {
		return ""
	}
	return fmt.Sprintf("tags=%v risks=%v repo=%s", r.Tags, r.RuntimeRisks, r.GitHubRepository)
}

func ptrTo[T any](v T) *T { return &v }

// demoSHA is the n-th commit of the demo repository.
func demoSHA(n int) string { return strings.Repeat(strconv.Itoa(n), 40) }

// printGitHubDeployments shows the deployments and deployment statuses the GitHub test server received.
func (d *demo) printGitHubDeployments() {
	deps := d.gh.Deployments("shop")
	d.say("the GitHub deployments of octo-org/shop (%d):", len(deps))
	for _, dep := range deps {
		var states []string
		for _, st := range dep.Statuses {
			s := st.State
			if st.Automatic {
				s += " (auto_inactive)"
			}
			states = append(states, s)
		}
		fmt.Fprintf(d.out, "  #%d %s (%s) in %s by %s: %s\n    %q\n", dep.ID, dep.Ref, dep.SHA[:7], dep.Environment, dep.Creator,
			strings.Join(states, " → "), dep.Description)
	}
}

// lateReader is a client.Reader set once the manager exists.
type lateReader struct{ client.Reader }

// printSlack waits for the rollout notifications to be delivered, then shows every Slack message the fake
// received, with each of its versions (a post, then the chat.update edits in place), and the Block Kit blocks
// of the last version of the first message.
func (d *demo) printSlack(ctx context.Context, tr *tracker) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for !tr.app.Notifier.Idle() {
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for the rollout notifications: %w", ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
	msgs := d.slack.Messages()
	posts, updates := 0, 0
	for _, c := range d.slack.Calls() {
		switch {
		case c.Error != "":
		case c.Method == "chat.postMessage":
			posts++
		case c.Method == "chat.update":
			updates++
		}
	}
	d.say("the Slack messages (%d, from %d chat.postMessage and %d chat.update):", len(msgs), posts, updates)
	for _, m := range msgs {
		fmt.Fprintf(d.out, "  channel %s ts %s\n", m.Channel, m.TS)
		for i, v := range m.Versions {
			verb := "posted "
			if i > 0 {
				verb = "updated"
			}
			text := []rune(v.Text)
			if len(text) > 180 {
				text = append(text[:179], '…')
			}
			fmt.Fprintf(d.out, "    %s %s\n", verb, string(text))
		}
	}
	if len(msgs) > 0 {
		b, err := json.MarshalIndent(msgs[0].Latest().Blocks, "  ", "  ")
		if err != nil {
			return err
		}
		fmt.Fprintf(d.out, "  blocks of the first message as it shows now:\n  %s\n", b)
	}
	return nil
}
