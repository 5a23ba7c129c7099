// Package github is the sink that posts deployment records to GitHub's artifact metadata API:
// POST {BaseURL}/orgs/{org}/artifacts/metadata/deployment-record
// (https://docs.github.com/rest/orgs/artifact-metadata#create-an-artifact-deployment-record), authenticated with
// a token or as a GitHub App installation, on github.com or GitHub Enterprise Server (BaseURL
// https://HOST/api/v3).
//
// Post makes exactly one attempt and classifies its outcome with the sink error classes; the dispatcher's
// workqueue is the only retry layer.
package github

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/bradleyfalzon/ghinstallation/v2"

	"github.com/deployment-tracker/deployment-tracker/internal/record"
	"github.com/deployment-tracker/deployment-tracker/internal/sink"
	"github.com/deployment-tracker/deployment-tracker/internal/version"
)

// Defaults and bounds.
const (
	// DefaultBaseURL is the API of github.com.
	DefaultBaseURL = "https://api.github.com"
	// DefaultTimeout bounds one Post, installation token refresh included.
	DefaultTimeout = 10 * time.Second
	// MaxResponseBytes is how much of a response body is read; the rest is drained up to the same amount and
	// dropped.
	MaxResponseBytes = 64 << 10
	// SecondaryRateLimitWait is how long to pause after a rate limit response that says nothing about when to
	// come back: "Otherwise, wait for at least one minute before retrying."
	// (https://docs.github.com/rest/using-the-rest-api/rate-limits-for-the-rest-api#exceeding-the-rate-limit)
	SecondaryRateLimitWait = time.Minute
	// maxRetryAfter caps a Retry-After or reset that is absurdly far away.
	maxRetryAfter = 24 * time.Hour
	// maxMessage bounds the server message carried by errors.
	maxMessage = 512
)

// The headers every request carries (https://docs.github.com/rest/about-the-rest-api/api-versions).
const (
	apiVersion = "2022-11-28"
	mediaType  = "application/vnd.github+json"
)

// Config configures a Sink. Exactly one of Token and App is required.
type Config struct {
	// BaseURL is the REST API root: https://api.github.com (default) or https://HOST/api/v3 for GitHub
	// Enterprise Server. Installation tokens are requested from the same API.
	BaseURL string
	// Org is the organization the records belong to.
	Org string
	// Token is a personal access token (fine-grained: "Artifact metadata" write), sent as a Bearer token.
	Token string
	// App authenticates as a GitHub App installation instead of Token.
	App *AppConfig
	// UserAgent is sent with every request (default version.UserAgent()); GitHub rejects requests without one.
	UserAgent string
	// HTTPClient is the client to use; its Transport is wrapped for App authentication (default: a new client
	// over http.DefaultTransport).
	HTTPClient *http.Client
	// Timeout bounds each Post (default DefaultTimeout).
	Timeout time.Duration
	// Now is the clock Retry-After is computed with (default time.Now).
	Now func() time.Time
}

// AppConfig identifies a GitHub App installation and its private key: exactly one of PrivateKeyPath and
// PrivateKey.
type AppConfig struct {
	AppID          int64
	InstallationID int64
	// PrivateKeyPath is the path of the App's PEM private key.
	PrivateKeyPath string
	// PrivateKey is the PEM private key itself.
	PrivateKey []byte
}

// Sink posts records to GitHub. It is safe for concurrent use.
type Sink struct {
	endpoint  string
	org       string
	auth      string // "Bearer <token>", or "" when the App transport authenticates
	token     string // redacted from server messages
	userAgent string
	timeout   time.Duration
	now       func() time.Time
	client    *http.Client
	app       *appTransport // nil with a token
}

var _ sink.Sink = (*Sink)(nil)

