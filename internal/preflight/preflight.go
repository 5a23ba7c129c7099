// Package preflight is `deployment-tracker check`: before (and after) kubectl apply -k deploy/, it checks
// what the tracker depends on and prints one line per check, PASS, FAIL or WARN, with the reason and what to
// do:
//
//   - cert-manager's CRDs are served (certs/ creates an Issuer and Certificates; without them the install
//     stops half-way at the first Certificate);
//   - the ledger's CRDs are served (deploy/05-crd.yaml);
//   - the ValidatingWebhookConfiguration exists, cert-manager's cainjector has filled its caBundle, and the
//     Service it calls exists;
//   - the tracker's ServiceAccount (or the identity in use) has the RBAC of deploy/10-rbac.yaml, asked of the
//     API server with SubjectAccessReview (SelfSubjectAccessReview);
//   - the GitHub credentials and ORG, with one read-only call: GET /orgs/{org}.
//
// The checks only read: discovery, two GETs, access reviews (which the API server evaluates without storing
// anything) and one GitHub GET. A FAIL makes the exit status 1.
package preflight

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/deployment-tracker/deployment-tracker/internal/config"
)

// Status is the outcome of one check.
type Status string

// The outcomes. WARN is for what could not be checked or is degraded but not broken; it does not change the
// exit status.
const (
	Pass Status = "PASS"
	Warn Status = "WARN"
	Fail Status = "FAIL"
)

// Result is the outcome of one check: Check names it, Message says why and, unless it passed, what to do.
type Result struct {
	Status  Status
	Check   string
	Message string
}

// String is the result's line as printed: "PASS  webhook         caBundle injected ...".
func (r Result) String() string { return fmt.Sprintf("%-4s  %-13s %s", r.Status, r.Check, r.Message) }

// The names the shipped manifests (deploy/) give the tracker's objects.
const (
	DefaultNamespace            = "deployment-tracker"
	DefaultServiceAccount       = "deployment-tracker"
	DefaultWebhookConfiguration = "deployment-tracker" // deploy.WebhookConfigurationName
	// DefaultTimeout bounds each check.
	DefaultTimeout = 15 * time.Second
)

// Config configures a Checker.
type Config struct {
	// Tracker is the tracker's configuration, parsed from the same flags and variables as the tracker's
	// (config.Parse). Required.
	Tracker *config.Config
	// Kube is the API server the checks ask. Required.
	Kube kubernetes.Interface
	// Namespace is the tracker's namespace: its ServiceAccount, Lease and (by default) ledger. Default
	// DefaultNamespace.
	Namespace string
	// LedgerNamespace is where the ledger is kept; "" when it is off (-ledger-namespace=-), which skips its
	// checks.
	LedgerNamespace string
	// ServiceAccount is the tracker's ServiceAccount in Namespace. Default DefaultServiceAccount.
	ServiceAccount string
	// AsServiceAccount checks the RBAC of ServiceAccount with SubjectAccessReview (which the identity in use
	// must be allowed to create); false checks the identity in use with SelfSubjectAccessReview.
	AsServiceAccount bool
	// WebhookConfiguration is the name of the ValidatingWebhookConfiguration. Default
	// DefaultWebhookConfiguration.
	WebhookConfiguration string
	// CredentialVariables names the variables holding the GitHub credentials in use, for the messages; default
	// derived from Tracker (API_TOKEN, or GH_APP_ID, GH_INSTALL_ID, GH_APP_PRIV_KEY).
	CredentialVariables string
	// HTTPClient is the client of the GitHub call (default a new client over http.DefaultTransport).
	HTTPClient *http.Client
	// Timeout bounds each check (default DefaultTimeout).
	Timeout time.Duration
}

// Checker runs the checks.
type Checker struct {
	cfg Config
}

// New validates cfg, fills its defaults and returns a Checker.
func New(cfg Config) (*Checker, error) {
	var errs []error
	if cfg.Tracker == nil {
		errs = append(errs, errors.New("preflight: Tracker is required"))
	}
	if cfg.Kube == nil {
		errs = append(errs, errors.New("preflight: Kube is required"))
	}
	if cfg.Timeout < 0 {
		errs = append(errs, errors.New("preflight: Timeout must not be negative"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if cfg.Namespace == "" {
		cfg.Namespace = DefaultNamespace
	}
	if cfg.ServiceAccount == "" {
		cfg.ServiceAccount = DefaultServiceAccount
	}
	if cfg.WebhookConfiguration == "" {
		cfg.WebhookConfiguration = DefaultWebhookConfiguration
	}
	if cfg.CredentialVariables == "" {
		cfg.CredentialVariables = "API_TOKEN"
		if cfg.Tracker.AppID != 0 {
			cfg.CredentialVariables = appVariables
		}
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{}
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	return &Checker{cfg: cfg}, nil
}

// Run runs every check, in the order of the install, and returns their results.
func (c *Checker) Run(ctx context.Context) []Result {
	checks := []func(context.Context) Result{
		c.certManager,
		c.ledgerCRDs,
		c.webhook,
		c.rbac,
		c.github,
	}
	out := make([]Result, 0, len(checks))
	for _, check := range checks {
		cctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
		out = append(out, check(cctx))
		cancel()
	}
	return out
}

// Print writes one line per result and a summary, and returns the exit status: 1 if any check failed, else 0.
func Print(w io.Writer, results []Result) int {
	count := map[Status]int{}
	for _, r := range results {
		fmt.Fprintln(w, r)
		count[r.Status]++
	}
	fmt.Fprintf(w, "%d passed, %d warnings, %d failed\n", count[Pass], count[Warn], count[Fail])
	if count[Fail] > 0 {
		return 1
	}
	return 0
}

// unwrapURL drops the "Get URL:" of a transport error whose message names the URL again.
func unwrapURL(err error) error {
	var u *url.Error
	if errors.As(err, &u) {
		return u.Err
	}
	return err
}

// oneLine keeps a message on its line: an API error can carry newlines.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
