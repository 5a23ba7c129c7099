// Package config turns flags and environment variables into one validated Config. It is the only place that
// reads them.
package config

import (
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v4"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/deployment-tracker/deployment-tracker/internal/record"
	"github.com/deployment-tracker/deployment-tracker/internal/telemetry"
)

// Config is the whole configuration of the tracker.
type Config struct {
	// Kubernetes and scoping.
	Kubeconfig        string
	Namespace         string
	ExcludeNamespaces []string
	// NamespaceSelector and WorkloadSelector narrow the scope by labels (-namespace-selector,
	// -workload-selector); nil: every namespace, every workload. See scope.go.
	NamespaceSelector, WorkloadSelector labels.Selector

	// Servers. MetricsBindAddress is "0" when the metrics server is off.
	MetricsBindAddress string
	WebhookPort        int
	WebhookHost        string
	CertDir            string
	HealthProbeAddr    string
	// PprofBindAddress serves Go's /debug/pprof profiles (controller-runtime's pprof server); "0" or empty:
	// off.
	PprofBindAddress string

	// High availability.
	LeaderElect             bool
	LeaderElectionNamespace string

	// Durable ledger: the namespace of the DeploymentRecord objects; empty keeps records in memory only.
	LedgerNamespace  string
	LeaderElectionID string
	// LedgerRetention is how long a DeploymentRecord stays in the ledger once its key is decommissioned and
	// delivered (-ledger-retention); 0 keeps it forever.
	LedgerRetention time.Duration

	// Delivery.
	Workers int
	DryRun  bool
	// KeepForeignRecords keeps the ledger's records under another identity instead of decommissioning them.
	KeepForeignRecords bool
	RequestsPerMinute  int
	RequestsPerHour    int
	UnknownArtifactTTL time.Duration
	// ShutdownTimeout is the whole budget of a shutdown: the manager's grace period (GracefulShutdownTimeout).
	// The dispatchers' drain gets the smaller DrainTimeout out of it.
	ShutdownTimeout time.Duration

	// Rollouts: how many are kept per workload in the ledger, and for how long at most once finished.
	RolloutHistory int
	RolloutMaxAge  time.Duration

	// Records (environment variables).
	Org                 string
	BaseURL             string
	Template            *record.Template
	TemplateText        string
	LogicalEnvironment  string
	PhysicalEnvironment string
	Cluster             string

	// GitHub authentication (environment variables). Secret values never leave this struct in logs.
	APIToken string
	// APITokenFile is API_TOKEN_FILE when the token came from it: the sinks read it again when it changes.
	APITokenFile   string
	AppID          int64
	InstallationID int64
	AppPrivateKey  string // path to the PEM file

	// GitHubDeployments enables the GitHub Deployments rollout sink (-github-deployments).
	GitHubDeployments bool

	// DeliveryMetrics enables the delivery metrics rollout sink (-delivery-metrics): lead time, deployments,
	// failed rollouts and time to restore per rollout.
	DeliveryMetrics bool

	// FluxDiscoveryInterval is how often the tracker looks whether Flux's Kustomization API is served, to
	// observe the revisions Kustomizations apply (-flux-discovery-interval); 0 turns that off.
	FluxDiscoveryInterval time.Duration

	// Slack rollout sink (environment variables): enabled when a token is set.
	Slack SlackConfig

	// Telemetry is the OpenTelemetry export of the delivery metrics and rollout traces; off unless enabled.
	Telemetry TelemetryConfig
}

// TelemetryConfig configures the OTLP export (-telemetry-endpoint, -telemetry-insecure and the standard
// OTEL_EXPORTER_OTLP_* variables). Parse reads the variables that turn it on and choose the protocol; the
// exporters read the others themselves (headers, certificates, timeout, compression).
type TelemetryConfig struct {
	// Endpoint is -telemetry-endpoint: host:port or an http(s) URL; empty: the endpoint variables.
	Endpoint string
	// Insecure is -telemetry-insecure: plain text, without TLS.
	Insecure bool
	// Protocol is OTEL_EXPORTER_OTLP_PROTOCOL: "grpc" or "http/protobuf"; empty: grpc.
	Protocol string
	// Metrics and Traces say which signals are exported: both with -telemetry-endpoint or
	// OTEL_EXPORTER_OTLP_ENDPOINT, else those whose own endpoint variable is set.
	Metrics, Traces bool
}

// Enabled reports whether anything is exported over OTLP.
func (t TelemetryConfig) Enabled() bool { return t.Metrics || t.Traces }

