package e2e

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/deployment-tracker/deployment-tracker/internal/app"
	"github.com/deployment-tracker/deployment-tracker/internal/config"
	"github.com/deployment-tracker/deployment-tracker/internal/sink"
)

// trackerSettings vary a tracker instance from the default: GitHub App authentication against gh, the webhook
// where the API server calls it, the shipped ServiceAccount's permissions.
type trackerSettings struct {
	args []string
	env  map[string]string
	// webhookPort overrides the port the API server calls (a second replica serves elsewhere).
	webhookPort int
	// leaderElection runs the instance as one of several replicas, with short lease times.
	leaderElection bool
	// namespace limits the instance to one namespace.
	namespace string
	// certDir overrides where the webhook's certificate is read from.
	certDir string
	// configuredRolloutSinks runs the rollout sinks the configuration enables (app.go's production wiring)
	// instead of the suite's noteSink.
	configuredRolloutSinks bool
	// retention, if set, is -ledger-retention, and the retention passes every retentionInterval (default: the
	// app's, a first pass minutes after the start).
	retention, retentionInterval time.Duration
}

// instance is a tracker running in this process, configured through config.Parse like the binary.
type instance struct {
	app    *app.App
	reg    *prometheus.Registry
	cancel context.CancelFunc
	done   chan error
}

func startTracker(ctx context.Context, s trackerSettings) (*instance, error) {
	wo := env.WebhookServerOptions()
	if s.webhookPort != 0 {
		wo.Port = s.webhookPort
	}
	if s.certDir != "" {
		wo.CertDir = s.certDir
	}
	scope := "-exclude-namespaces=" + trackerNamespace + ",kube-system"
	if s.namespace != "" {
		scope = "-namespace=" + s.namespace
	}
	args := append([]string{
		"-webhook-host=" + wo.Host,
		"-webhook-port=" + strconv.Itoa(wo.Port),
		"-cert-dir=" + wo.CertDir,
		scope,
		"-github-requests-per-minute=0",
		"-github-requests-per-hour=0",
		"-metrics-port=0",
		"-shutdown-timeout=5s",
		"-ledger-namespace=" + trackerNamespace,
	}, s.args...)
	if s.retention > 0 {
		args = append(args, "-ledger-retention="+s.retention.String())
	}
	vars := map[string]string{
		"ORG":                  org,
		"BASE_URL":             gh.URL(),
		"LOGICAL_ENVIRONMENT":  logicalEnvironment,
		"PHYSICAL_ENVIRONMENT": physicalEnvironment,
		"CLUSTER":              cluster,
		"GH_APP_ID":            strconv.Itoa(appID),
		"GH_INSTALL_ID":        strconv.Itoa(installationID),
		"GH_APP_PRIV_KEY":      keyPath,
	}
	for k, v := range s.env {
		vars[k] = v
	}
	cfg, err := config.Parse(flag.NewFlagSet("e2e", flag.ContinueOnError), args, func(k string) (string, bool) {
		v, ok := vars[k]
		return v, ok && v != ""
	})
	if err != nil {
		return nil, err
	}
	noProbe := "0"
	reg := prometheus.NewRegistry()
	var lease, renew, retry *time.Duration
	if s.leaderElection {
		cfg.LeaderElect, cfg.LeaderElectionNamespace = true, trackerNamespace
		lease, renew, retry = ptr.To(3*time.Second), ptr.To(2*time.Second), ptr.To(500*time.Millisecond)
	}
	rsinks := map[string]sink.RolloutSink{"e2e": notes}
	if s.configuredRolloutSinks {
		rsinks = nil
	}
	a, err := app.New(cfg, app.Options{
		RolloutSinks:           rsinks,
		LeaseDuration:          lease,
		RenewDeadline:          renew,
		RetryPeriod:            retry,
		RestConfig:             env.ServiceAccountConfig(trackerNamespace, serviceAccount),
		Registry:               reg,
		HealthProbeBindAddress: &noProbe,
		SkipNameValidation:     true,
		RetentionInterval:      s.retentionInterval,
		Log:                    testLogger(),
	})
	if err != nil {
		return nil, err
	}
	runCtx, cancel := context.WithCancel(context.Background())
	in := &instance{app: a, reg: reg, cancel: cancel, done: make(chan error, 1)}
	go func() { in.done <- a.Start(runCtx) }()
	if err := waitServing(ctx, net.JoinHostPort(wo.Host, strconv.Itoa(wo.Port))); err != nil {
		_ = in.stop()
		return nil, err
	}
	if !a.Manager.GetCache().WaitForCacheSync(ctx) {
		_ = in.stop()
		return nil, fmt.Errorf("the tracker's cache did not sync")
	}
	if !s.leaderElection {
		if err := in.waitReady(ctx); err != nil {
			_ = in.stop()
			return nil, err
		}
	}
	return in, nil
}

// waitReady waits until the instance leads and has resumed from the ledger.
func (in *instance) waitReady(ctx context.Context) error {
	for !in.app.Tracker.Ready() {
		select {
		case <-ctx.Done():
			return fmt.Errorf("the tracker did not resume from the ledger: %w", ctx.Err())
		case err := <-in.done:
			return fmt.Errorf("the tracker stopped: %w", err)
		case <-time.After(20 * time.Millisecond):
		}
	}
	return nil
}

func (in *instance) stop() error {
	in.cancel()
	select {
	case err := <-in.done:
		return err
	case <-time.After(30 * time.Second):
		return fmt.Errorf("the tracker did not stop within 30s")
	}
}

// waitServing waits until the webhook server answers TLS handshakes.
func waitServing(ctx context.Context, addr string) error {
	for {
		d := tls.Dialer{Config: &tls.Config{InsecureSkipVerify: true}} //nolint:gosec // only probing that it serves
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err == nil {
			return conn.Close()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("webhook server at %s not serving: %w", addr, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func testLogger() logr.Logger {
	if flag.Lookup("test.v") != nil && flag.Lookup("test.v").Value.String() == "true" {
		return zap.New(zap.UseDevMode(true))
	}
	return logr.Discard()
}

// withTracker replaces the suite's tracker, for the duration of t, with one started with settings. current
// returns the running instance; restart stops it, runs whileStopped (nil for nothing) and starts it again (the
// ledger carries what it delivered over).
func withTracker(t *testing.T, settings trackerSettings) (current func() *instance, restart func(whileStopped func())) {
	t.Helper()
	if err := tracker.stop(); err != nil {
		t.Fatalf("stopping the suite's tracker: %v", err)
	}
	in, err := startTracker(ctxFor(t), settings)
	if err != nil {
		t.Fatalf("starting the test's tracker: %v", err)
	}
	t.Cleanup(func() {
		if err := in.stop(); err != nil {
			t.Errorf("stopping the test's tracker: %v", err)
		}
		if tracker, err = startTracker(context.Background(), trackerSettings{}); err != nil {
			t.Fatalf("starting the suite's tracker again: %v", err)
		}
	})
	return func() *instance { return in }, func(whileStopped func()) {
		t.Helper()
		if err := in.stop(); err != nil {
			t.Fatalf("stopping the test's tracker: %v", err)
		}
		if whileStopped != nil {
			whileStopped()
		}
		if in, err = startTracker(ctxFor(t), settings); err != nil {
			t.Fatalf("starting the test's tracker again: %v", err)
		}
	}
}
