package testenv

import (
	"context"
	"crypto/tls"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/controller-runtime/pkg/webhook"
)

// kwokStages is the kwok --config: node and pod lifecycle Stages, see the file for what it changes upstream.
//
//go:embed kwok-stages.yaml
var kwokStages []byte

const (
	// DefaultNodes is how many fake nodes Start creates when Options.Nodes is zero.
	DefaultNodes = 2
	// DefaultStartTimeout bounds Start when Options.StartTimeout is zero and ctx has no earlier deadline.
	DefaultStartTimeout = 90 * time.Second

	// Loopback addresses for kwok: the nodes' InternalIP and the pod IP range. Nothing listens there, and
	// nothing may ever be sent to a private-range address from a test.
	kwokNodeIP  = "127.0.0.2"
	kwokPodCIDR = "127.1.0.0/24"

	stopGrace = 10 * time.Second
)

// Options configures Start. The zero value is a working configuration.
type Options struct {
	// BinDir holds etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok. Empty means
	// <repo root>/bin/k8s/<KUBERNETES_VERSION from hack/versions.env>; KUBEBUILDER_ASSETS overrides both.
	BinDir string

	// Webhooks, if set, are the admission webhooks to install, given as envtest expects them (in-memory
	// objects in MutatingWebhooks/ValidatingWebhooks, or manifest files in Paths). Every webhook whose
	// clientConfig names a service path is rewritten to https://<LocalServingHost>:<LocalServingPort>/<path>
	// with a CA envtest generates; Env.Webhooks and Env.WebhookServerOptions tell the caller where to serve.
	// LocalServingHost defaults to 127.0.0.1. Start works on a copy: the caller's value is not modified.
	Webhooks *envtest.WebhookInstallOptions

	// LogWriter receives the output of every control plane process, one "<process> | <line>" per line.
	// Empty means a file in the temporary directory (Env.LogPath), removed by Stop unless KeepLog was called.
	LogWriter io.Writer

	// Nodes is the number of fake kwok nodes. Zero means DefaultNodes.
	Nodes int

	// Scheme is the scheme of Env.Client. Nil means client-go's scheme (all built-in types).
	Scheme *runtime.Scheme

	// StartTimeout bounds Start. Zero means DefaultStartTimeout.
	StartTimeout time.Duration
}

// Env is a running control plane. Its fields are set by Start and must not be changed.
type Env struct {
	// Config authenticates as an administrator (a client certificate in group system:masters).
	Config *rest.Config
	// KubeconfigPath is a kubeconfig file for the same administrator, for child processes and kubectl.
	KubeconfigPath string
	// Client is a controller-runtime client (no cache) built from Config and Options.Scheme.
	Client client.Client
	// Scheme is the scheme of Client.
	Scheme *runtime.Scheme
	// Webhooks are the installed webhook options, with LocalServingHost, LocalServingPort,
	// LocalServingCertDir (tls.crt, tls.key) and LocalServingCAData filled in by envtest.
	Webhooks *envtest.WebhookInstallOptions
	// Nodes are the names of the fake nodes, all Ready.
	Nodes []string
	// BinDir is the directory the binaries were run from.
	BinDir string
	// LogPath is the file holding the control plane output; empty when Options.LogWriter was given.
	LogPath string

	env      *envtest.Environment
	workDir  string
	logFile  *os.File
	children []*child
	reaper   *exec.Cmd

	mu       sync.Mutex
	keepLog  bool
	stopOnce sync.Once
	stopErr  error
}

// Start runs etcd and kube-apiserver (envtest), then kube-controller-manager, kube-scheduler and kwok, and
// creates the fake nodes. It returns once the API server serves, the controller manager and the scheduler
// report healthy, kwok runs and every node is Ready and untainted. ctx bounds only the start: the control
// plane runs until Stop. If any process exits early, the error carries the end of its output.
//
// An error wrapping ErrBinariesMissing means the binaries are not there (see SkipOrFail). On error, whatever
// was started has been stopped again.
func Start(ctx context.Context, opts Options) (*Env, error) {
	dir, err := binDir(opts.BinDir)
	if err != nil {
		return nil, err
	}
	if err := checkBinaries(dir); err != nil {
		return nil, err
	}
	if opts.Nodes <= 0 {
		opts.Nodes = DefaultNodes
	}
	if opts.StartTimeout <= 0 {
		opts.StartTimeout = DefaultStartTimeout
	}
	if opts.Scheme == nil {
		opts.Scheme = clientgoscheme.Scheme
	}
	ctx, cancel := context.WithTimeout(ctx, opts.StartTimeout)
	defer cancel()

	e := &Env{BinDir: dir, Scheme: opts.Scheme}
	if e.workDir, err = os.MkdirTemp("", "testenv-"); err != nil {
		return nil, fmt.Errorf("create work dir: %w", err)
	}
	w := opts.LogWriter
	if w == nil {
		if e.logFile, err = os.CreateTemp("", "testenv-*.log"); err != nil {
			_ = os.RemoveAll(e.workDir)
			return nil, fmt.Errorf("create log file: %w", err)
		}
		e.LogPath = e.logFile.Name()
		w = e.logFile
	}
	sink := &logSink{w: w}

	if err := e.start(ctx, opts, sink); err != nil {
		e.KeepLog()
		stopErr := e.Stop()
		if e.LogPath != "" {
			err = fmt.Errorf("%w (control plane log: %s)", err, e.LogPath)
		}
		return nil, errors.Join(fmt.Errorf("start test control plane: %w", err), stopErr)
	}
	return e, nil
}