// New validates cfg, fills its defaults and returns a Sink. Errors name the Config field and never contain a
// secret.
func New(cfg Config) (*Sink, error) {
	var errs []error
	if cfg.BaseURL == "" {
		cfg.BaseURL = DefaultBaseURL
	}
	base := strings.TrimRight(cfg.BaseURL, "/")
	if u, err := url.Parse(base); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		errs = append(errs, fmt.Errorf("github sink: BaseURL %q: must be an http(s) URL such as %s or https://HOST/api/v3", cfg.BaseURL, DefaultBaseURL))
	}
	if cfg.Org == "" {
		errs = append(errs, errors.New("github sink: Org is required"))
	} else if strings.ContainsAny(cfg.Org, "/?#%") || strings.IndexFunc(cfg.Org, unicode.IsSpace) >= 0 {
		errs = append(errs, fmt.Errorf("github sink: Org %q is not an organization name", cfg.Org))
	}
	switch {
	case cfg.Token != "" && cfg.App != nil:
		errs = append(errs, errors.New("github sink: Token and App: set exactly one"))
	case cfg.Token == "" && cfg.App == nil:
		errs = append(errs, errors.New("github sink: Token or App is required"))
	case cfg.Token != "" && strings.IndexFunc(cfg.Token, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0:
		errs = append(errs, errors.New("github sink: Token contains whitespace or control characters"))
	case cfg.App != nil:
		if cfg.App.AppID <= 0 {
			errs = append(errs, errors.New("github sink: App.AppID must be positive"))
		}
		if cfg.App.InstallationID <= 0 {
			errs = append(errs, errors.New("github sink: App.InstallationID must be positive"))
		}
		if (cfg.App.PrivateKeyPath == "") == (len(cfg.App.PrivateKey) == 0) {
			errs = append(errs, errors.New("github sink: App: set exactly one of PrivateKeyPath and PrivateKey"))
		}
	}
	if cfg.Timeout < 0 {
		errs = append(errs, errors.New("github sink: Timeout must not be negative"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}

	if cfg.UserAgent == "" {
		cfg.UserAgent = version.UserAgent()
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = &http.Client{}
	}
	s := &Sink{
		endpoint:  base + "/orgs/" + url.PathEscape(cfg.Org) + "/artifacts/metadata/deployment-record",
		org:       cfg.Org,
		token:     cfg.Token,
		userAgent: cfg.UserAgent,
		timeout:   cfg.Timeout,
		now:       cfg.Now,
		client:    hc,
	}
	if cfg.Token != "" {
		s.auth = "Bearer " + cfg.Token
		return s, nil
	}

	key := cfg.App.PrivateKey
	if cfg.App.PrivateKeyPath != "" {
		var err error
		if key, err = os.ReadFile(cfg.App.PrivateKeyPath); err != nil {
			return nil, fmt.Errorf("github sink: App.PrivateKeyPath: %w", err)
		}
	}
	tr := hc.Transport
	if tr == nil {
		tr = http.DefaultTransport
	}
	s.app = &appTransport{base: tr, baseURL: base, appID: cfg.App.AppID, installationID: cfg.App.InstallationID, key: key}
	if err := s.app.reset(); err != nil {
		return nil, fmt.Errorf("github sink: App private key: %w", err)
	}
	s.client = &http.Client{Transport: s.app, CheckRedirect: hc.CheckRedirect, Jar: hc.Jar, Timeout: hc.Timeout}
	return s, nil
}

// Post sends r once and classifies the outcome: nil on 2xx; *sink.RetryAfterError for rate limits;
// *sink.NotFoundError for 404; *sink.PermanentError for other 4xx; a plain error (retryable) for 408, 5xx,
// network errors and timeouts.
func (s *Sink) Post(ctx context.Context, r record.Record) error {
	what := fmt.Sprintf("post deployment record %s@%s to org %s", r.Name, r.Digest, s.org)
	body, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("%s: encode: %w", what, err)
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.endpoint, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	resp, err := s.do(req)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	err = s.classify(resp)
	if err != nil && resp.StatusCode == http.StatusUnauthorized && s.app != nil {
		// The cached installation token was refused (revoked, or the App reinstalled): fetch a new one next
		// time, and let this record be retried with it. If the App itself lost access, the token request fails
		// and says so.
		_ = s.app.reset() // the key parsed in New; it parses again
		return fmt.Errorf("%s: installation token refused: status %d: %s", what, resp.StatusCode, errMessage(err))
	}
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// classify reads a bounded part of resp's body, drains and closes it, and maps the status to an error class.
func (s *Sink) classify(resp *http.Response) error {
	data := readBounded(resp.Body)
	code := resp.StatusCode
	if code >= 200 && code <= 299 {
		return nil
	}
	msg, docs := s.message(data, code)
	switch {
	case code == http.StatusTooManyRequests,
		code == http.StatusForbidden && rateLimited(resp.Header, msg, docs):
		return &sink.RetryAfterError{StatusCode: code, At: retryAt(resp.Header, s.now()), Message: msg}
	case code == http.StatusNotFound:
		return &sink.NotFoundError{Message: msg}
	case code == http.StatusRequestTimeout, code >= 500:
		return fmt.Errorf("status %d: %s", code, msg)
	case code >= 400:
		return &sink.PermanentError{StatusCode: code, Message: msg}
	default:
		return fmt.Errorf("unexpected status %d: %s", code, msg)
	}
}

// classifyToken classifies a failed installation token request like a record response, except that a 404 (an
// unknown installation) is a configuration problem, not an unknown artifact.
func (s *Sink) classifyToken(resp *http.Response) error {
	err := s.classify(resp)
	var nf *sink.NotFoundError
	if errors.As(err, &nf) {
		return &sink.PermanentError{StatusCode: http.StatusNotFound, Message: nf.Message}
	}
	return err
}

// message extracts GitHub's "message" (and validation "errors") from an error body, bounded and with the token
// redacted in case a server echoes it.
func (s *Sink) message(data []byte, code int) (msg, docs string) {
	var body struct {
		Message          string            `json:"message"`
		DocumentationURL string            `json:"documentation_url"`
		Errors           []json.RawMessage `json:"errors"`
	}
	if err := json.Unmarshal(data, &body); err == nil && body.Message != "" {
		msg, docs = body.Message, body.DocumentationURL
		for i, e := range body.Errors {
			if i == 5 {
				msg += "; …"
				break
			}
			var str string
			if json.Unmarshal(e, &str) != nil {
				str = string(e)
			}
			msg += "; " + str
		}
	} else {
		msg = strings.TrimSpace(string(data))
	}
	if msg == "" {
		msg = http.StatusText(code)
	}
	if s.token != "" {
		msg = strings.ReplaceAll(msg, s.token, "[REDACTED]")
	}
	msg = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(msg, "?"))
	if len(msg) > maxMessage {
		msg = strings.ToValidUTF8(msg[:maxMessage], "") + "…"
	}
	return msg, docs
}

// rateLimited tells a rate limited 403 from a permission 403: GitHub answers both primary and secondary rate
// limits with 403 or 429, and marks them with x-ratelimit-remaining: 0, a retry-after header, or a message and
// documentation link about rate limits.
func rateLimited(h http.Header, msg, docs string) bool {
	return h.Get("X-Ratelimit-Remaining") == "0" ||
		h.Get("Retry-After") != "" ||
		strings.Contains(strings.ToLower(msg), "rate limit") ||
		strings.HasSuffix(docs, "secondary-rate-limits") ||
		strings.HasSuffix(docs, "#abuse-rate-limits")
}

// retryAt is when posting may resume, following
// https://docs.github.com/rest/using-the-rest-api/rate-limits-for-the-rest-api#exceeding-the-rate-limit:
// retry-after (seconds, or an HTTP date) first; else x-ratelimit-reset (UTC epoch seconds) when
// x-ratelimit-remaining is 0; else at least one minute.
func retryAt(h http.Header, now time.Time) time.Time {
	at := now.Add(SecondaryRateLimitWait)
	if v := strings.TrimSpace(h.Get("Retry-After")); v != "" {
		if secs, err := strconv.ParseInt(v, 10, 64); err == nil && secs >= 0 {
			at = now.Add(time.Duration(min(secs, int64(maxRetryAfter/time.Second))) * time.Second)
		} else if t, err := http.ParseTime(v); err == nil {
			at = t
		}
	} else if h.Get("X-Ratelimit-Remaining") == "0" {
		if reset, err := strconv.ParseInt(h.Get("X-Ratelimit-Reset"), 10, 64); err == nil {
			at = time.Unix(reset, 0)
		}
	}
	if at.Before(now) {
		at = now
	}
	if limit := now.Add(maxRetryAfter); at.After(limit) {
		at = limit
	}
	return at
}

// readBounded reads at most MaxResponseBytes of body, drains at most as much again so the connection can be
// reused, and closes it.
func readBounded(body io.ReadCloser) []byte {
	defer body.Close()
	data, _ := io.ReadAll(io.LimitReader(body, MaxResponseBytes))
	_, _ = io.CopyN(io.Discard, body, MaxResponseBytes)
	return data
}

// errMessage is the server message of a classified error.
func errMessage(err error) string {
	var pe *sink.PermanentError
	if errors.As(err, &pe) {
		return pe.Message
	}
	return err.Error()
}

// appTransport authenticates as a GitHub App installation through ghinstallation, and can drop its cached
// installation token.
type appTransport struct {
	base           http.RoundTripper
	baseURL        string
	appID          int64
	installationID int64
	key            []byte

	mu  sync.RWMutex
	cur *ghinstallation.Transport
}

// reset starts over with an empty token cache. Each generation gets its own ghinstallation transports: they
// write to their AppsTransport when refreshing, so generations must not share one.
func (t *appTransport) reset() error {
	itr, err := ghinstallation.New(t.base, t.appID, t.installationID, t.key)
	if err != nil {
		return err
	}
	// The installation token is requested from BaseURL too, which makes GitHub Enterprise Server work.
	itr.BaseURL = t.baseURL
	t.mu.Lock()
	t.cur = itr
	t.mu.Unlock()
	return nil
}

// RoundTrip implements http.RoundTripper.
func (t *appTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	t.mu.RLock()
	cur := t.cur
	t.mu.RUnlock()
	return cur.RoundTrip(req)
}

// do sends req with the headers GitHub expects (and a JSON content type when it has a body). A failure to get
// an installation token is classified like an answer of the API.
func (s *Sink) do(req *http.Request) (*http.Response, error) {
	req.Header.Set("Accept", mediaType)
	req.Header.Set("X-GitHub-Api-Version", apiVersion)
	req.Header.Set("User-Agent", s.userAgent)
	if req.Body != nil && req.Body != http.NoBody {
		req.Header.Set("Content-Type", "application/json")
	}
	if s.auth != "" {
		req.Header.Set("Authorization", s.auth)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		var tokenErr *ghinstallation.HTTPError
		if errors.As(err, &tokenErr) && tokenErr.Response != nil {
			return nil, fmt.Errorf("get installation token: %w", s.classifyToken(tokenErr.Response))
		}
		return nil, err
	}
	return resp, nil
}
