// Package app wires the tracker together: the controller-runtime manager with its light caches, the
// observe-only webhook, the tracker's controller, the dispatcher and the sink chosen by the configuration.
package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/config"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	ghv1 "github.com/deployment-tracker/deployment-tracker/internal/apis/github/v1alpha1"
	v1alpha1 "github.com/deployment-tracker/deployment-tracker/internal/apis/records/v1alpha1"
	cfgpkg "github.com/deployment-tracker/deployment-tracker/internal/config"
	"github.com/deployment-tracker/deployment-tracker/internal/delivery"
	"github.com/deployment-tracker/deployment-tracker/internal/dispatch"
	"github.com/deployment-tracker/deployment-tracker/internal/ghclient"
	"github.com/deployment-tracker/deployment-tracker/internal/ledger"
	"github.com/deployment-tracker/deployment-tracker/internal/metrics"
	"github.com/deployment-tracker/deployment-tracker/internal/record"
	"github.com/deployment-tracker/deployment-tracker/internal/rollout"
	rolloutctl "github.com/deployment-tracker/deployment-tracker/internal/rollout/controller"
	"github.com/deployment-tracker/deployment-tracker/internal/sink"
	"github.com/deployment-tracker/deployment-tracker/internal/sink/slack"
	"github.com/deployment-tracker/deployment-tracker/internal/tracker"
	"github.com/deployment-tracker/deployment-tracker/internal/version"
	"github.com/deployment-tracker/deployment-tracker/webhook"
)

// Options are what the configuration does not say: overrides for tests and embedding.
type Options struct {
	// RestConfig is the API server to use; default: from Config.Kubeconfig, in-cluster or $KUBECONFIG.
	RestConfig *rest.Config
	// Sink overrides the sink chosen by the configuration.
	Sink sink.Sink
	// RolloutSinks override the rollout sinks chosen by the configuration, by name.
	RolloutSinks map[string]sink.RolloutSink
	// DryRunOutput receives the records in dry-run mode (default os.Stdout).
	DryRunOutput io.Writer
	// Registry receives the metrics (default controller-runtime's registry, served on the metrics port).
	Registry prometheus.Registerer
	// MetricsBindAddress overrides the configured -metrics-bind-address ("0" disables the metrics server).
	MetricsBindAddress *string
	// HealthProbeBindAddress overrides the configured address ("0" disables).
	HealthProbeBindAddress *string
	// LeaseDuration, RenewDeadline and RetryPeriod override controller-runtime's leader election defaults.
	LeaseDuration, RenewDeadline, RetryPeriod *time.Duration
	// SkipNameValidation lets several instances run in one process (tests).
	SkipNameValidation bool
	// RetentionInterval overrides the ledger retention's interval, and its first pass's delay (retention.go).
	RetentionInterval time.Duration
	// Log is the logger (default: controller-runtime's global logger).
	Log logr.Logger
}

// App is a wired tracker, ready to Start.
type App struct {
	Manager    manager.Manager
	Tracker    *tracker.Tracker
	Dispatcher *dispatch.Dispatcher
	Rollouts   *rolloutctl.Controller
	Notifier   *dispatch.Rollouts
	Metrics    *metrics.Metrics

	rolloutSinks []string         // names of the rollout sinks
	github       *ghclient.Client // the GitHub client of the sinks, once made
	// deliveryExporters record the delivery sink's observations besides Prometheus (OpenTelemetry); set them
	// before addDelivery.
	deliveryExporters []delivery.Exporter
	// telemetryShutdown flushes the OpenTelemetry export once the manager has stopped.
	telemetryShutdown func(context.Context) error
}