func (e *Env) start(ctx context.Context, opts Options, sink *logSink) error {
	began := time.Now()
	startDeadline, _ := ctx.Deadline() // Start set one
	webhooks := copyWebhooks(opts.Webhooks)

	etcdOut, apiOut := sink.writer("etcd"), sink.writer("kube-apiserver")
	api := &envtest.APIServer{
		Path: filepath.Join(e.BinDir, "kube-apiserver"),
		Out:  apiOut,
		Err:  apiOut,
	}
	// Without it the API server advertises the host's primary (usually private) address as the endpoint of
	// the kubernetes service.
	api.Configure().Set("advertise-address", "127.0.0.1")
	e.env = &envtest.Environment{
		ControlPlane: envtest.ControlPlane{
			Etcd:      &envtest.Etcd{Path: filepath.Join(e.BinDir, "etcd"), Out: etcdOut, Err: etcdOut},
			APIServer: api,
		},
		Scheme:                   opts.Scheme,
		BinaryAssetsDirectory:    e.BinDir,
		WebhookInstallOptions:    webhooks,
		ControlPlaneStartTimeout: time.Until(startDeadline),
		ControlPlaneStopTimeout:  stopGrace,
	}
	cfg, err := e.env.Start()
	if err != nil {
		return fmt.Errorf("envtest: %w; last kube-apiserver output:\n%s\nlast etcd output:\n%s", err, apiOut.Tail(), etcdOut.Tail())
	}
	e.Config = cfg
	e.Webhooks = &e.env.WebhookInstallOptions
	sink.note("etcd and kube-apiserver up at %s after %s", cfg.Host, time.Since(began).Round(time.Millisecond))

	e.KubeconfigPath = filepath.Join(e.workDir, "kubeconfig")
	if err := os.WriteFile(e.KubeconfigPath, e.env.KubeConfig, 0o600); err != nil {
		return fmt.Errorf("write kubeconfig: %w", err)
	}
	kwokConfig := filepath.Join(e.workDir, "kwok.yaml")
	if err := os.WriteFile(kwokConfig, kwokStages, 0o600); err != nil {
		return fmt.Errorf("write kwok config: %w", err)
	}
	if e.Client, err = client.New(cfg, client.Options{Scheme: opts.Scheme}); err != nil {
		return fmt.Errorf("create client: %w", err)
	}

	kcmPort, err := freePort()
	if err != nil {
		return err
	}
	schedPort, err := freePort()
	if err != nil {
		return err
	}
	procs := []struct {
		name string
		args []string
	}{
		{"kube-controller-manager", controllerManagerArgs(e.KubeconfigPath, kcmPort)},
		{"kube-scheduler", schedulerArgs(e.KubeconfigPath, schedPort)},
		{"kwok", kwokArgs(e.KubeconfigPath, kwokConfig)},
	}
	for _, p := range procs {
		c, err := startChild(p.name, filepath.Join(e.BinDir, p.name), p.args, sink)
		if err != nil {
			return err
		}
		e.children = append(e.children, c)
	}

	// From here on, a test binary that dies without Stop does not leak the control plane.
	pgids := childPIDs(e.env.ControlPlane.Etcd.Path, api.Path)
	for _, c := range e.children {
		pgids = append(pgids, c.cmd.Process.Pid)
	}
	if e.reaper, err = startReaper(pgids, []string{
		e.workDir, e.env.ControlPlane.Etcd.DataDir, api.CertDir, e.Webhooks.LocalServingCertDir,
	}); err != nil {
		return err
	}

	for i := range opts.Nodes {
		e.Nodes = append(e.Nodes, nodeName(i))
	}
	if err := createNodes(ctx, e.Client, e.Nodes); err != nil {
		return err
	}

	checks := []struct {
		what string
		ok   func(context.Context) (bool, string)
	}{
		{"kube-controller-manager healthy", healthz(kcmPort, "kube-controller-manager")},
		{"kube-scheduler ready", healthz(schedPort, "kube-scheduler")},
		{"nodes Ready", func(ctx context.Context) (bool, string) { return nodesReady(ctx, e.Client, e.Nodes) }},
	}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for _, check := range checks {
		for {
			if err := e.Err(); err != nil {
				return err
			}
			ok, why := check.ok(ctx)
			if ok {
				sink.note("%s after %s", check.what, time.Since(began).Round(time.Millisecond))
				break
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("waiting for %s: %w: %s", check.what, context.Cause(ctx), why)
			case <-tick.C:
			}
		}
	}
	return nil
}

