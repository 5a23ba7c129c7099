// Package github is the sink that posts deployment records to GitHub's artifact metadata API:
// POST {BaseURL}/orgs/{org}/artifacts/metadata/deployment-record
// (https://docs.github.com/rest/orgs/artifact-metadata#create-an-artifact-deployment-record), through go-github
// (internal/ghclient: a token or a GitHub App installation, on github.com or GitHub Enterprise Server at
// https://HOST/api/v3).
//
// Post makes exactly one attempt and classifies its outcome with the sink error classes; the dispatcher's
// workqueue is the only retry layer.
package github

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode"

	"github.com/google/go-github/v88/github"

	"github.com/deployment-tracker/deployment-tracker/internal/ghclient"
	"github.com/deployment-tracker/deployment-tracker/internal/record"
	"github.com/deployment-tracker/deployment-tracker/internal/sink"
)

// Defaults and bounds.
const (
	// DefaultBaseURL is the API of github.com.
	DefaultBaseURL = ghclient.DefaultBaseURL
	// DefaultTimeout bounds one Post, installation token refresh included.
	DefaultTimeout = 10 * time.Second
	// MaxResponseBytes is how much of an error answer is read.
	MaxResponseBytes = 64 << 10
)

// Config configures a Sink: Client, or exactly one of Token, TokenFile and App.
type Config struct {
	// Client is a GitHub client to share with other sinks (so that they share what go-github knows of the rate
	// limits); when set, BaseURL, the credentials, UserAgent, HTTPClient and Now are not used.
	Client *ghclient.Client
	// BaseURL is the REST API root: https://api.github.com (default) or https://HOST/api/v3 for GitHub
	// Enterprise Server. Installation tokens are requested from the same API.
	BaseURL string
	// Org is the organization the records belong to.
	Org string
	// Token is a personal access token (fine-grained: "Artifact metadata" write), sent as a Bearer token.
	Token string
	// TokenFile holds the token; it is read again when it changes (a mounted Secret updated in place).
	TokenFile string
	// App authenticates as a GitHub App installation instead of a token.
	App *AppConfig
	// UserAgent is sent with every request (default version.UserAgent()); GitHub rejects requests without one.
	UserAgent string
	// HTTPClient is the client to use; its Transport is wrapped for authentication (default: a new client
	// over http.DefaultTransport).
	HTTPClient *http.Client
	// Timeout bounds each Post (default DefaultTimeout).
	Timeout time.Duration
	// Now is the clock Retry-After is computed with (default time.Now).
	Now func() time.Time
}

// AppConfig identifies a GitHub App installation and its private key: exactly one of PrivateKeyPath (read again
// when it changes) and PrivateKey.
type AppConfig = ghclient.AppConfig

// Sink posts records to GitHub. It is safe for concurrent use.
type Sink struct {
	gh       *ghclient.Client
	org      string
	endpoint string // of the hand-written cluster calls
	timeout  time.Duration
}

var _ sink.Sink = (*Sink)(nil)