// SlackConfig configures the Slack rollout sink. Token never leaves this struct in logs.
type SlackConfig struct {
	Token   string // from SLACK_TOKEN_FILE (preferred) or SLACK_TOKEN
	Channel string // SLACK_CHANNEL: the default channel, an ID or #name
	APIURL  string // SLACK_API_URL: the Web API root; empty: the sink's default, https://slack.com/api/
	// TeamLabel is SLACK_TEAM_LABEL: the label key whose value, on the workload or its namespace, the messages
	// show as the team; empty: no team.
	TeamLabel string
	// TokenFile is SLACK_TOKEN_FILE when the token came from it: the sink reads it again when it changes (a
	// rotated Secret), without a restart.
	TokenFile string
}

// Enabled reports whether the Slack sink is configured.
func (s SlackConfig) Enabled() bool { return s.Token != "" }

// Env looks up an environment variable; os.LookupEnv in production, a map in tests.
type Env func(key string) (string, bool)

// Parse reads args (without the program name) and the environment into a validated Config. Every problem is
// reported at once, each naming the flag or variable. Flags registered on fs by other packages (for example
// the logger's) are parsed too; pass flag.NewFlagSet(name, flag.ContinueOnError) in tests.
//
// Parse reads the credential files it is pointed at (API_TOKEN_FILE, GH_APP_PRIV_KEY), but not the webhook's
// certificate: the manifests' tests and embedders parse configurations whose certificate is only mounted in
// the pod. The binary calls Load, which checks it too.
func Parse(fs *flag.FlagSet, args []string, env Env) (*Config, error) {
	c, errs, err := parse(fs, args, env)
	if err != nil {
		return nil, err
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return c, nil
}

// Load is Parse plus the check that -cert-dir holds the webhook's serving certificate (tls.crt and tls.key
// forming a valid key pair), reported with the other problems: without it the webhook server cannot start.
func Load(fs *flag.FlagSet, args []string, env Env) (*Config, error) {
	c, errs, err := parse(fs, args, env)
	if err != nil {
		return nil, err
	}
	errs = append(errs, checkCertDir(c.CertDir)...)
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return c, nil
}

// parse returns the Config and its problems, or an error alone when the flags do not parse.
func parse(fs *flag.FlagSet, args []string, env Env) (*Config, []error, error) {
	c := &Config{}
	var exclude, tmpl, namespaceSelector, workloadSelector string
	var metricsPort int
	fs.StringVar(&c.Kubeconfig, "kubeconfig", "", "path to a kubeconfig; empty: in-cluster config or $KUBECONFIG")
	fs.StringVar(&c.Namespace, "namespace", "", "only track pods in this namespace (default: all namespaces)")
	fs.StringVar(&exclude, "exclude-namespaces", "", "comma-separated namespaces whose pods are not tracked (not with -namespace)")
	fs.StringVar(&namespaceSelector, "namespace-selector", "", "label selector of the namespaces whose pods are tracked, for example shard=a (cluster-wide only; default: all)")
	fs.StringVar(&workloadSelector, "workload-selector", "", "label selector of the workloads tracked, matched against the labels of a pod's top owner (its Deployment, StatefulSet, DaemonSet, CronJob…; a bare pod's own), for example tracking!=off (default: all)")
	fs.IntVar(&c.Workers, "workers", 2, "number of workers posting records (1 to 64)")
	fs.StringVar(&c.MetricsBindAddress, "metrics-bind-address", ":9090", "address of the Prometheus /metrics endpoint, host:port (\"0\" disables it)")
	fs.IntVar(&metricsPort, "metrics-port", 0, "port of the /metrics endpoint, as in the reference implementation: when set, wins over -metrics-bind-address with :<port> (0 to 65535; 0 disables it)")
	fs.IntVar(&c.WebhookPort, "webhook-port", 9443, "port of the admission webhook server (HTTPS; 1 to 65535)")
	fs.StringVar(&c.WebhookHost, "webhook-host", "", "address the webhook server binds to (default: all)")
	fs.StringVar(&c.CertDir, "cert-dir", "/tmp/k8s-webhook-server/serving-certs", "directory holding the webhook's tls.crt and tls.key (required at start; reloaded when they change)")
	fs.StringVar(&c.HealthProbeAddr, "health-probe-bind-address", ":8081", "address of the /healthz and /readyz endpoints, host:port (\"0\" disables them)")
	fs.StringVar(&c.PprofBindAddress, "pprof-bind-address", "0", "address of Go's /debug/pprof profiles (heap, CPU, goroutines), host:port, unauthenticated: bind it to 127.0.0.1 and port-forward (\"0\" disables it)")
	fs.BoolVar(&c.LeaderElect, "leader-elect", false, "elect a leader among replicas; only the leader posts records")
	fs.StringVar(&c.LeaderElectionNamespace, "leader-election-namespace", "", "namespace of the leader election Lease (default: $POD_NAMESPACE)")
	fs.StringVar(&c.LedgerNamespace, "ledger-namespace", "", "namespace of the durable ledger (DeploymentRecord objects; default: $POD_NAMESPACE; \"-\": no ledger, records in memory only)")
	fs.StringVar(&c.LeaderElectionID, "leader-election-id", "deployment-tracker", "name of the leader election Lease")
	fs.DurationVar(&c.LedgerRetention, "ledger-retention", 7*24*time.Hour, "how long a DeploymentRecord stays in the ledger once its key is decommissioned and the decommission delivered (0 keeps it forever; deployed or undelivered records always stay)")
	fs.BoolVar(&c.DryRun, "dry-run", false, "print records as JSON lines on stdout instead of posting them to GitHub")
	fs.BoolVar(&c.KeepForeignRecords, "keep-foreign-records", false, "at start, keep the ledger's deployed records under another identity (CLUSTER, LOGICAL_ENVIRONMENT, PHYSICAL_ENVIRONMENT or DN_TEMPLATE changed) as they are, instead of decommissioning them")
	fs.IntVar(&c.RequestsPerMinute, "github-requests-per-minute", 80, "client-side pace of record posts per minute, below GitHub's secondary rate limit (0: unlimited)")
	fs.IntVar(&c.RequestsPerHour, "github-requests-per-hour", 500, "client-side pace of record posts per hour (0: unlimited)")
	fs.DurationVar(&c.UnknownArtifactTTL, "unknown-artifact-ttl", time.Hour, "how long a 404 for an unknown artifact digest is remembered before it is tried again (0 or more)")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", 20*time.Second, "on SIGTERM, how long the shutdown may take in all; queued records and rollout notifications may still be delivered for the first three quarters of it, at most all but 5s (at least 1s)")
	fs.BoolVar(&c.GitHubDeployments, "github-deployments", true, "create GitHub deployments and deployment statuses for the rollouts of workloads annotated with github.deployment-tracker.io/repository or named by a GitHubDeployment (needs the Deployments write permission; not with -dry-run)")
	fs.BoolVar(&c.DeliveryMetrics, "delivery-metrics", true, "observe delivery metrics once per rollout (deptracker_lead_time_seconds, deptracker_deployments_total, …); commit times come from GitHub, or with -dry-run from annotations only")
	fs.IntVar(&c.RolloutHistory, "rollout-history", 10, "rollouts kept per workload in the ledger (RolloutRecord objects; 1 to 1000)")
	fs.DurationVar(&c.RolloutMaxAge, "rollout-max-age", 30*24*time.Hour, "how long a finished rollout is kept in the ledger at most (at least 1h; the latest of a workload stays while it exists)")
	fs.DurationVar(&c.FluxDiscoveryInterval, "flux-discovery-interval", 3*time.Minute, "how often to look whether Flux's Kustomization API (kustomize.toolkit.fluxcd.io/v1) is served, to observe the apply lead time of the revisions Kustomizations apply (0 turns it off)")
	fs.StringVar(&c.Telemetry.Endpoint, "telemetry-endpoint", "", "OpenTelemetry collector receiving the delivery metrics and a trace per rollout over OTLP: host:port (TLS unless -telemetry-insecure) or an http(s) URL; empty: off, unless OTEL_EXPORTER_OTLP_ENDPOINT or a per-signal endpoint variable is set (this flag wins over them)")
	fs.BoolVar(&c.Telemetry.Insecure, "telemetry-insecure", false, "send OTLP in plain text, without TLS (an in-cluster collector)")
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		return nil, nil, fmt.Errorf("flags: %w", err)
	}
	if fs.NArg() > 0 {
		return nil, nil, fmt.Errorf("flags: unexpected argument %q", fs.Arg(0))
	}
	metricsPortSet := false
	fs.Visit(func(f *flag.Flag) { metricsPortSet = metricsPortSet || f.Name == "metrics-port" })

	get := func(k string) string { v, _ := env(k); return strings.TrimSpace(v) }
	var errs []error
	bad := func(name, format string, a ...any) { errs = append(errs, fmt.Errorf(name+": "+format, a...)) }

	c.Org = get("ORG")
	c.BaseURL = get("BASE_URL")
	if c.BaseURL == "" {
		c.BaseURL = "https://api.github.com"
	}
	tmpl = get("DN_TEMPLATE")
	if tmpl == "" {
		tmpl = record.DefaultTemplate
	}
	c.TemplateText = tmpl
	c.LogicalEnvironment = get("LOGICAL_ENVIRONMENT")
	c.PhysicalEnvironment = get("PHYSICAL_ENVIRONMENT")
	c.Cluster = get("CLUSTER")
	c.AppPrivateKey = get("GH_APP_PRIV_KEY")
	switch c.LedgerNamespace {
	case "":
		c.LedgerNamespace = get("POD_NAMESPACE")
	case "-":
		c.LedgerNamespace = ""
	default:
		if msgs := validation.IsDNS1123Label(c.LedgerNamespace); len(msgs) > 0 {
			bad("-ledger-namespace", "%q is not a namespace name: %s", c.LedgerNamespace, strings.Join(msgs, "; "))
		}
	}
	if c.LeaderElectionNamespace == "" {
		c.LeaderElectionNamespace = get("POD_NAMESPACE")
	}

	if t, err := record.ParseTemplate(tmpl); err != nil {
		bad("DN_TEMPLATE", "%w", err)
	} else if missing := missingPlaceholders(t, c.Namespace != ""); len(missing) > 0 {
		bad("DN_TEMPLATE", "%q lacks %s: the records of different containers would get the same deployment name and overwrite each other ({{namespace}} may be left out with -namespace)",
			tmpl, strings.Join(missing, ", "))
	} else {
		c.Template = t
	}
	if exclude != "" {
		for _, ns := range strings.Split(exclude, ",") {
			if ns = strings.TrimSpace(ns); ns != "" {
				c.ExcludeNamespaces = append(c.ExcludeNamespaces, ns)
			}
		}
	}
	if c.Namespace != "" && len(c.ExcludeNamespaces) > 0 {
		bad("-exclude-namespaces", "cannot be combined with -namespace")
	}
	for _, ns := range append([]string{c.Namespace}, c.ExcludeNamespaces...) {
		if ns == "" {
			continue
		}
		if msgs := validation.IsDNS1123Label(ns); len(msgs) > 0 {
			bad("-namespace/-exclude-namespaces", "%q is not a namespace name: %s", ns, strings.Join(msgs, "; "))
		}
	}
	errs = append(errs, c.parseSelectors(namespaceSelector, workloadSelector)...)
	if c.Workers < 1 || c.Workers > 64 {
		bad("-workers", "must be between 1 and 64, got %d", c.Workers)
	}
	// A slice, not a map: the errors come in the same order every time.
	for _, p := range []struct {
		flag      string
		port      int
		check     bool
		zeroAllow bool
	}{{"-metrics-port", metricsPort, metricsPortSet, true}, {"-webhook-port", c.WebhookPort, true, false}} {
		if p.check && (p.port < 0 || p.port > 65535 || (p.port == 0 && !p.zeroAllow)) {
			bad(p.flag, "invalid port %d", p.port)
		}
	}
	// -metrics-port is the reference implementation's flag: set explicitly, it wins.
	switch {
	case metricsPortSet && metricsPort == 0:
		c.MetricsBindAddress = "0"
	case metricsPortSet:
		c.MetricsBindAddress = fmt.Sprintf(":%d", metricsPort)
	default:
		if err := checkBindAddress(c.MetricsBindAddress); err != nil {
			bad("-metrics-bind-address", "%w", err)
		}
	}
	if c.HealthProbeAddr != "" {
		if err := checkBindAddress(c.HealthProbeAddr); err != nil {
			bad("-health-probe-bind-address", "%w", err)
		}
	}
	if c.PprofBindAddress != "" {
		if err := checkBindAddress(c.PprofBindAddress); err != nil {
			bad("-pprof-bind-address", "%w", err)
		}
	}
	if c.CertDir == "" {
		bad("-cert-dir", "must not be empty")
	}
	if c.RequestsPerMinute < 0 {
		bad("-github-requests-per-minute", "must not be negative")
	}
	if c.RequestsPerHour < 0 {
		bad("-github-requests-per-hour", "must not be negative")
	}
	if c.UnknownArtifactTTL < 0 {
		bad("-unknown-artifact-ttl", "must not be negative")
	}
	if c.ShutdownTimeout < time.Second {
		// Below a second the reserve kept from the drain (DrainTimeout) is too short to stop anything in.
		bad("-shutdown-timeout", "must be at least 1s, got %s", c.ShutdownTimeout)
	}
	if c.RolloutHistory < 1 || c.RolloutHistory > 1000 {
		bad("-rollout-history", "must be between 1 and 1000, got %d", c.RolloutHistory)
	}
	if c.RolloutMaxAge < time.Hour {
		bad("-rollout-max-age", "must be at least 1h, got %s", c.RolloutMaxAge)
	}
	if c.LedgerRetention < 0 {
		bad("-ledger-retention", "must not be negative (0 keeps decommissioned records forever), got %s", c.LedgerRetention)
	}
	if c.FluxDiscoveryInterval < 0 {
		bad("-flux-discovery-interval", "must not be negative (0 turns it off), got %s", c.FluxDiscoveryInterval)
	}
	if c.LeaderElect && c.LeaderElectionNamespace == "" && c.Kubeconfig != "" {
		bad("-leader-election-namespace", "required with -leader-elect outside a cluster (or set POD_NAMESPACE)")
	}
	if c.LogicalEnvironment == "" {
		bad("LOGICAL_ENVIRONMENT", "is required (for example production)")
	}
	if c.Cluster == "" {
		bad("CLUSTER", "is required (the name of this cluster)")
	}
	// Every record carries these; GitHub rejects all records of a value that is too long.
	for _, v := range []struct{ name, value string }{
		{"LOGICAL_ENVIRONMENT", c.LogicalEnvironment},
		{"PHYSICAL_ENVIRONMENT", c.PhysicalEnvironment},
		{"CLUSTER", c.Cluster},
	} {
		if n := utf8.RuneCountInString(v.value); n > record.MaxEnvironmentLength {
			bad(v.name, "is %d characters, more than the %d GitHub accepts", n, record.MaxEnvironmentLength)
		}
	}
	if c.Org != "" && !isGitHubLogin(c.Org) {
		bad("ORG", "%q is not a GitHub organization name (letters, digits and single hyphens, not at either end; at most %d characters)",
			c.Org, maxLoginLength)
	}
	if !c.DryRun {
		if c.Org == "" {
			bad("ORG", "is required (the GitHub organization records are posted to), or use -dry-run")
		}
		if err := checkBaseURL(c.BaseURL); err != nil {
			bad("BASE_URL", "%w", err)
		}
		errs = append(errs, c.parseAuth(get)...)
	}
	errs = append(errs, c.parseSlack(get)...)
	errs = append(errs, c.parseTelemetry(get)...)
	return c, errs, nil
}