// copyWebhooks returns what Start hands to envtest: a deep copy of the caller's options (envtest rewrites the
// objects in place), serving on 127.0.0.1 unless told otherwise. envtest builds each URL as
// "https://host:port/" + service path, so the usual "/validate-x" would become "//validate-x": the API
// server's client cleans that up, but the installed URL should be what it looks like, so the leading slashes
// are trimmed. (Webhooks loaded from Paths are parsed inside envtest and keep the double slash.)
func copyWebhooks(in *envtest.WebhookInstallOptions) envtest.WebhookInstallOptions {
	var out envtest.WebhookInstallOptions
	if in != nil {
		out = *in
		out.MutatingWebhooks, out.ValidatingWebhooks = nil, nil
		for _, h := range in.MutatingWebhooks {
			h = h.DeepCopy()
			for i := range h.Webhooks {
				trimServicePath(&h.Webhooks[i].ClientConfig)
			}
			out.MutatingWebhooks = append(out.MutatingWebhooks, h)
		}
		for _, h := range in.ValidatingWebhooks {
			h = h.DeepCopy()
			for i := range h.Webhooks {
				trimServicePath(&h.Webhooks[i].ClientConfig)
			}
			out.ValidatingWebhooks = append(out.ValidatingWebhooks, h)
		}
	}
	if out.LocalServingHost == "" {
		out.LocalServingHost = "127.0.0.1"
	}
	return out
}

func trimServicePath(cc *admissionregistrationv1.WebhookClientConfig) {
	if cc.Service != nil && cc.Service.Path != nil {
		p := strings.TrimLeft(*cc.Service.Path, "/")
		cc.Service.Path = &p
	}
}

// controllerManagerArgs: every default controller (Deployments, ReplicaSets, StatefulSets, DaemonSets, Jobs,
// CronJobs, garbage collector, namespace deletion, node lifecycle, ...) minus those that cannot work here or
// only add noise, authenticated as the administrator (no per-controller service account credentials: there is
// no token signer), serving health checks on a loopback port. No --authentication-kubeconfig: /healthz is
// always allowed, and with one the delegated authentication keeps logging errors because envtest's API server
// publishes no request-header CA.
func controllerManagerArgs(kubeconfig string, port int) []string {
	return []string{
		"--kubeconfig=" + kubeconfig,
		"--leader-elect=false",
		"--bind-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(port),
		"--use-service-account-credentials=false",
		"--controllers=" + strings.Join([]string{
			"*",
			// Needs --service-account-private-key-file; the ServiceAccount admission plugin is off (envtest).
			"-serviceaccount-token-controller",
			// Need a metrics API / cloud provider / pod CIDRs / CSR signing keys that a test cluster lacks.
			"-horizontal-pod-autoscaler-controller",
			"-cloud-node-lifecycle-controller", "-service-lb-controller", "-node-route-controller",
			"-node-ipam-controller", "-certificatesigningrequest-signing-controller",
		}, ","),
		// Talk to the API server as fast as it answers: tests and benchmarks (tens of thousands of pods) wait on
		// these controllers, and on 2 cores the API server, not a client-side limit, should be what paces them.
		"--kube-api-qps=1000",
		"--kube-api-burst=2000",
		"--concurrent-deployment-syncs=10",
		"--concurrent-replicaset-syncs=10",
	}
}

// schedulerArgs: the default scheduler, without leader election, serving health checks on a loopback port
// (no --authentication-kubeconfig, as for the controller manager).
func schedulerArgs(kubeconfig string, port int) []string {
	return []string{
		"--kubeconfig=" + kubeconfig,
		"--leader-elect=false",
		"--bind-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(port),
	}
}

