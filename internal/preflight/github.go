package preflight

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"

	"github.com/bradleyfalzon/ghinstallation/v2"

	"github.com/deployment-tracker/deployment-tracker/internal/version"
)

// appVariables are the variables of GitHub App authentication.
const appVariables = "GH_APP_ID, GH_INSTALL_ID, GH_APP_PRIV_KEY"

// The headers of a GitHub REST call (https://docs.github.com/rest/about-the-rest-api/api-versions), as the
// github sink sends them.
const (
	apiVersion = "2022-11-28"
	mediaType  = "application/vnd.github+json"
	// maxBody bounds how much of GitHub's answer is read.
	maxBody = 64 << 10
)

// github makes one read-only call, GET /orgs/{org} (https://docs.github.com/rest/orgs/orgs#get-an-organization),
// authenticated as the sink authenticates (a token, or a GitHub App installation token from ghinstallation).
// It proves that the credentials are accepted and ORG exists at BASE_URL; it cannot prove the artifact
// metadata write permission without writing.
func (c *Checker) github(ctx context.Context) Result {
	const check = "github"
	t := c.cfg.Tracker
	if t.DryRun {
		return Result{Warn, check, "not checked: -dry-run prints the records instead of posting them"}
	}
	base := strings.TrimRight(t.BaseURL, "/")
	endpoint := base + "/orgs/" + url.PathEscape(t.Org)
	client := c.cfg.HTTPClient
	auth := ""
	switch {
	case t.APIToken != "":
		auth = "Bearer " + t.APIToken
	case t.AppID != 0:
		key, err := os.ReadFile(t.AppPrivateKey)
		if err != nil {
			return Result{Fail, check, fmt.Sprintf("GH_APP_PRIV_KEY: %s", oneLine(err.Error()))}
		}
		tr := client.Transport
		if tr == nil {
			tr = http.DefaultTransport
		}
		itr, err := ghinstallation.New(tr, t.AppID, t.InstallationID, key)
		if err != nil {
			return Result{Fail, check, fmt.Sprintf("GH_APP_PRIV_KEY: %s", oneLine(err.Error()))}
		}
		// The installation token comes from BASE_URL too, as in the sink: GitHub Enterprise Server works.
		itr.BaseURL = base
		client = &http.Client{Transport: itr, CheckRedirect: client.CheckRedirect, Timeout: client.Timeout}
	default:
		return Result{Fail, check, "API_TOKEN: no GitHub credentials configured"}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, endpoint, nil)
	if err != nil {
		return Result{Fail, check, fmt.Sprintf("BASE_URL: %s", oneLine(err.Error()))}
	}
	req.Header.Set("Accept", mediaType)
	req.Header.Set("X-GitHub-Api-Version", apiVersion)
	req.Header.Set("User-Agent", version.UserAgent())
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := client.Do(req)
	if err != nil {
		var tokenErr *ghinstallation.HTTPError
		if errors.As(err, &tokenErr) && tokenErr.Response != nil {
			return c.tokenRefused(tokenErr.Response)
		}
		return Result{Fail, check, fmt.Sprintf("GET %s: %s: check BASE_URL and the network path to it", endpoint, c.redact(oneLine(unwrapURL(err).Error())))}
	}
	msg := c.message(resp)
	code := resp.StatusCode
	what := fmt.Sprintf("GET %s: %d %s", endpoint, code, msg)
	switch {
	case code == http.StatusOK:
		return Result{Pass, check, fmt.Sprintf("organization %s found at %s, credentials (%s) accepted", t.Org, base, c.cfg.CredentialVariables)}
	case code == http.StatusNotFound:
		return Result{Fail, check, fmt.Sprintf("ORG: organization %q not found (%s): check ORG, and BASE_URL (https://HOST/api/v3 for GitHub Enterprise Server)", t.Org, what)}
	case code == http.StatusTooManyRequests, code == http.StatusForbidden && rateLimited(resp.Header, msg):
		return Result{Warn, check, fmt.Sprintf("not checked: rate limited (%s): try again later", what)}
	case code == http.StatusUnauthorized:
		return Result{Fail, check, fmt.Sprintf("%s: GitHub refused the credentials (%s): %s", c.cfg.CredentialVariables, what, c.credentialHint())}
	case code == http.StatusForbidden:
		return Result{Fail, check, fmt.Sprintf("%s: GitHub forbids this organization to the credentials (%s): grant them access to %s (for a token of an organization with SAML SSO, authorize it for SSO)",
			c.cfg.CredentialVariables, what, t.Org)}
	case code >= 500:
		return Result{Warn, check, fmt.Sprintf("not checked: GitHub failed (%s): try again later", what)}
	default:
		return Result{Fail, check, fmt.Sprintf("unexpected answer (%s): check BASE_URL", what)}
	}
}

// tokenRefused classifies a failed installation token request of GitHub App authentication.
func (c *Checker) tokenRefused(resp *http.Response) Result {
	const check = "github"
	t := c.cfg.Tracker
	msg := c.message(resp)
	what := fmt.Sprintf("installation token for App %d, installation %d: %d %s", t.AppID, t.InstallationID, resp.StatusCode, msg)
	switch resp.StatusCode {
	case http.StatusNotFound:
		return Result{Fail, check, fmt.Sprintf("GH_INSTALL_ID: no such installation of the App (%s): use the ID of the App's installation in %s", what, t.Org)}
	case http.StatusUnauthorized:
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

// message reads GitHub's error message from a bounded part of resp's body, drains and closes it.
func (c *Checker) message(resp *http.Response) string {
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	_, _ = io.CopyN(io.Discard, resp.Body, maxBody)
	if resp.StatusCode == http.StatusOK {
		return ""
	}
	var body struct {
		Message string `json:"message"`
	}
	msg := strings.TrimSpace(string(data))
	if json.Unmarshal(data, &body) == nil && body.Message != "" {
		msg = body.Message
	}
	if msg == "" {
		msg = http.StatusText(resp.StatusCode)
	}
	if len(msg) > 200 {
		msg = strings.ToValidUTF8(msg[:200], "") + "…"
	}
	return c.redact(oneLine(msg))
}

// redact removes the token from text a server or transport produced.
func (c *Checker) redact(s string) string {
	if tok := c.cfg.Tracker.APIToken; tok != "" {
		s = strings.ReplaceAll(s, tok, "[REDACTED]")
	}
	return s
}

// rateLimited tells a rate limited 403 from a permission 403, as the github sink does.
func rateLimited(h http.Header, msg string) bool {
	return h.Get("X-Ratelimit-Remaining") == "0" || h.Get("Retry-After") != "" ||
		strings.Contains(strings.ToLower(msg), "rate limit")
}