// maxLoginLength is the longest GitHub login (user or organization name).
const maxLoginLength = 39

// loginPattern is GitHub's rule for logins: alphanumerics and single hyphens, not at either end.
var loginPattern = regexp.MustCompile(`^[A-Za-z0-9]+(-[A-Za-z0-9]+)*$`)

func isGitHubLogin(s string) bool { return len(s) <= maxLoginLength && loginPattern.MatchString(s) }

// checkBaseURL accepts an http(s) URL with a host and neither credentials, query nor fragment: API paths are
// appended to it.
func checkBaseURL(s string) error {
	const example = "such as https://api.github.com or https://ghes.example.com/api/v3"
	u, err := url.Parse(s)
	switch {
	case err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "":
		return fmt.Errorf("must be an http(s) URL %s", example)
	case u.User != nil:
		return errors.New("must not contain credentials (use API_TOKEN or a GitHub App)")
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.Contains(s, "#"):
		return fmt.Errorf("must not have a query or a fragment: API paths are appended to it (%s)", example)
	}
	return nil
}

// checkBindAddress accepts host:port with a numeric port, or "0" (disabled), as controller-runtime does.
func checkBindAddress(addr string) error {
	if addr == "0" {
		return nil
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not host:port (for example :9090 or 127.0.0.1:9090) nor \"0\"", addr)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("%q: invalid port %q", addr, port)
	}
	return nil
}

