// Package config turns flags and environment variables into one validated Config. It is the only place that
// reads them.
package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/deployment-tracker/deployment-tracker/internal/record"
)

// Config is the whole configuration of the tracker.
type Config struct {
	// Kubernetes and scoping.
	Kubeconfig        string
	Namespace         string
	ExcludeNamespaces []string

	// Servers.
	MetricsPort     int
	WebhookPort     int
	WebhookHost     string
	CertDir         string
	HealthProbeAddr string

	// High availability.
	LeaderElect             bool
	LeaderElectionNamespace string

	// Durable ledger: the namespace of the DeploymentRecord objects; empty keeps records in memory only.
	LedgerNamespace  string
	LeaderElectionID string

	// Delivery.
	Workers            int
	DryRun             bool
	RequestsPerMinute  int
	RequestsPerHour    int
	UnknownArtifactTTL time.Duration
	ShutdownTimeout    time.Duration

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
	APIToken       string
	AppID          int64
	InstallationID int64
	AppPrivateKey  string // path to the PEM file

	// Slack rollout sink (environment variables): enabled when a token is set.
	Slack SlackConfig
}

// SlackConfig configures the Slack rollout sink. Token never leaves this struct in logs.
type SlackConfig struct {
	Token   string // from SLACK_TOKEN_FILE (preferred) or SLACK_TOKEN
	Channel string // SLACK_CHANNEL: the default channel, an ID or #name
	APIURL  string // SLACK_API_URL: the Web API root; empty: the sink's default, https://slack.com/api/
}

// Enabled reports whether the Slack sink is configured.
func (s SlackConfig) Enabled() bool { return s.Token != "" }

// Env looks up an environment variable; os.LookupEnv in production, a map in tests.
type Env func(key string) (string, bool)

