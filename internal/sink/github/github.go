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
// limits; *sink.CredentialsError for 401 and permission 403; *sink.NotFoundError for 404; *sink.PermanentError
// for other 4xx; a plain error (retryable) for 408, 5xx, network errors and timeouts.
func (s *Sink) Post(ctx context.Context, r record.Record) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	_, _, err := s.gh.GitHub.Organizations.CreateArtifactDeploymentRecord(ctx, s.org, request(r))
	if err = s.gh.Classify(err); err != nil {
		return fmt.Errorf("post deployment record %s@%s to org %s: %w", r.Name, r.Digest, s.org, err)
	}
	return nil
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