// missingPlaceholders names the placeholders without which two containers of the tracked namespaces could get
// the same deployment name: the container's, the workload's and, unless one namespace is tracked, the
// namespace's. It renders t with one variable changed at a time: a placeholder is there if the name changes.
func missingPlaceholders(t *record.Template, oneNamespace bool) []string {
	base := record.Vars{Namespace: "ns", DeploymentName: "workload", ContainerName: "container", Kind: "Deployment"}
	changes := func(set func(*record.Vars)) bool {
		v := base
		set(&v)
		return t.Render(v) != t.Render(base)
	}
	var missing []string
	if !oneNamespace && !changes(func(v *record.Vars) { v.Namespace = "other-ns" }) {
		missing = append(missing, "{{"+record.PlaceholderNamespace+"}}")
	}
	if !changes(func(v *record.Vars) { v.DeploymentName = "other-workload" }) {
		missing = append(missing, "{{"+record.PlaceholderDeploymentName+"}}")
	}
	if !changes(func(v *record.Vars) { v.ContainerName = "other-container" }) {
		missing = append(missing, "{{"+record.PlaceholderContainerName+"}}")
	}
	return missing
}

// checkCertDir checks that dir holds tls.crt and tls.key and that they form a key pair, as the webhook
// server's certificate watcher needs at start.
func checkCertDir(dir string) []error {
	if dir == "" {
		return nil // reported by parse
	}
	crt, key := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	var errs []error
	for _, f := range []string{crt, key} {
		if _, err := os.Stat(f); err != nil {
			errs = append(errs, fmt.Errorf("-cert-dir: the webhook's serving certificate (the certificate's Secret, mounted there): %w", err))
		}
	}
	if len(errs) > 0 {
		return errs
	}
	if _, err := tls.LoadX509KeyPair(crt, key); err != nil {
		return []error{fmt.Errorf("-cert-dir: tls.crt and tls.key in %s are not a valid key pair: %w", dir, err)}
	}
	return nil
}