// New wires the tracker from c.
func New(c *cfgpkg.Config, o Options) (*App, error) {
	log := o.Log
	if log.GetSink() == nil {
		log = logr.FromContextOrDiscard(context.Background())
	}
	reg := o.Registry
	if reg == nil {
		reg = ctrlmetrics.Registry
	}
	a := &App{Metrics: metrics.New(reg)}
	mgr, err := newManager(c, o, log)
	if err != nil {
		return nil, err
	}
	a.Manager = mgr
	var led *ledger.Ledger
	if c.LedgerNamespace != "" && !c.DryRun {
		led = &ledger.Ledger{Client: mgr.GetClient(), Reader: mgr.GetAPIReader(), Namespace: c.LedgerNamespace, Sink: ledger.SinkGitHub}
	} else {
		log.Info("No ledger: what was delivered is kept in memory only, and posted again after a restart")
	}
	exp, shutdown, err := a.telemetryExporter(c, log)
	if err != nil {
		return nil, err
	}
	if exp != nil {
		a.deliveryExporters = append(a.deliveryExporters, exp)
	}
	a.telemetryShutdown = shutdown
	if err := a.addDelivery(c, o, led, log); err != nil {
		return nil, err
	}
	if err := a.addDeciders(c, o, led, log); err != nil {
		return nil, err
	}
	if err := a.addFlux(c, log); err != nil {
		return nil, err
	}
	if err := a.addRetention(c, o, led, log); err != nil {
		return nil, err
	}
	// A standby's reviews are answered but not observed: its tracker does not run (webhook.Handler.Elected).
	hook := webhook.New(a.Tracker, a.Metrics)
	hook.Elected = mgr.Elected()
	mgr.GetWebhookServer().Register(webhook.Path, &webhook.Server{Handler: hook, Metrics: a.Metrics})
	if err := addChecks(mgr); err != nil {
		return nil, err
	}
	return a, nil
}

// newManager builds the controller-runtime manager with the tracker's light caches: pods kept compact and owner
// metadata stripped by podwatch, workloads and ControllerRevisions trimmed by rollout.Transform.
func newManager(c *cfgpkg.Config, o Options, log logr.Logger) (manager.Manager, error) {
	rc, err := restConfig(c, o)
	if err != nil {
		return nil, err
	}
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return nil, fmt.Errorf("building the scheme: %w", err)
	}
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		return nil, fmt.Errorf("building the scheme: %w", err)
	}
	if err := ghv1.AddToScheme(scheme); err != nil {
		return nil, fmt.Errorf("building the scheme: %w", err)
	}
	// The webhook's own server: controller-runtime's sets no read or write timeout and offers HTTP/2.
	hookServer, err := webhook.NewTLSServer(webhook.ServerConfig{
		Host: c.WebhookHost, Port: c.WebhookPort, CertDir: c.CertDir, Log: log.WithName("webhook-server"),
	})
	if err != nil {
		return nil, err
	}
	mgrOpts := manager.Options{
		Scheme:                        scheme,
		Logger:                        log,
		Cache:                         cacheOptions(c),
		Metrics:                       metricsserver.Options{BindAddress: c.MetricsBindAddress},
		HealthProbeBindAddress:        c.HealthProbeAddr,
		PprofBindAddress:              c.PprofBindAddress,
		LeaderElection:                c.LeaderElect,
		LeaderElectionID:              c.LeaderElectionID,
		LeaderElectionNamespace:       c.LeaderElectionNamespace,
		LeaderElectionReleaseOnCancel: true,
		LeaseDuration:                 o.LeaseDuration,
		RenewDeadline:                 o.RenewDeadline,
		RetryPeriod:                   o.RetryPeriod,
		GracefulShutdownTimeout:       &c.ShutdownTimeout, // the whole shutdown; the drain is c.DrainTimeout(), less
		WebhookServer:                 hookServer,
	}
	if o.MetricsBindAddress != nil {
		mgrOpts.Metrics.BindAddress = *o.MetricsBindAddress
	}
	if o.HealthProbeBindAddress != nil {
		mgrOpts.HealthProbeBindAddress = *o.HealthProbeBindAddress
	}
	mgr, err := manager.New(rc, mgrOpts)
	if err != nil {
		return nil, fmt.Errorf("creating the manager: %w", err)
	}
	return mgr, nil
}

// restConfig is the API server to talk to: Options.RestConfig, -kubeconfig, or in-cluster / $KUBECONFIG.
func restConfig(c *cfgpkg.Config, o Options) (*rest.Config, error) {
	rc := o.RestConfig
	if rc == nil {
		var err error
		if c.Kubeconfig != "" {
			rc, err = clientcmd.BuildConfigFromFlags("", c.Kubeconfig)
		} else {
			rc, err = config.GetConfig()
		}
		if err != nil {
			return nil, fmt.Errorf("kubernetes client configuration: %w", err)
		}
	}
	rc = rest.CopyConfig(rc)
	rc.UserAgent = version.UserAgent()
	if rc.QPS == 0 {
		// As config.GetConfig does: no client-side limit (client-go's default is 5 requests a second, which
		// would pace a burst's ledger writes); the API server's priority and fairness governs.
		rc.QPS, rc.Burst = -1, -1
	}
	return rc, nil
}

