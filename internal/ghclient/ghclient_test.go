package ghclient

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/deployment-tracker/deployment-tracker/internal/githubtest"
	"github.com/deployment-tracker/deployment-tracker/internal/sink"
)

const secret = "ghp_s3cr3tT0k3nValue"

var fixedNow = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

func TestNewValidation(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{name: "token", cfg: Config{Token: secret}},
		{name: "nothing", cfg: Config{}, wantErr: "Token, TokenFile or App is required"},
		{name: "two", cfg: Config{Token: secret, TokenFile: "/x"}, wantErr: "set exactly one"},
		{name: "token with space", cfg: Config{Token: "a b"}, wantErr: "Token contains whitespace"},
		{name: "relative base URL", cfg: Config{BaseURL: "api.github.com", Token: secret}, wantErr: "BaseURL"},
		{name: "missing token file", cfg: Config{TokenFile: "/nonexistent/token"}, wantErr: "TokenFile"},
		{name: "app without ids", cfg: Config{App: &AppConfig{PrivateKey: []byte("x")}}, wantErr: "App.AppID"},
		{name: "app with bad key", cfg: Config{App: &AppConfig{AppID: 1, InstallationID: 2, PrivateKey: []byte("not a key")}}, wantErr: "private key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.cfg)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("New: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("New: %v, want an error containing %q", err, tt.wantErr)
			case err != nil && strings.Contains(err.Error(), secret):
				t.Fatalf("error shows the token: %v", err)
			}
		})
	}
}

// TestClassify checks the class of every kind of answer, through a go-github call and through Do.
func TestClassify(t *testing.T) {
	tests := []struct {
		name   string
		status int
		header map[string]string
		body   string
		want   sink.Class
		wantAt time.Duration // for ClassRetryAfter: the pause from fixedNow
	}{
		{name: "ok", status: 200, body: `{"login":"octo-org"}`, want: sink.ClassNone},
		{name: "bad credentials", status: 401, body: `{"message":"Bad credentials"}`, want: sink.ClassCredentials},
		{name: "sso", status: 403, body: `{"message":"Resource protected by organization SAML enforcement."}`, want: sink.ClassCredentials},
		{name: "primary rate limit", status: 403, header: map[string]string{"X-Ratelimit-Remaining": "0", "X-Ratelimit-Reset": strconv.FormatInt(fixedNow.Add(10*time.Minute).Unix(), 10)}, body: `{"message":"API rate limit exceeded"}`, want: sink.ClassRetryAfter, wantAt: 10 * time.Minute},
		{name: "secondary with retry-after", status: 403, header: map[string]string{"Retry-After": "30"}, body: `{"message":"You have exceeded a secondary rate limit","documentation_url":"https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits"}`, want: sink.ClassRetryAfter, wantAt: 30 * time.Second},
		{name: "secondary without retry-after", status: 403, body: `{"message":"You have exceeded a secondary rate limit","documentation_url":"https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits"}`, want: sink.ClassRetryAfter, wantAt: time.Minute},
		{name: "429 bare", status: 429, body: `{"message":"Too Many Requests"}`, want: sink.ClassRetryAfter, wantAt: time.Minute},
		{name: "not found", status: 404, body: `{"message":"Not Found"}`, want: sink.ClassNotFound},
		{name: "validation", status: 422, body: `{"message":"Validation Failed","errors":[{"resource":"Deployment","field":"ref","code":"invalid"}]}`, want: sink.ClassPermanent},
		{name: "timeout", status: 408, want: sink.ClassRetryable},
		{name: "server error", status: 502, body: "<html>bad gateway</html>", want: sink.ClassRetryable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if got := r.Header.Get("Authorization"); got != "Bearer "+secret {
					t.Errorf("Authorization = %q", got)
				}
				if r.Header.Get("User-Agent") == "" || r.Header.Get("X-Github-Api-Version") != APIVersion {
					t.Errorf("headers: %v", r.Header)
				}
				for k, v := range tt.header {
					w.Header().Set(k, v)
				}
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(tt.status)
				_, _ = w.Write([]byte(tt.body))
			}))
			defer srv.Close()
			c, err := New(Config{BaseURL: srv.URL, Token: secret, Now: func() time.Time { return fixedNow }})
			if err != nil {
				t.Fatal(err)
			}
			_, _, err = c.GitHub.Organizations.Get(t.Context(), "octo-org")
			check := func(how string, err error) {
				t.Helper()
				if got := sink.Classify(err); got != tt.want {
					t.Fatalf("%s: class %v of %v, want %v", how, got, err, tt.want)
				}
				var ra *sink.RetryAfterError
				if errors.As(err, &ra) {
					if got := ra.At.Sub(fixedNow); got != tt.wantAt {
						t.Errorf("%s: pause %v, want %v", how, got, tt.wantAt)
					}
				}
			}
			check("go-github", c.Classify(err))
			req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL+"/orgs/octo-org", nil)
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			err = c.ClassifyResponse(resp)
			if err == nil {
				resp.Body.Close()
			}
			check("Do", err)
		})
	}
}