// parseSlack reads the Slack sink's variables: a token from SLACK_TOKEN_FILE or SLACK_TOKEN (not both) enables
// it and requires SLACK_CHANNEL.
// maxShutdownReserve caps the part of -shutdown-timeout kept from the drain.
const maxShutdownReserve = 5 * time.Second

// DrainTimeout is how long the dispatchers may still deliver after SIGTERM: ShutdownTimeout less a reserve of a
// quarter of it, at most 5s (20s → 15s, 1m → 55s, 2s → 1.5s). The manager's grace period is ShutdownTimeout
// and counts from the same instant; the reserve is for what follows the drain within it: the posts cut at the
// drain deadline return, the ledger writes of the last outcomes, the caches, the webhook server and the
// metrics and health servers stop. A drain as long as the grace period would make the manager give up waiting
// ("failed waiting for all runnables to end within grace period") and exit non-zero before they stop.
func (c *Config) DrainTimeout() time.Duration {
	reserve := min(c.ShutdownTimeout/4, maxShutdownReserve)
	return c.ShutdownTimeout - reserve
}

func (c *Config) parseSlack(get func(string) string) []error {
	token, tokenFile := get("SLACK_TOKEN"), get("SLACK_TOKEN_FILE")
	c.Slack.Channel, c.Slack.APIURL = get("SLACK_CHANNEL"), get("SLACK_API_URL")
	c.Slack.TeamLabel = get("SLACK_TEAM_LABEL")
	var errs []error
	if c.Slack.TeamLabel != "" {
		if msgs := validation.IsQualifiedName(c.Slack.TeamLabel); len(msgs) > 0 {
			errs = append(errs, fmt.Errorf("SLACK_TEAM_LABEL: %q is not a label key: %s", c.Slack.TeamLabel, strings.Join(msgs, "; ")))
		}
	}
	switch {
	case token != "" && tokenFile != "":
		errs = append(errs, errors.New("SLACK_TOKEN, SLACK_TOKEN_FILE: set only one"))
	case tokenFile != "":
		b, err := os.ReadFile(tokenFile)
		if err != nil {
			errs = append(errs, fmt.Errorf("SLACK_TOKEN_FILE: %w", err))
		} else if c.Slack.Token = strings.TrimSpace(string(b)); c.Slack.Token == "" {
			errs = append(errs, fmt.Errorf("SLACK_TOKEN_FILE: %s is empty", tokenFile))
		} else {
			c.Slack.TokenFile = tokenFile
		}
	default:
		c.Slack.Token = token
	}
	enabled := token != "" || tokenFile != ""
	if enabled && c.Slack.Channel == "" {
		errs = append(errs, errors.New("SLACK_CHANNEL: required with a Slack token (the default channel, an ID such as C0123456789 or #name)"))
	}
	if !enabled && (c.Slack.Channel != "" || c.Slack.APIURL != "" || c.Slack.TeamLabel != "") {
		errs = append(errs, errors.New("SLACK_TOKEN_FILE: a Slack token is required with SLACK_CHANNEL, SLACK_API_URL or SLACK_TEAM_LABEL (or SLACK_TOKEN)"))
	}
	if c.Slack.APIURL == "" {
		return errs // the sink's default
	}
	if u, err := url.Parse(c.Slack.APIURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		errs = append(errs, errors.New("SLACK_API_URL: must be an http(s) URL such as https://slack.com/api/"))
	}
	return errs
}

