// Package ghclient is the one GitHub client of the tracker: a go-github client (github.com/google/go-github)
// authenticated with a token or as a GitHub App installation (ghinstallation), on github.com or GitHub
// Enterprise Server, and the classification of its errors into the sink error classes. Every GitHub sink and
// check uses it, so that they authenticate, pace and classify alike.
//
// Credentials are re-read without a restart: a token file (API_TOKEN_FILE) and an App's private key file are
// checked for changes at most every ReloadInterval, as a mounted Secret is updated in place by the kubelet.
//
// The client never retries: the dispatchers' workqueues are the only retry layer. Response bodies are bounded.
package ghclient

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode"

	"github.com/google/go-github/v88/github"

	"github.com/deployment-tracker/deployment-tracker/internal/version"
)

// Defaults and bounds.
const (
	// DefaultBaseURL is the API of github.com.
	DefaultBaseURL = "https://api.github.com"
	// DefaultReloadInterval is how often a changed token or key file is looked for, at most.
	DefaultReloadInterval = 10 * time.Second
	// MaxResponseBytes bounds every response body read; the cluster endpoints answer the largest bodies.
	MaxResponseBytes = 8 << 20
	// SecondaryRateLimitWait is how long to pause after a rate limit answer that says nothing about when to
	// come back: "Otherwise, wait for at least one minute before retrying."
	// (https://docs.github.com/rest/using-the-rest-api/rate-limits-for-the-rest-api#exceeding-the-rate-limit)
	SecondaryRateLimitWait = time.Minute
	// maxRetryAfter caps a Retry-After or reset that is absurdly far away.
	maxRetryAfter = 24 * time.Hour
	// MaxMessage bounds the server message carried by errors.
	MaxMessage = 512
)

// The headers of the hand-written calls, as go-github sends them
// (https://docs.github.com/rest/about-the-rest-api/api-versions).
const (
	APIVersion = "2022-11-28"
	MediaType  = "application/vnd.github+json"
)

// Config configures a Client. Exactly one of Token, TokenFile and App is required.
type Config struct {
	// BaseURL is the REST API root: https://api.github.com (default) or https://HOST/api/v3 for GitHub
	// Enterprise Server. App installation tokens are minted there too.
	BaseURL string
	// Token is a personal access token (or any bearer token).
	Token string
	// TokenFile is a file holding the token (a trailing newline is ignored); it is read again when it changes.
	TokenFile string
	// App authenticates as a GitHub App installation.
	App *AppConfig
	// UserAgent is sent with every request (default version.UserAgent()); GitHub refuses requests without one.
	UserAgent string
	// HTTPClient is the client whose Transport, CheckRedirect and Timeout are used (default: a new client over
	// http.DefaultTransport).
	HTTPClient *http.Client
	// ReloadInterval bounds how often TokenFile and App.PrivateKeyPath are checked for changes (default
	// DefaultReloadInterval).
	ReloadInterval time.Duration
	// Now is the clock Retry-After is computed with (default time.Now).
	Now func() time.Time
}

// AppConfig identifies a GitHub App installation and its private key: exactly one of PrivateKeyPath and
// PrivateKey.
type AppConfig struct {
	AppID          int64
	InstallationID int64
	// PrivateKeyPath is the path of the App's PEM private key; it is read again when it changes.
	PrivateKeyPath string
	// PrivateKey is the PEM private key itself.
	PrivateKey []byte
}

// Client is an authenticated GitHub client. It is safe for concurrent use.
type Client struct {
	// GitHub is the go-github client for every call go-github has.
	GitHub *github.Client
	// BaseURL is the API root without a trailing slash.
	BaseURL string

	http      *http.Client // authenticated, bounded bodies: for the calls go-github lacks
	userAgent string
	now       func() time.Time
	creds     credentials
}

// credentials authenticate requests and know the secrets to redact from messages.
type credentials interface {
	http.RoundTripper
	// refused tells the credentials that GitHub answered 401: an App drops its cached installation token.
	refused()
	// secrets are the strings never to show in a message.
	secrets() []string
}