// cacheOptions are the light caches: pods kept compact and owner metadata stripped by podwatch (podCache; its
// NewInformer lets the cache read compact pods as pods), workloads and ControllerRevisions trimmed by
// rollout.Transform, within the configured namespaces.
func cacheOptions(c *cfgpkg.Config) cache.Options {
	// The trim keeps on workloads the Slack sink's team label, when one is configured, and the labels the
	// workload selector names (the rollout controller's scope).
	selectorLabels := c.SelectorLabelKeys()
	keepLabels := slices.Clone(selectorLabels)
	if c.Slack.Enabled() && c.Slack.TeamLabel != "" {
		keepLabels = append(keepLabels, c.Slack.TeamLabel)
	}
	trim := cache.ByObject{Transform: workloadTransform(rollout.NewTransform(keepLabels...), selectorLabels)}
	opts := cache.Options{
		ByObject: map[client.Object]cache.ByObject{
			&appsv1.Deployment{}: trim, &appsv1.StatefulSet{}: trim, &appsv1.DaemonSet{}: trim, &appsv1.ControllerRevision{}: trim,
		},
	}
	podCache(&opts)
	if c.Namespace != "" {
		opts.DefaultNamespaces = map[string]cache.Config{c.Namespace: {}}
	}
	if len(c.ExcludeNamespaces) > 0 {
		sel := make([]fields.Selector, 0, len(c.ExcludeNamespaces))
		for _, ns := range c.ExcludeNamespaces {
			sel = append(sel, fields.OneTermNotEqualSelector("metadata.namespace", ns))
		}
		opts.DefaultFieldSelector = fields.AndSelectors(sel...)
	}
	scopeCache(c, &opts) // scope.go
	return opts
}

// addDelivery adds the dispatchers: records to the record sink, rollouts to the rollout sinks, each reporting
// to the ledger.
func (a *App) addDelivery(c *cfgpkg.Config, o Options, led *ledger.Ledger, log logr.Logger) error {
	s := o.Sink
	if s == nil {
		var err error
		if s, err = a.newSink(c, o); err != nil {
			return err
		}
	}
	var reporter ledgerReporter
	if led != nil {
		reporter = ledgerReporter{l: led, log: log.WithName("ledger")}
	}
	var firstSync func(ctx context.Context) (bool, error)
	if led != nil {
		firstSync = func(ctx context.Context) (bool, error) { return a.Tracker.FirstSync(ctx) }
	}
	onCredentials := a.newCredentialEvents(c, log)
	dc := dispatch.Config{
		SinkName:           recordSinkName(c),
		OnCredentials:      onCredentials,
		FirstSync:          firstSync,
		Sink:               s,
		Workers:            c.Workers,
		RequestsPerMinute:  c.RequestsPerMinute,
		RequestsPerHour:    c.RequestsPerHour,
		UnknownArtifactTTL: c.UnknownArtifactTTL,
		DrainTimeout:       c.DrainTimeout(), // strictly within the manager's grace period (Config.DrainTimeout)
		Metrics:            a.Metrics,
		Log:                log.WithName("dispatch"),
	}
	var writes *ledger.StatusWrites
	if led != nil {
		// The outcomes of posts are written beside the workers, not by them (statuswrites.go).
		writes = ledger.NewStatusWrites(led, log.WithName("ledger"))
		dc.Reporter = writes
	}
	a.guardNotFound(&dc, led)
	d, err := dispatch.New(dc)
	if err != nil {
		return err
	}
	var run manager.Runnable = d
	if writes != nil {
		run = reportingDispatcher{Dispatcher: d, writes: writes, flush: statusFlush(c.ShutdownTimeout, c.DrainTimeout()), log: log}
	}
	if err := a.Manager.Add(run); err != nil {
		return fmt.Errorf("adding the dispatcher: %w", err)
	}
	a.Dispatcher = d

	rsinks := o.RolloutSinks
	if rsinks == nil {
		var err error
		if rsinks, err = a.newRolloutSinks(c, s, led, log); err != nil {
			return err
		}
	}
	rc := dispatch.RolloutsConfig{Sinks: rsinks, DrainTimeout: c.DrainTimeout(), Metrics: a.Metrics, Log: log.WithName("rollouts"),
		OnCredentials: onCredentials}
	if led != nil {
		rc.Reporter = reporter
	}
	n, err := dispatch.NewRollouts(rc)
	if err != nil {
		return err
	}
	if err := a.Manager.Add(n); err != nil {
		return fmt.Errorf("adding the rollout dispatcher: %w", err)
	}
	a.Notifier = n
	for name := range rsinks {
		a.rolloutSinks = append(a.rolloutSinks, name)
	}
	slices.Sort(a.rolloutSinks)
	return nil
}