// otlpEndpointVars are the standard variables of the OTLP endpoints
// (https://opentelemetry.io/docs/specs/otel/protocol/exporter/): both signals', the metrics', the traces'.
var otlpEndpointVars = [3]string{"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"}

// parseTelemetry reads the OpenTelemetry export's protocol and whether it is on: -telemetry-endpoint turns
// on both signals, and so does OTEL_EXPORTER_OTLP_ENDPOINT; a per-signal endpoint variable turns on its
// signal. The variables' URLs are checked only when the flag does not override them.
func (c *Config) parseTelemetry(get func(string) string) []error {
	t := &c.Telemetry
	var errs []error
	t.Protocol = get("OTEL_EXPORTER_OTLP_PROTOCOL")
	switch t.Protocol {
	case "", telemetry.ProtocolGRPC, telemetry.ProtocolHTTPProtobuf:
	default:
		errs = append(errs, fmt.Errorf("OTEL_EXPORTER_OTLP_PROTOCOL: %q is neither grpc nor http/protobuf (the Go exporters do not speak http/json)", t.Protocol))
	}
	var set [len(otlpEndpointVars)]bool
	for i, name := range otlpEndpointVars {
		v := get(name)
		set[i] = v != ""
		if set[i] && t.Endpoint == "" {
			if err := checkOTLPEnvEndpoint(v, t.Protocol); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", name, err))
			}
		}
	}
	all := t.Endpoint != "" || set[0]
	t.Metrics, t.Traces = all || set[1], all || set[2]
	if err := telemetry.CheckEndpoint(t.Endpoint, t.Protocol, t.Insecure); err != nil {
		errs = append(errs, fmt.Errorf("-telemetry-endpoint: %w", err))
	}
	if t.Insecure && !t.Enabled() {
		errs = append(errs, errors.New("-telemetry-insecure: needs -telemetry-endpoint or an OTEL_EXPORTER_OTLP_*ENDPOINT variable"))
	}
	return errs
}