// New validates cfg, fills its defaults and returns a Sink. Errors name the Config field and never contain a
// secret.
func New(cfg Config) (*Sink, error) {
	var errs []error
	if cfg.Org == "" {
		errs = append(errs, errors.New("github sink: Org is required"))
	} else if strings.ContainsAny(cfg.Org, "/?#%") || strings.IndexFunc(cfg.Org, unicode.IsSpace) >= 0 {
		errs = append(errs, fmt.Errorf("github sink: Org %q is not an organization name", cfg.Org))
	}
	if cfg.Timeout < 0 {
		errs = append(errs, errors.New("github sink: Timeout must not be negative"))
	}
	gh := cfg.Client
	if gh == nil {
		var err error
		gh, err = ghclient.New(ghclient.Config{
			BaseURL: cfg.BaseURL, Token: cfg.Token, TokenFile: cfg.TokenFile, App: cfg.App,
			UserAgent: cfg.UserAgent, HTTPClient: cfg.HTTPClient, Now: cfg.Now,
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("github sink: %w", err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	return &Sink{
		gh:       gh,
		org:      cfg.Org,
		endpoint: gh.BaseURL + "/orgs/" + url.PathEscape(cfg.Org) + "/artifacts/metadata/deployment-record",
		timeout:  cfg.Timeout,
	}, nil
}

// Post sends r once and classifies the outcome (ghclient.Classify): nil on 2xx; *sink.RetryAfterError for rate
// limits; *sink.CredentialsError for 401 and permission 403; *sink.NotFoundError for a 404 about the artifact;
// *sink.PermanentError for other 4xx; a plain error (retryable) for 408, 5xx, network errors and timeouts.
//
// A 404 whose message is not GitHub's answer for an artifact without attestation (UnknownArtifactMessage) may
// come from the organization or the endpoint instead: a wrong ORG, or a GitHub Enterprise Server BASE_URL
// without /api/v3, answers every record so. Post then checks the organization once (CheckTarget): when it does
// not exist, the error is an *OrganizationError (a configuration error: the dispatcher pauses the sink, the
// record is kept); when it does, the 404 stays a *sink.NotFoundError (not attested, tried again later); when it
// cannot tell, the error is the check's (retried, or a pause for refused credentials or a rate limit).
func (s *Sink) Post(ctx context.Context, r record.Record) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	_, _, err := s.gh.GitHub.Organizations.CreateArtifactDeploymentRecord(ctx, s.org, request(r))
	err = s.gh.Classify(err)
	var nf *sink.NotFoundError
	if errors.As(err, &nf) && !UnknownArtifact(nf.Message) {
		var oe *OrganizationError
		switch cerr := s.CheckTarget(ctx); {
		case cerr == nil: // the organization exists: the 404 is the record's, worded otherwise
		case errors.As(cerr, &oe):
			err = cerr
		default:
			err = fmt.Errorf("404 %s, and the organization could not be checked: %w", nf.Message, cerr)
		}
	}
	if err != nil {
		return fmt.Errorf("post deployment record %s@%s to org %s: %w", r.Name, r.Digest, s.org, err)
	}
	return nil
}

// UnknownArtifactMessage is GitHub's message in the 404 for an artifact it has no attestation for, as the
// reference deployment tracker (github/deployment-tracker) matches it.
const UnknownArtifactMessage = "no artifacts found"

// UnknownArtifact reports whether msg, the message of a 404 of the record endpoints, is GitHub's answer for an
// artifact it has no attestation for, rather than a 404 of the organization or of the endpoint itself.
func UnknownArtifact(msg string) bool {
	return strings.Contains(strings.ToLower(msg), UnknownArtifactMessage)
}

// OrganizationError is the answer of the organization check when ORG does not exist at BASE_URL, or BASE_URL
// is not a GitHub REST API (GitHub Enterprise Server's web address without /api/v3 answers 404, a redirect to a
// login page, or HTML): a configuration error, not a fact about any record.
type OrganizationError struct {
	// Org and BaseURL are what the tracker was configured with (ORG, BASE_URL).
	Org, BaseURL string
	// StatusCode and Message are GitHub's answer to GET {BaseURL}/orgs/{Org}; StatusCode is 200 when the answer
	// was not an organization.
	StatusCode int
	Message    string
}

func (e *OrganizationError) Error() string {
	return fmt.Sprintf("organization %q not found at %s (GET /orgs/%s: %d %s): check ORG, and BASE_URL (https://HOST/api/v3 for GitHub Enterprise Server)",
		e.Org, e.BaseURL, e.Org, e.StatusCode, e.Message)
}

// Misconfigured reports that the configuration, not the record, is wrong: the dispatcher pauses the sink and
// keeps every record pending (internal/dispatch), and the ledger shows the reason Misconfigured.
func (e *OrganizationError) Misconfigured() bool { return true }

// CheckTarget checks, with one read-only request (GET /orgs/{org},
// https://docs.github.com/rest/orgs/orgs#get-an-organization), that the organization the records are posted to
// exists at BaseURL. It returns nil when it does; an *OrganizationError when it does not, or when BaseURL
// answers something that is not GitHub's API; another classified error (network, 5xx, rate limit, refused
// credentials) when it cannot tell. The dispatcher calls it before posting anything and, while it fails, with
// a growing backoff until it answers.
func (s *Sink) CheckTarget(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	org, _, err := s.gh.GitHub.Organizations.Get(ctx, s.org)
	if err == nil {
		if org.GetLogin() == "" {
			return s.orgError(http.StatusOK, "the answer is not an organization")
		}
		return nil
	}
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	if errors.As(err, &syntax) || errors.As(err, &typ) {
		return s.orgError(http.StatusOK, "the answer is not GitHub's JSON")
	}
	cerr := s.gh.Classify(err)
	var nf *sink.NotFoundError
	var pe *sink.PermanentError
	switch {
	case errors.As(cerr, &nf):
		return s.orgError(http.StatusNotFound, nf.Message)
	case errors.As(cerr, &pe):
		// A redirect (to a login page) or another client error: GitHub's API answers GET /orgs/{org} with 200,
		// 404 or a refusal of the credentials.
		return s.orgError(pe.StatusCode, pe.Message)
	}
	return fmt.Errorf("check organization %s at %s: %w", s.org, s.gh.BaseURL, cerr)
}

func (s *Sink) orgError(code int, msg string) *OrganizationError {
	return &OrganizationError{Org: s.org, BaseURL: s.gh.BaseURL, StatusCode: code, Message: msg}
}

// request is the body of r, as
// https://docs.github.com/rest/orgs/artifact-metadata#create-an-artifact-deployment-record documents it.
func request(r record.Record) github.CreateArtifactDeploymentRequest {
	req := github.CreateArtifactDeploymentRequest{
		Name:                r.Name,
		Digest:              r.Digest,
		Version:             optional(r.Version),
		Status:              string(r.Status),
		LogicalEnvironment:  r.LogicalEnvironment,
		PhysicalEnvironment: optional(r.PhysicalEnvironment),
		Cluster:             optional(r.Cluster),
		DeploymentName:      r.DeploymentName,
		Tags:                r.Tags,
		GithubRepository:    optional(r.GitHubRepository),
	}
	for _, risk := range r.RuntimeRisks {
		req.RuntimeRisks = append(req.RuntimeRisks, github.DeploymentRuntimeRisk(risk))
	}
	return req
}

// optional is nil for "", so that an empty field is left out as the record's JSON leaves it out.
func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