// addDeciders adds the tracker (pods → records) and the rollout controller (workloads → rollouts).
func (a *App) addDeciders(c *cfgpkg.Config, o Options, led *ledger.Ledger, log logr.Logger) error {
	if err := a.addRolloutController(c, o, led, log); err != nil {
		return err
	}
	return a.addTracker(c, o, led, log)
}

// addRolloutController adds the rollout controller, narrowed to the tracker's scope (a.Tracker, set by
// addTracker before the manager starts either).
func (a *App) addRolloutController(c *cfgpkg.Config, o Options, led *ledger.Ledger, log logr.Logger) error {
	mgr := a.Manager
	rcfg := rolloutctl.Config{
		Reader:            mgr.GetCache(),
		Notifier:          a.Notifier,
		Sinks:             a.rolloutSinks,
		Recorder:          mgr.GetEventRecorderFor("deployment-tracker"),
		History:           c.RolloutHistory,
		MaxAge:            c.RolloutMaxAge,
		ExcludeNamespaces: c.ExcludeNamespaces,
		InScope: func(ctx context.Context, obj client.Object) (bool, error) {
			return a.Tracker.WorkloadInScope(ctx, obj)
		},
		WaitForCacheSync: mgr.GetCache().WaitForCacheSync,
		Log:              log.WithName("rollouts"),
	}
	if led != nil {
		rcfg.Ledger = led
	}
	rc, err := rolloutctl.New(rcfg)
	if err != nil {
		return err
	}
	if err := mgr.Add(rc); err != nil {
		return fmt.Errorf("adding the rollout controller: %w", err)
	}
	if err := rc.SetupWithManager(context.Background(), mgr, o.SkipNameValidation); err != nil {
		return fmt.Errorf("setting up the rollout controller: %w", err)
	}
	a.Rollouts = rc
	return nil
}

// addTracker adds the tracker, which reports the pods of each revision to the rollout controller.
func (a *App) addTracker(c *cfgpkg.Config, o Options, led *ledger.Ledger, log logr.Logger) error {
	mgr := a.Manager
	tc := tracker.Config{
		Reader:              mgr.GetCache(),
		APIReader:           mgr.GetAPIReader(),
		Mapper:              mgr.GetRESTMapper(),
		Revisions:           a.Rollouts,
		Desirer:             a.Dispatcher,
		Template:            c.Template,
		Org:                 c.Org,
		LogicalEnvironment:  c.LogicalEnvironment,
		PhysicalEnvironment: c.PhysicalEnvironment,
		Cluster:             c.Cluster,
		ExcludeNamespaces:   c.ExcludeNamespaces,
		Scope:               trackerScope(c),
		KeepForeignRecords:  c.KeepForeignRecords,
		Seeder:              a.Dispatcher,
		WaitForCacheSync:    mgr.GetCache().WaitForCacheSync,
		Metrics:             a.Metrics,
		Log:                 log.WithName("tracker"),
	}
	if led != nil {
		tc.Ledger = led
	}
	t, err := tracker.New(tc)
	if err != nil {
		return err
	}
	if err := mgr.Add(t); err != nil {
		return fmt.Errorf("adding the tracker: %w", err)
	}
	if err := t.SetupWithManager(mgr, o.SkipNameValidation); err != nil {
		return fmt.Errorf("setting up the tracker: %w", err)
	}
	a.Tracker = t
	return nil
}

func addChecks(mgr manager.Manager) error {
	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return fmt.Errorf("adding the liveness check: %w", err)
	}
	if err := mgr.AddReadyzCheck("webhook", mgr.GetWebhookServer().StartedChecker()); err != nil {
		return fmt.Errorf("adding the readiness check: %w", err)
	}
	if err := mgr.AddReadyzCheck("informers", informersSynced(mgr.GetCache())); err != nil {
		return fmt.Errorf("adding the readiness check: %w", err)
	}
	return nil
}

// Names of the rollout sinks: they key each sink's status in the RolloutRecords and must not change.
const (
	rolloutSinkLog   = "log"
	rolloutSinkSlack = "slack"
	// rolloutSinkGitHubDeployments is the GitHub Deployments sink.
	rolloutSinkGitHubDeployments = "github-deployments"
)