// New validates cfg, fills its defaults and returns a Client. Errors name the Config field and never contain a
// secret.
func New(cfg Config) (*Client, error) {
	var errs []error
	if cfg.BaseURL == "" {
		cfg.BaseURL = DefaultBaseURL
	}
	base := strings.TrimRight(cfg.BaseURL, "/")
	if u, err := url.Parse(base); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		errs = append(errs, fmt.Errorf("BaseURL %q: must be an http(s) URL such as %s or https://HOST/api/v3", cfg.BaseURL, DefaultBaseURL))
	}
	n := 0
	for _, set := range []bool{cfg.Token != "", cfg.TokenFile != "", cfg.App != nil} {
		if set {
			n++
		}
	}
	switch {
	case n > 1:
		errs = append(errs, errors.New("Token, TokenFile and App: set exactly one"))
	case n == 0:
		errs = append(errs, errors.New("Token, TokenFile or App is required"))
	case cfg.Token != "" && !validToken(cfg.Token):
		errs = append(errs, errors.New("Token contains whitespace or control characters"))
	case cfg.App != nil:
		errs = append(errs, cfg.App.validate()...)
	}
	if cfg.ReloadInterval < 0 {
		errs = append(errs, errors.New("ReloadInterval must not be negative"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if cfg.UserAgent == "" {
		cfg.UserAgent = version.UserAgent()
	}
	if cfg.ReloadInterval == 0 {
		cfg.ReloadInterval = DefaultReloadInterval
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = &http.Client{}
	}
	tr := hc.Transport
	if tr == nil {
		tr = http.DefaultTransport
	}
	tr = boundedTransport{tr}

	var creds credentials
	var err error
	switch {
	case cfg.Token != "":
		creds = &tokenTransport{base: tr, file: &tokenFile{token: cfg.Token}}
	case cfg.TokenFile != "":
		f := &tokenFile{path: cfg.TokenFile, every: cfg.ReloadInterval, now: cfg.Now}
		if err = f.load(); err != nil {
			return nil, fmt.Errorf("TokenFile: %w", err)
		}
		creds = &tokenTransport{base: tr, file: f}
	default:
		if creds, err = newAppTransport(tr, base, *cfg.App, cfg.ReloadInterval, cfg.Now); err != nil {
			return nil, err
		}
	}
	authed := &http.Client{Transport: creds, CheckRedirect: hc.CheckRedirect, Jar: hc.Jar, Timeout: hc.Timeout}
	// WithURLs, not WithEnterpriseURLs: the latter appends /api/v3/ to a URL without it, which would hide a
	// misconfigured BASE_URL instead of letting the organization check report it.
	root := base + "/"
	gh, err := github.NewClient(github.WithHTTPClient(authed), github.WithUserAgent(cfg.UserAgent), github.WithURLs(&root, &root))
	if err != nil {
		return nil, fmt.Errorf("BaseURL: %w", err)
	}
	return &Client{GitHub: gh, BaseURL: base, http: authed, userAgent: cfg.UserAgent, now: cfg.Now, creds: creds}, nil
}

func (a AppConfig) validate() []error {
	var errs []error
	if a.AppID <= 0 {
		errs = append(errs, errors.New("App.AppID must be positive"))
	}
	if a.InstallationID <= 0 {
		errs = append(errs, errors.New("App.InstallationID must be positive"))
	}
	if (a.PrivateKeyPath == "") == (len(a.PrivateKey) == 0) {
		errs = append(errs, errors.New("App: set exactly one of PrivateKeyPath and PrivateKey"))
	}
	return errs
}

// validToken reports whether t could be a token: no whitespace or control characters.
func validToken(t string) bool {
	return t != "" && strings.IndexFunc(t, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) < 0
}

// Do sends a hand-written request (for an endpoint go-github lacks) with the headers GitHub expects, and a JSON
// content type when it has a body. Its response body is bounded by MaxResponseBytes. A refused installation
// token comes back as an error that Classify understands.
func (c *Client) Do(req *http.Request) (*http.Response, error) {
	req.Header.Set("Accept", MediaType)
	req.Header.Set("X-GitHub-Api-Version", APIVersion)
	req.Header.Set("User-Agent", c.userAgent)
	if req.Body != nil && req.Body != http.NoBody {
		req.Header.Set("Content-Type", "application/json")
	}
	return c.http.Do(req)
}