// checkOTLPEnvEndpoint checks an endpoint variable as the exporters read it: an http(s) URL with a host; the
// gRPC exporter also takes host:port.
func checkOTLPEnvEndpoint(v, protocol string) error {
	u, err := url.Parse(v)
	if err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" {
		return nil
	}
	if protocol != telemetry.ProtocolHTTPProtobuf && !strings.Contains(v, "://") && telemetry.CheckEndpoint(v, protocol, false) == nil {
		return nil
	}
	// A password in it stays out of the error.
	if err == nil {
		v = u.Redacted()
	} else if i := strings.LastIndex(v, "@"); i >= 0 {
		v = "xxxxx@" + v[i+1:]
	}
	return fmt.Errorf("%q is not an http(s) URL such as http://otel-collector.observability:4317", v)
}

// parseAuth reads exactly one of: API_TOKEN, API_TOKEN_FILE, or the GitHub App trio.
func (c *Config) parseAuth(get func(string) string) []error {
	var errs []error
	token, tokenFile := get("API_TOKEN"), get("API_TOKEN_FILE")
	appID, instID := get("GH_APP_ID"), get("GH_INSTALL_ID")
	app := appID != "" || instID != "" || c.AppPrivateKey != ""
	switch {
	case token != "" && tokenFile != "":
		return []error{errors.New("API_TOKEN, API_TOKEN_FILE: set only one")}
	case (token != "" || tokenFile != "") && app:
		// Name the variables that are set, so that the message points at the ones to remove.
		var set []string
		for _, v := range []struct{ name, value string }{
			{"API_TOKEN", token}, {"API_TOKEN_FILE", tokenFile},
			{"GH_APP_ID", appID}, {"GH_INSTALL_ID", instID}, {"GH_APP_PRIV_KEY", c.AppPrivateKey},
		} {
			if v.value != "" {
				set = append(set, v.name)
			}
		}
		return []error{fmt.Errorf("%s: use a token or a GitHub App, not both", strings.Join(set, ", "))}
	case token != "":
		if hasSpace(token) {
			return []error{errors.New("API_TOKEN: contains whitespace, which no GitHub token does")}
		}
		c.APIToken = token
	case tokenFile != "":
		b, err := os.ReadFile(tokenFile)
		if err != nil {
			return []error{fmt.Errorf("API_TOKEN_FILE: %w", err)}
		}
		// The trailing newline of `echo ... > file` or an editor is removed; any other whitespace is a sign
		// of the wrong file, or a copy-paste mistake, that GitHub would answer with 401 on every post.
		switch tok := strings.TrimRight(string(b), "\r\n"); {
		case strings.TrimSpace(tok) == "":
			errs = append(errs, fmt.Errorf("API_TOKEN_FILE: %s holds no token", tokenFile))
		case hasSpace(tok):
			errs = append(errs, fmt.Errorf("API_TOKEN_FILE: %s contains whitespace besides a trailing newline", tokenFile))
		default:
			c.APIToken, c.APITokenFile = tok, tokenFile
		}
	case app:
		var err error
		if c.AppID, err = strconv.ParseInt(appID, 10, 64); err != nil || c.AppID <= 0 {
			errs = append(errs, errors.New("GH_APP_ID: must be a positive integer (the GitHub App ID)"))
		}
		if c.InstallationID, err = strconv.ParseInt(instID, 10, 64); err != nil || c.InstallationID <= 0 {
			errs = append(errs, errors.New("GH_INSTALL_ID: must be a positive integer (the installation ID)"))
		}
		if c.AppPrivateKey == "" {
			errs = append(errs, errors.New("GH_APP_PRIV_KEY: required with GH_APP_ID (path to the App's PEM private key)"))
		} else if err := checkAppKey(c.AppPrivateKey); err != nil {
			errs = append(errs, fmt.Errorf("GH_APP_PRIV_KEY: %w", err))
		}
	default:
		errs = append(errs, errors.New("API_TOKEN: GitHub credentials are required: API_TOKEN, API_TOKEN_FILE, or GH_APP_ID + GH_INSTALL_ID + GH_APP_PRIV_KEY (or use -dry-run)"))
	}
	return errs
}

