package preflight

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"k8s.io/client-go/kubernetes/fake"

	"github.com/deployment-tracker/deployment-tracker/internal/config"
	"github.com/deployment-tracker/deployment-tracker/internal/githubtest"
)

const (
	testToken      = "ghp_preflighttoken"
	testAppID      = 4242
	testInstallID  = 77
	testOrg        = "octo-org"
	testPathPrefix = "/api/v3" // as GitHub Enterprise Server: BASE_URL paths are kept
)

// countingTransport counts the requests and remembers their method and path.
type countingTransport struct {
	base http.RoundTripper
	mu   sync.Mutex
	reqs []string
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.mu.Lock()
	c.reqs = append(c.reqs, r.Method+" "+r.URL.Path)
	c.mu.Unlock()
	return c.base.RoundTrip(r)
}

func TestGitHub(t *testing.T) {
	key, pemKey, err := githubtest.GenerateAppKey()
	if err != nil {
		t.Fatal(err)
	}
	_, otherPEM, err := githubtest.GenerateAppKey()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	keyPath, otherKeyPath := filepath.Join(dir, "app.pem"), filepath.Join(dir, "other.pem")
	for p, b := range map[string][]byte{keyPath: pemKey, otherKeyPath: otherPEM} {
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	gh, err := githubtest.New(githubtest.Options{
		Org:        testOrg,
		Tokens:     []string{testToken},
		App:        &githubtest.AppAuth{AppID: testAppID, InstallationID: testInstallID, PublicKey: &key.PublicKey},
		PathPrefix: testPathPrefix,
		TLS:        true,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(gh.Close)

	token := func(tok string) func(*config.Config) { return func(c *config.Config) { c.APIToken = tok } }
	app := func(appID, installID int64, key string) func(*config.Config) {
		return func(c *config.Config) { c.AppID, c.InstallationID, c.AppPrivateKey = appID, installID, key }
	}
	tests := []struct {
		name      string
		tracker   func(*config.Config)
		variables string // CredentialVariables, as Main sets it
		want      Status
		wantMsg   []string
		wantCalls []string
	}{
		{
			name:      "token",
			tracker:   token(testToken),
			want:      Pass,
			wantMsg:   []string{"organization octo-org found at " + gh.URL() + ", credentials (API_TOKEN) accepted"},
			wantCalls: []string{"GET /api/v3/orgs/octo-org"},
		},
		{
			name:      "token, wrong org",
			tracker:   func(c *config.Config) { c.APIToken, c.Org = testToken, "octo-typo" },
			want:      Fail,
			wantMsg:   []string{`ORG: organization "octo-typo" not found`, "404 Not Found", "check ORG"},
			wantCalls: []string{"GET /api/v3/orgs/octo-typo"},
		},
		{
			name:      "token refused",
			tracker:   token("ghp_revoked"),
			want:      Fail,
			wantMsg:   []string{"API_TOKEN: GitHub refused the credentials", "401 Bad credentials"},
			wantCalls: []string{"GET /api/v3/orgs/octo-org"},
		},
		{
			name:      "token file refused",
			tracker:   token("ghp_revoked"),
			variables: "API_TOKEN_FILE",
			want:      Fail,
			wantMsg:   []string{"API_TOKEN_FILE: GitHub refused the credentials"},
		},
		{
			name:      "app",
			tracker:   app(testAppID, testInstallID, keyPath),
			want:      Pass,
			wantMsg:   []string{"credentials (GH_APP_ID, GH_INSTALL_ID, GH_APP_PRIV_KEY) accepted"},
			wantCalls: []string{"POST /api/v3/app/installations/77/access_tokens", "GET /api/v3/orgs/octo-org"},
		},
		{
			name:      "app, wrong org",
			tracker:   func(c *config.Config) { app(testAppID, testInstallID, keyPath)(c); c.Org = "octo-typo" },
			want:      Fail,
			wantMsg:   []string{`ORG: organization "octo-typo" not found`},
			wantCalls: []string{"POST /api/v3/app/installations/77/access_tokens", "GET /api/v3/orgs/octo-typo"},
		},
		{
			name:      "app, unknown installation",
			tracker:   app(testAppID, 78, keyPath),
			want:      Fail,
			wantMsg:   []string{"GH_INSTALL_ID: no such installation", "App 4242, installation 78: 404"},
			wantCalls: []string{"POST /api/v3/app/installations/78/access_tokens"},
		},
		{
			name:      "app, another App's key",
			tracker:   app(testAppID, testInstallID, otherKeyPath),
			want:      Fail,
			wantMsg:   []string{"GH_APP_ID, GH_APP_PRIV_KEY: GitHub refused the App's JWT", "401"},
			wantCalls: []string{"POST /api/v3/app/installations/77/access_tokens"},
		},
		{
			name:    "app, wrong App ID",
			tracker: app(4243, testInstallID, keyPath),
			want:    Fail,
			wantMsg: []string{"GH_APP_ID, GH_APP_PRIV_KEY: GitHub refused the App's JWT"},
		},
		{
			name:    "dry run",
			tracker: func(c *config.Config) { c.DryRun = true },
			want:    Warn,
			wantMsg: []string{"-dry-run"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tracker := &config.Config{Org: testOrg, BaseURL: gh.URL()}
			tt.tracker(tracker)
			tr := &countingTransport{base: gh.Client().Transport}
			c := newChecker(t, fake.NewClientset(), func(cfg *Config) {
				cfg.Tracker, cfg.CredentialVariables, cfg.HTTPClient = tracker, tt.variables, &http.Client{Transport: tr}
			})
			got := c.github(t.Context())
			wantResult(t, got, tt.want, tt.wantMsg...)
			if tracker.APIToken != "" && strings.Contains(got.Message, tracker.APIToken) {
				t.Errorf("message %q shows the token", got.Message)
			}
			if tt.wantCalls != nil && strings.Join(tr.reqs, ", ") != strings.Join(tt.wantCalls, ", ") {
				t.Errorf("requests %q, want %q", tr.reqs, tt.wantCalls)
			}
		})
	}
}

// TestGitHubStatuses covers the answers the fake does not give on this endpoint: rate limits, permission
// refusals and outages.
func TestGitHubStatuses(t *testing.T) {
	tests := []struct {
		name    string
		status  int
		header  map[string]string
		body    string
		want    Status
		wantMsg []string
	}{
		{name: "ok", status: 200, body: `{"login":"octo-org"}`, want: Pass},
		{name: "SSO", status: 403, body: `{"message":"Resource protected by organization SAML enforcement. You must grant your Personal Access token access to this organization."}`,
			want: Fail, wantMsg: []string{"API_TOKEN: GitHub forbids this organization", "SAML enforcement", "authorize it for SSO"}},
		{name: "primary rate limit", status: 403, header: map[string]string{"X-Ratelimit-Remaining": "0"}, body: `{"message":"API rate limit exceeded"}`,
			want: Warn, wantMsg: []string{"rate limited", "try again later"}},
		{name: "secondary rate limit", status: 429, header: map[string]string{"Retry-After": "60"}, body: `{"message":"You have exceeded a secondary rate limit"}`,
			want: Warn, wantMsg: []string{"rate limited"}},
		{name: "outage", status: 503, body: "<html>unicorn</html>", want: Warn, wantMsg: []string{"GitHub failed", "503 <html>unicorn</html>"}},
		{name: "not an API", status: 302, header: map[string]string{"Location": "/login"}, want: Fail, wantMsg: []string{"unexpected answer", "check BASE_URL"}},
		{name: "token echoed", status: 401, body: `{"message":"Bad credentials: ` + testToken + `"}`, want: Fail, wantMsg: []string{"[REDACTED]"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Method != http.MethodGet || r.URL.Path != "/orgs/octo-org" {
					t.Errorf("request %s %s, want GET /orgs/octo-org", r.Method, r.URL.Path)
				}
				for h, want := range map[string]string{
					"Authorization": "Bearer " + testToken, "X-GitHub-Api-Version": "2022-11-28",
				} {
					if got := r.Header.Get(h); got != want {
						t.Errorf("%s: %q, want %q", h, got, want)
					}
				}
				// go-github asks for GitHub's JSON, some endpoints with a preview media type.
				if got := r.Header.Get("Accept"); !strings.HasPrefix(got, "application/vnd.github.") {
					t.Errorf("Accept: %q, want a GitHub media type", got)
				}
				if !strings.HasPrefix(r.Header.Get("User-Agent"), "deployment-tracker/") {
					t.Errorf("User-Agent %q", r.Header.Get("User-Agent"))
				}
				for k, v := range tt.header {
					w.Header().Set(k, v)
				}
				w.WriteHeader(tt.status)
				_, _ = w.Write([]byte(tt.body))
			}))
			t.Cleanup(srv.Close)
			c := newChecker(t, fake.NewClientset(), func(cfg *Config) {
				cfg.Tracker = &config.Config{Org: testOrg, BaseURL: srv.URL, APIToken: testToken}
				// Redirects are not followed, so that a 3xx is seen as it is.
				cfg.HTTPClient = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			})
			got := c.github(t.Context())
			wantResult(t, got, tt.want, tt.wantMsg...)
			if strings.Contains(got.Message, testToken) {
				t.Errorf("message %q shows the token", got.Message)
			}
		})
	}
}

func TestGitHubUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	c := newChecker(t, fake.NewClientset(), func(cfg *Config) {
		cfg.Tracker = &config.Config{Org: testOrg, BaseURL: url, APIToken: testToken}
	})
	wantResult(t, c.github(t.Context()), Fail, "GET "+url+"/orgs/octo-org", "check BASE_URL")
}