// newRolloutSinks are the rollout sinks the configuration enables: the dry-run log sink, when it is one; Slack,
// when a Slack token is set (not in a dry run); GitHub Deployments (not in a dry run); delivery metrics.
func (a *App) newRolloutSinks(c *cfgpkg.Config, s sink.Sink, led *ledger.Ledger, log logr.Logger) (map[string]sink.RolloutSink, error) {
	out := map[string]sink.RolloutSink{}
	if rs, ok := s.(sink.RolloutSink); ok && c.DryRun {
		out[rolloutSinkLog] = rs
	}
	if c.Slack.Enabled() && !c.DryRun {
		sc := slack.Config{
			Token: c.Slack.Token, TokenFile: c.Slack.TokenFile, Channel: c.Slack.Channel, APIURL: c.Slack.APIURL,
			LogicalEnvironment: c.LogicalEnvironment, Cluster: c.Cluster, TeamLabel: c.Slack.TeamLabel,
			Workloads: slack.CacheWorkloads{Reader: a.Manager.GetCache()},
			Errors:    a.Metrics.SlackErrors,
		}
		// Namespaces are read uncached (see slack.APINamespaces for why), which needs get on namespaces: a
		// cluster-wide grant that a single-namespace install (-namespace, a Role) does not have.
		if c.Namespace == "" {
			sc.Namespaces = &slack.APINamespaces{Reader: a.Manager.GetAPIReader(), TeamLabel: c.Slack.TeamLabel}
		} else {
			log.Info("Single-namespace install: the Slack sink does not read the namespace's annotations and labels, only the workloads'", "namespace", c.Namespace)
		}
		ss, err := slack.New(sc)
		if err != nil {
			return nil, fmt.Errorf("Slack sink: %w", err)
		}
		out[rolloutSinkSlack] = ss
	}
	if c.GitHubDeployments && !c.DryRun {
		gd, err := a.newGitHubDeployments(c, log)
		if err != nil {
			return nil, err
		}
		out[rolloutSinkGitHubDeployments] = gd
	}
	if c.DeliveryMetrics {
		ds, err := a.newDelivery(c, led, log)
		if err != nil {
			return nil, err
		}
		out[rolloutSinkDelivery] = ds
	}
	return out, nil
}

// Start runs the tracker until ctx is cancelled; queued records are drained within the shutdown timeout.
func (a *App) Start(ctx context.Context) error {
	err := a.Manager.Start(ctx)
	if a.telemetryShutdown != nil {
		// The dispatchers have drained: what the delivery sink recorded is flushed within -shutdown-timeout.
		if serr := a.telemetryShutdown(ctx); serr != nil {
			a.Manager.GetLogger().Error(serr, "OpenTelemetry flush at shutdown failed")
		}
	}
	return err
}

// ledgerReporter writes the outcome of posts into the ledger's status.
type ledgerReporter struct {
	l   *ledger.Ledger
	log logr.Logger
}

func (r ledgerReporter) Delivered(ctx context.Context, rec record.Record) {
	if err := r.l.Delivered(ctx, rec); err != nil {
		r.log.Error(err, "Cannot record a delivery in the ledger", "deploymentName", rec.DeploymentName)
	}
}

func (r ledgerReporter) Failed(ctx context.Context, rec record.Record, postErr error, attempts int, next time.Time) {
	if err := r.l.Failed(ctx, rec, postErr, attempts, next); err != nil {
		r.log.Error(err, "Cannot record a failed post in the ledger", "deploymentName", rec.DeploymentName)
	}
}

func (r ledgerReporter) RolloutDelivered(ctx context.Context, ro rollout.Rollout, sinkName string, state map[string]string) {
	if err := r.l.RolloutDelivered(ctx, ro, sinkName, state); err != nil {
		r.log.Error(err, "Cannot record a rollout notification in the ledger", "workload", ro.Workload.String(), "revision", ro.Revision)
	}
}

func (r ledgerReporter) RolloutFailed(ctx context.Context, ro rollout.Rollout, sinkName string, err error, attempts int, next time.Time) {
	if lerr := r.l.RolloutFailed(ctx, ro, sinkName, err, attempts, next); lerr != nil {
		r.log.Error(lerr, "Cannot record a failed rollout notification in the ledger", "workload", ro.Workload.String(), "revision", ro.Revision)
	}
}

// informersSynced is ready once the pod and owner informers have synced.
func informersSynced(c cache.Cache) healthz.Checker {
	return func(req *http.Request) error {
		ctx, cancel := context.WithTimeout(req.Context(), 100*time.Millisecond)
		defer cancel()
		if !c.WaitForCacheSync(ctx) {
			return errors.New("informers not synced yet")
		}
		return nil
	}
}
