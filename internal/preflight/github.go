package preflight

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/deployment-tracker/deployment-tracker/internal/ghclient"
	"github.com/deployment-tracker/deployment-tracker/internal/sink"
	"github.com/deployment-tracker/deployment-tracker/internal/version"
)

// appVariables are the variables of GitHub App authentication.
const appVariables = "GH_APP_ID, GH_INSTALL_ID, GH_APP_PRIV_KEY"

// github makes one read-only call, GET /orgs/{org} (https://docs.github.com/rest/orgs/orgs#get-an-organization),
// through the sinks' client (internal/ghclient: a token, or a GitHub App installation token). It proves that the
// credentials are accepted and ORG exists at BASE_URL; it cannot prove the artifact metadata write permission
// without writing.
func (c *Checker) github(ctx context.Context) Result {
	const check = "github"
	t := c.cfg.Tracker
	if t.DryRun {
		return Result{Warn, check, "not checked: -dry-run prints the records instead of posting them"}
	}
	base := strings.TrimRight(t.BaseURL, "/")
	gc := ghclient.Config{BaseURL: base, HTTPClient: c.cfg.HTTPClient, UserAgent: version.UserAgent()}
	switch {
	case t.AppID != 0:
		gc.App = &ghclient.AppConfig{AppID: t.AppID, InstallationID: t.InstallationID, PrivateKeyPath: t.AppPrivateKey}
	case t.APIToken != "":
		gc.Token = t.APIToken
	default:
		return Result{Fail, check, "API_TOKEN: no GitHub credentials configured"}
	}
	gh, err := ghclient.New(gc)
	if err != nil {
		if t.AppID != 0 {
			return Result{Fail, check, fmt.Sprintf("GH_APP_PRIV_KEY: %s", oneLine(err.Error()))}
		}
		return Result{Fail, check, fmt.Sprintf("BASE_URL: %s", oneLine(err.Error()))}
	}
	endpoint := gh.BaseURL + "/orgs/" + url.PathEscape(t.Org)
	_, _, err = gh.GitHub.Organizations.Get(ctx, t.Org)
	err = gh.Classify(err)
	if errors.Is(err, ghclient.ErrInstallationToken) {
		return c.tokenRefused(err)
	}
	var ce *sink.CredentialsError
	var se *ghclient.StatusError
	var pe *sink.PermanentError
	var nf *sink.NotFoundError
	var ra *sink.RetryAfterError
	switch {
	case err == nil:
		return Result{Pass, check, fmt.Sprintf("organization %s found at %s, credentials (%s) accepted", t.Org, base, c.cfg.CredentialVariables)}
	case errors.As(err, &nf):
		return Result{Fail, check, fmt.Sprintf("ORG: organization %q not found (GET %s: 404 %s): check ORG, and BASE_URL (https://HOST/api/v3 for GitHub Enterprise Server)", t.Org, endpoint, nf.Message)}
	case errors.As(err, &ra):
		return Result{Warn, check, fmt.Sprintf("not checked: rate limited (GET %s: %d %s): try again later", endpoint, ra.StatusCode, ra.Message)}
	case errors.As(err, &ce) && ce.StatusCode == http.StatusUnauthorized:
		return Result{Fail, check, fmt.Sprintf("%s: GitHub refused the credentials (GET %s: 401 %s): %s", c.cfg.CredentialVariables, endpoint, ce.Message, c.credentialHint())}
	case errors.As(err, &ce):
		return Result{Fail, check, fmt.Sprintf("%s: GitHub forbids this organization to the credentials (GET %s: %d %s): grant them access to %s (for a token of an organization with SAML SSO, authorize it for SSO)",
			c.cfg.CredentialVariables, endpoint, ce.StatusCode, ce.Message, t.Org)}
	case errors.As(err, &se) && se.StatusCode >= 500:
		return Result{Warn, check, fmt.Sprintf("not checked: GitHub failed (GET %s: %d %s): try again later", endpoint, se.StatusCode, se.Message)}
	case errors.As(err, &pe):
		return Result{Fail, check, fmt.Sprintf("unexpected answer (GET %s: %d %s): check BASE_URL", endpoint, pe.StatusCode, pe.Message)}
	case errors.As(err, &se):
		return Result{Fail, check, fmt.Sprintf("unexpected answer (GET %s: %d %s): check BASE_URL", endpoint, se.StatusCode, se.Message)}
	default:
		return Result{Fail, check, fmt.Sprintf("GET %s: %s: check BASE_URL and the network path to it", endpoint, c.redact(oneLine(unwrapURL(err).Error())))}
	}
}

// tokenRefused explains a failed installation token request of GitHub App authentication.
func (c *Checker) tokenRefused(err error) Result {
	const check = "github"
	t := c.cfg.Tracker
	var ce *sink.CredentialsError
	what := fmt.Sprintf("installation token for App %d, installation %d: %s", t.AppID, t.InstallationID, oneLine(ghclient.Message(err)))
	if errors.As(err, &ce) {
		what = fmt.Sprintf("installation token for App %d, installation %d: %d %s", t.AppID, t.InstallationID, ce.StatusCode,
			strings.TrimPrefix(oneLine(ce.Message), "installation not found: "))
	}
	switch {
	case errors.As(err, &ce) && ce.StatusCode == http.StatusNotFound:
		return Result{Fail, check, fmt.Sprintf("GH_INSTALL_ID: no such installation of the App (%s): use the ID of the App's installation in %s", what, t.Org)}
	case errors.As(err, &ce) && ce.StatusCode == http.StatusUnauthorized:
		return Result{Fail, check, fmt.Sprintf("GH_APP_ID, GH_APP_PRIV_KEY: GitHub refused the App's JWT (%s): check the App ID and that the key is one of this App's", what)}
	default:
		return Result{Fail, check, fmt.Sprintf("%s: %s", appVariables, what)}
	}
}

func (c *Checker) credentialHint() string {
	if c.cfg.Tracker.AppID != 0 {
		return "the App's installation token was refused; check that the App is installed in " + c.cfg.Tracker.Org
	}
	return "the token is wrong, expired or revoked; create a new one with Artifact metadata: write on " + c.cfg.Tracker.Org
}

// redact removes the token from text a server or transport produced.
func (c *Checker) redact(s string) string {
	if tok := c.cfg.Tracker.APIToken; tok != "" {
		s = strings.ReplaceAll(s, tok, "[REDACTED]")
	}
	return s
}