// TestValidationMessage: a 422 carries GitHub's message and the validation errors, with a token redacted.
func TestValidationMessage(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(422)
		_, _ = w.Write([]byte(`{"message":"Validation Failed for ` + secret + `","errors":[{"resource":"Deployment","field":"ref","code":"invalid"},{"message":"No ref found for: v9"}]}`))
	}))
	defer srv.Close()
	c, err := New(Config{BaseURL: srv.URL, Token: secret})
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = c.GitHub.Organizations.Get(t.Context(), "o")
	err = c.Classify(err)
	var pe *sink.PermanentError
	if !errors.As(err, &pe) {
		t.Fatalf("error %v, want permanent", err)
	}
	want := "Validation Failed for [REDACTED]; Deployment ref invalid; No ref found for: v9"
	if pe.Message != want {
		t.Errorf("message %q, want %q", pe.Message, want)
	}
}

// TestTokenFileReload: a rewritten token file is used without a restart; a file made empty keeps the last
// good token.
func TestTokenFileReload(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Header.Get("Authorization"))
		mu.Unlock()
		_, _ = w.Write([]byte(`{}`))
	}))
	defer srv.Close()
	path := filepath.Join(t.TempDir(), "token")
	write := func(s string, mod time.Time) {
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(path, mod, mod); err != nil {
			t.Fatal(err)
		}
	}
	write("one\n", fixedNow)
	now := fixedNow
	c, err := New(Config{BaseURL: srv.URL, TokenFile: path, ReloadInterval: time.Second, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	call := func() {
		if _, _, err := c.GitHub.Organizations.Get(t.Context(), "o"); err != nil {
			t.Fatal(err)
		}
	}
	call()
	write("two\n", fixedNow.Add(time.Minute))
	call() // within the interval: still one
	now = now.Add(2 * time.Second)
	call()
	write("", fixedNow.Add(2*time.Minute))
	now = now.Add(2 * time.Second)
	call()
	want := []string{"Bearer one", "Bearer one", "Bearer two", "Bearer two"}
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(seen, ",") != strings.Join(want, ",") {
		t.Errorf("tokens sent %v, want %v", seen, want)
	}
}

// TestAppAgainstFake: App authentication mints installation tokens at BaseURL (GitHub Enterprise Server's
// prefix too), drops a refused token, and a wrong installation is a credentials problem.
func TestAppAgainstFake(t *testing.T) {
	key, pemKey, err := githubtest.GenerateAppKey()
	if err != nil {
		t.Fatal(err)
	}
	srv, err := githubtest.New(githubtest.Options{PathPrefix: "/api/v3", App: &githubtest.AppAuth{AppID: 7, InstallationID: 8, PublicKey: &key.PublicKey}})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	c, err := New(Config{BaseURL: srv.URL(), App: &AppConfig{AppID: 7, InstallationID: 8, PrivateKey: pemKey}})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.GitHub.Organizations.Get(t.Context(), srv.Org()); err != nil {
		t.Fatalf("get org: %v", c.Classify(err))
	}
	srv.RevokeTokens()
	_, _, err = c.GitHub.Organizations.Get(t.Context(), srv.Org())
	if got := sink.Classify(c.Classify(err)); got != sink.ClassCredentials {
		t.Fatalf("revoked token: class %v of %v", got, err)
	}
	if _, _, err := c.GitHub.Organizations.Get(t.Context(), srv.Org()); err != nil {
		t.Fatalf("after a refused token, a new one is minted: %v", c.Classify(err))
	}
	if n := srv.TokenRequests(); n != 2 {
		t.Errorf("token requests %d, want 2", n)
	}

	wrong, err := New(Config{BaseURL: srv.URL(), App: &AppConfig{AppID: 7, InstallationID: 99, PrivateKey: pemKey}})
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = wrong.GitHub.Organizations.Get(t.Context(), srv.Org())
	if got := sink.Classify(wrong.Classify(err)); got != sink.ClassCredentials {
		t.Fatalf("unknown installation: class %v of %v, want credentials", got, err)
	}
}

// TestBoundedBody: a huge success body is cut at MaxResponseBytes.
func TestBoundedBody(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"login":"`))
		_, _ = w.Write([]byte(strings.Repeat("x", MaxResponseBytes+10)))
		_, _ = w.Write([]byte(`"}`))
	}))
	defer srv.Close()
	c, err := New(Config{BaseURL: srv.URL, Token: secret})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.GitHub.Organizations.Get(t.Context(), "o"); err == nil {
		t.Fatal("a body beyond the bound decoded")
	}
}