// kwokArgs: kwok manages only the nodes Start creates (by annotation), with the stages in kwok-stages.yaml,
// loopback node and pod IPs, and its kubelet-like server on an ephemeral loopback port. It renews each node's
// Lease, as a kubelet does: without it the node lifecycle controller takes the nodes for NotReady every
// node-monitor-grace-period (50s) and marks their pods not Ready, which kwok never undoes.
func kwokArgs(kubeconfig, config string) []string {
	return []string{
		"--kubeconfig=" + kubeconfig,
		"--config=" + config,
		"--manage-all-nodes=false",
		"--manage-nodes-with-annotation-selector=" + NodeAnnotation + "=fake",
		"--server-address=127.0.0.1:0",
		"--node-ip=" + kwokNodeIP,
		"--cidr=" + kwokPodCIDR,
		"--node-lease-duration-seconds=40",
	}
}

// healthz checks a component's /healthz on its loopback secure port. Its serving certificate is self-signed
// and generated at start, so it is not verified: the connection never leaves the machine.
func healthz(port int, name string) func(context.Context) (bool, string) {
	hc := &http.Client{
		Timeout:   time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}, //nolint:gosec // loopback, self-signed
	}
	url := "https://127.0.0.1:" + strconv.Itoa(port) + "/healthz"
	return func(ctx context.Context) (bool, string) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return false, err.Error()
		}
		resp, err := hc.Do(req)
		if err != nil {
			return false, fmt.Sprintf("%s: %s", name, err)
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return false, fmt.Sprintf("%s: GET %s: %s: %s", name, url, resp.Status, body)
		}
		return true, ""
	}
}

// freePort returns a loopback TCP port that was free a moment ago, for a process started right after to bind.
// Another process could take it in between; the kernel picks ephemeral ports at random, so that is unlikely.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Err returns an error describing the first control plane process (kube-controller-manager, kube-scheduler,
// kwok) that has exited since Start, with the end of its output; nil while all run. Tests that time out
// waiting for the cluster can report it.
func (e *Env) Err() error {
	for _, c := range e.children {
		if c.exited() {
			return c.exitError()
		}
	}
	return nil
}

// ServiceAccountConfig returns a copy of Config that impersonates the service account namespace/name with
// the groups a service account token carries, so RBAC applies as it would to a pod running as it. The
// service account need not exist.
func (e *Env) ServiceAccountConfig(namespace, name string) *rest.Config {
	cfg := rest.CopyConfig(e.Config)
	cfg.Impersonate = rest.ImpersonationConfig{
		UserName: "system:serviceaccount:" + namespace + ":" + name,
		Groups:   []string{"system:serviceaccounts", "system:serviceaccounts:" + namespace, "system:authenticated"},
	}
	return cfg
}

// WebhookServerOptions returns the options for a controller-runtime webhook server that serves where the
// installed webhooks point: LocalServingHost:LocalServingPort with the certificate in LocalServingCertDir.
func (e *Env) WebhookServerOptions() webhook.Options {
	return webhook.Options{
		Host:    e.Webhooks.LocalServingHost,
		Port:    e.Webhooks.LocalServingPort,
		CertDir: e.Webhooks.LocalServingCertDir,
	}
}

// KeepLog makes Stop leave the log file (LogPath) in place, typically because a test failed.
func (e *Env) KeepLog() {
	e.mu.Lock()
	e.keepLog = true
	e.mu.Unlock()
}

// Stop terminates kwok, the scheduler and the controller manager (their whole process groups), then the API
// server and etcd, and removes the temporary files; the log file stays if KeepLog was called or a process
// had exited early. It is safe to call more than once.
func (e *Env) Stop() error {
	e.stopOnce.Do(func() {
		if e.Err() != nil {
			e.KeepLog()
		}
		var errs []error
		if e.reaper != nil {
			// Its process group: the shell and the sleep it may be waiting on.
			if err := syscall.Kill(-e.reaper.Process.Pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
				errs = append(errs, fmt.Errorf("stop reaper: %w", err))
			}
		}
		var wg sync.WaitGroup
		errc := make(chan error, len(e.children))
		for _, c := range e.children {
			wg.Go(func() { errc <- c.stop(stopGrace) })
		}
		wg.Wait()
		close(errc)
		for err := range errc {
			errs = append(errs, err)
		}
		if e.env != nil {
			if err := e.env.Stop(); err != nil {
				errs = append(errs, fmt.Errorf("stop envtest: %w", err))
			}
		}
		if e.workDir != "" {
			errs = append(errs, os.RemoveAll(e.workDir))
		}
		if e.logFile != nil {
			errs = append(errs, e.logFile.Close())
			e.mu.Lock()
			keep := e.keepLog
			e.mu.Unlock()
			if !keep {
				errs = append(errs, os.Remove(e.LogPath))
			}
		}
		e.stopErr = errors.Join(errs...)
	})
	return e.stopErr
}