// checkAppKey parses the App's private key as the GitHub sink will (ghinstallation uses the same function):
// PEM, PKCS #1 or PKCS #8, RSA. The key's bytes never appear in the error.
func checkAppKey(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if _, err := jwt.ParseRSAPrivateKeyFromPEM(b); err != nil {
		return fmt.Errorf("%s is not a PEM-encoded RSA private key (the .pem file GitHub generates for the App): %w", path, err)
	}
	return nil
}

func hasSpace(s string) bool { return strings.IndexFunc(s, unicode.IsSpace) >= 0 }

// OSEnv is the process environment.
func OSEnv(key string) (string, bool) { return os.LookupEnv(key) }

// EnvVar is an environment variable Parse reads, as -h lists it.
type EnvVar struct {
	Name    string
	Default string
	Usage   string
}

// EnvVars are the environment variables Parse reads, in the order -h lists them.
var EnvVars = []EnvVar{
	{"ORG", "", "GitHub organization the records are posted to; required unless -dry-run (letters, digits and single hyphens, at most 39 characters)"},
	{"BASE_URL", "https://api.github.com", "GitHub API URL; GitHub Enterprise Server: https://HOST/api/v3 (http or https, no query nor fragment)"},
	{"DN_TEMPLATE", record.DefaultTemplate, "deployment name of the records; placeholders {{namespace}}, {{deploymentName}}, {{containerName}} and {{kind}}; " +
		"{{deploymentName}} and {{containerName}} are required, and {{namespace}} unless -namespace is set"},
	{"LOGICAL_ENVIRONMENT", "", fmt.Sprintf("logical environment of the records, for example production; required (at most %d characters)", record.MaxEnvironmentLength)},
	{"PHYSICAL_ENVIRONMENT", "", fmt.Sprintf("physical environment of the records, for example a region (at most %d characters)", record.MaxEnvironmentLength)},
	{"CLUSTER", "", fmt.Sprintf("name of this cluster; required (at most %d characters)", record.MaxEnvironmentLength)},
	{"API_TOKEN", "", "GitHub token with artifact metadata write access; or API_TOKEN_FILE, or a GitHub App (GH_APP_ID, GH_INSTALL_ID, GH_APP_PRIV_KEY)"},
	{"API_TOKEN_FILE", "", "path of a file holding the token (a trailing newline is removed; other whitespace is refused)"},
	{"GH_APP_ID", "", "GitHub App ID (a positive integer)"},
	{"GH_INSTALL_ID", "", "installation ID of the GitHub App in ORG (a positive integer)"},
	{"GH_APP_PRIV_KEY", "", "path of the GitHub App's PEM private key (RSA, PKCS #1 or PKCS #8)"},
	{"POD_NAMESPACE", "", "the tracker's own namespace (from the downward API): default of -leader-election-namespace and -ledger-namespace"},
	{"SLACK_TOKEN_FILE", "", "path of a file holding the Slack bot token (scope chat:write); enables the Slack rollout sink"},
	{"SLACK_TOKEN", "", "the Slack bot token itself (or SLACK_TOKEN_FILE)"},
	{"SLACK_CHANNEL", "", "default Slack channel of rollout messages (name or ID); required with a Slack token"},
	{"SLACK_API_URL", "https://slack.com/api/", "Slack Web API URL (tests point it at a fake)"},
	{"SLACK_TEAM_LABEL", "", "label key (for example example.com/team) whose value, on the workload or else its namespace, Slack messages show as the team; empty: none"},
	{"OTEL_EXPORTER_OTLP_ENDPOINT", "", "OTLP collector URL of metrics and traces (for OTLP/HTTP the base of /v1/metrics and /v1/traces); turns the OpenTelemetry export on; -telemetry-endpoint wins"},
	{"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "", "OTLP collector URL of the metrics alone (for OTLP/HTTP used as is); turns the metrics export on"},
	{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "", "OTLP collector URL of the traces alone (for OTLP/HTTP used as is); turns the traces export on"},
	{"OTEL_EXPORTER_OTLP_PROTOCOL", "grpc", "OTLP protocol: grpc or http/protobuf. The exporters read the other OTEL_EXPORTER_OTLP_* variables (HEADERS, CERTIFICATE, TIMEOUT, COMPRESSION, ...) themselves"},
}

// Usage writes what -h prints: the flags registered on fs with their defaults, then the environment variables.
func Usage(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprintf(w, "Usage: %s [flags]\n\nRecords the container images running in a Kubernetes cluster as GitHub artifact deployment records.\n\nFlags:\n", fs.Name())
	out := fs.Output()
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(out)
	fmt.Fprintf(w, "\nEnvironment variables:\n")
	for _, v := range EnvVars {
		fmt.Fprintf(w, "  %s\n    \t%s", v.Name, v.Usage)
		if v.Default != "" {
			fmt.Fprintf(w, " (default %q)", v.Default)
		}
		fmt.Fprintln(w)
	}
}