// Parse reads args (without the program name) and the environment into a validated Config. Every problem is
// reported at once, each naming the flag or variable. Flags registered on fs by other packages (for example
// the logger's) are parsed too; pass flag.NewFlagSet(name, flag.ContinueOnError) in tests.
func Parse(fs *flag.FlagSet, args []string, env Env) (*Config, error) {
	c := &Config{}
	var exclude, tmpl string
	fs.StringVar(&c.Kubeconfig, "kubeconfig", "", "path to a kubeconfig; empty: in-cluster config or $KUBECONFIG")
	fs.StringVar(&c.Namespace, "namespace", "", "only track pods in this namespace (default: all namespaces)")
	fs.StringVar(&exclude, "exclude-namespaces", "", "comma-separated namespaces whose pods are not tracked (not with -namespace)")
	fs.IntVar(&c.Workers, "workers", 2, "number of workers posting records")
	fs.IntVar(&c.MetricsPort, "metrics-port", 9090, "port of the Prometheus /metrics endpoint (0 disables it)")
	fs.IntVar(&c.WebhookPort, "webhook-port", 9443, "port of the admission webhook server (HTTPS)")
	fs.StringVar(&c.WebhookHost, "webhook-host", "", "address the webhook server binds to (default: all)")
	fs.StringVar(&c.CertDir, "cert-dir", "/tmp/k8s-webhook-server/serving-certs", "directory holding the webhook's tls.crt and tls.key (reloaded when they change)")
	fs.StringVar(&c.HealthProbeAddr, "health-probe-bind-address", ":8081", "address of the /healthz and /readyz endpoints")
	fs.BoolVar(&c.LeaderElect, "leader-elect", false, "elect a leader among replicas; only the leader posts records")
	fs.StringVar(&c.LeaderElectionNamespace, "leader-election-namespace", "", "namespace of the leader election Lease (default: $POD_NAMESPACE)")
	fs.StringVar(&c.LedgerNamespace, "ledger-namespace", "", "namespace of the durable ledger (DeploymentRecord objects; default: $POD_NAMESPACE; \"-\": no ledger, records in memory only)")
	fs.StringVar(&c.LeaderElectionID, "leader-election-id", "deployment-tracker", "name of the leader election Lease")
	fs.BoolVar(&c.DryRun, "dry-run", false, "print records as JSON lines on stdout instead of posting them to GitHub")
	fs.IntVar(&c.RequestsPerMinute, "github-requests-per-minute", 80, "client-side pace of record posts per minute, below GitHub's secondary rate limit (0: unlimited)")
	fs.IntVar(&c.RequestsPerHour, "github-requests-per-hour", 500, "client-side pace of record posts per hour (0: unlimited)")
	fs.DurationVar(&c.UnknownArtifactTTL, "unknown-artifact-ttl", time.Hour, "how long a 404 for an unknown artifact digest is remembered before it is tried again")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", 20*time.Second, "on SIGTERM, how long queued records may still be posted before exiting")
	fs.IntVar(&c.RolloutHistory, "rollout-history", 10, "rollouts kept per workload in the ledger (RolloutRecord objects)")
	fs.DurationVar(&c.RolloutMaxAge, "rollout-max-age", 30*24*time.Hour, "how long a finished rollout is kept in the ledger at most (the latest of a workload stays while it exists)")
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		return nil, fmt.Errorf("flags: %w", err)
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("flags: unexpected argument %q", fs.Arg(0))
	}

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
	if c.Workers < 1 || c.Workers > 64 {
		bad("-workers", "must be between 1 and 64, got %d", c.Workers)
	}
	// A slice, not a map: the errors come in the same order every time.
	for _, p := range []struct {
		flag      string
		port      int
		zeroAllow bool
	}{{"-metrics-port", c.MetricsPort, true}, {"-webhook-port", c.WebhookPort, false}} {
		if p.port < 0 || p.port > 65535 || (p.port == 0 && !p.zeroAllow) {
			bad(p.flag, "invalid port %d", p.port)
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
	if c.ShutdownTimeout <= 0 {
		bad("-shutdown-timeout", "must be positive")
	}
	if c.RolloutHistory < 1 || c.RolloutHistory > 1000 {
		bad("-rollout-history", "must be between 1 and 1000, got %d", c.RolloutHistory)
	}
	if c.RolloutMaxAge < time.Hour {
		bad("-rollout-max-age", "must be at least 1h, got %s", c.RolloutMaxAge)
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
	if !c.DryRun {
		if c.Org == "" {
			bad("ORG", "is required (the GitHub organization records are posted to), or use -dry-run")
		}
		if u, err := url.Parse(c.BaseURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			bad("BASE_URL", "must be an http(s) URL such as https://api.github.com or https://ghes.example.com/api/v3")
		}
		errs = append(errs, c.parseAuth(get)...)
	}
	errs = append(errs, c.parseSlack(get)...)
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return c, nil
}

// parseSlack reads the Slack sink's variables: a token from SLACK_TOKEN_FILE or SLACK_TOKEN (not both) enables
// it and requires SLACK_CHANNEL.
func (c *Config) parseSlack(get func(string) string) []error {
	token, tokenFile := get("SLACK_TOKEN"), get("SLACK_TOKEN_FILE")
	c.Slack.Channel, c.Slack.APIURL = get("SLACK_CHANNEL"), get("SLACK_API_URL")
	var errs []error
	switch {
	case token != "" && tokenFile != "":
		errs = append(errs, errors.New("SLACK_TOKEN, SLACK_TOKEN_FILE: set only one"))
	case tokenFile != "":
		b, err := os.ReadFile(tokenFile)
		if err != nil {
			errs = append(errs, fmt.Errorf("SLACK_TOKEN_FILE: %w", err))
		} else if c.Slack.Token = strings.TrimSpace(string(b)); c.Slack.Token == "" {
			errs = append(errs, fmt.Errorf("SLACK_TOKEN_FILE: %s is empty", tokenFile))
		}
	default:
		c.Slack.Token = token
	}
	enabled := token != "" || tokenFile != ""
	if enabled && c.Slack.Channel == "" {
		errs = append(errs, errors.New("SLACK_CHANNEL: required with a Slack token (the default channel, an ID such as C0123456789 or #name)"))
	}
	if !enabled && (c.Slack.Channel != "" || c.Slack.APIURL != "") {
		errs = append(errs, errors.New("SLACK_TOKEN_FILE: a Slack token is required with SLACK_CHANNEL or SLACK_API_URL (or SLACK_TOKEN)"))
	}
	if c.Slack.APIURL == "" {
		return errs // the sink's default
	}
	if u, err := url.Parse(c.Slack.APIURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		errs = append(errs, errors.New("SLACK_API_URL: must be an http(s) URL such as https://slack.com/api/"))
	}
	return errs
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
		c.APIToken = token
	case tokenFile != "":
		b, err := os.ReadFile(tokenFile)
		if err != nil {
			return []error{fmt.Errorf("API_TOKEN_FILE: %w", err)}
		}
		if c.APIToken = strings.TrimSpace(string(b)); c.APIToken == "" {
			errs = append(errs, fmt.Errorf("API_TOKEN_FILE: %s is empty", tokenFile))
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
		} else if _, err := os.Stat(c.AppPrivateKey); err != nil {
			errs = append(errs, fmt.Errorf("GH_APP_PRIV_KEY: %w", err))
		}
	default:
		errs = append(errs, errors.New("API_TOKEN: GitHub credentials are required: API_TOKEN, API_TOKEN_FILE, or GH_APP_ID + GH_INSTALL_ID + GH_APP_PRIV_KEY (or use -dry-run)"))
	}
	return errs
}

// OSEnv is the process environment.
func OSEnv(key string) (string, bool) { return os.LookupEnv(key) }
