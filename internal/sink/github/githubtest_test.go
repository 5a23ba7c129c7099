package github

import (
	"context"
	"crypto/rsa"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/deployment-tracker/deployment-tracker/internal/githubtest"
	"github.com/deployment-tracker/deployment-tracker/internal/record"
	"github.com/deployment-tracker/deployment-tracker/internal/sink"
)

const (
	testAppID     = 1234
	testInstallID = 5678
)

// appFixture is a GitHub App key pair, the private key written to a file as the tracker reads it.
type appFixture struct {
	key     *rsa.PrivateKey
	keyPath string
}

func newApp(t *testing.T) appFixture {
	t.Helper()
	key, pemKey, err := githubtest.GenerateAppKey()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "app.pem")
	if err := os.WriteFile(path, pemKey, 0o600); err != nil {
		t.Fatal(err)
	}
	return appFixture{key: key, keyPath: path}
}

func newFake(t *testing.T, opts githubtest.Options) *githubtest.Server {
	t.Helper()
	gh, err := githubtest.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(gh.Close)
	return gh
}

func TestTokenAgainstFake(t *testing.T) {
	gh := newFake(t, githubtest.Options{Tokens: []string{secretToken}})
	s, err := New(Config{BaseURL: gh.URL(), Org: gh.Org(), Token: secretToken})
	if err != nil {
		t.Fatal(err)
	}
	deployed := testRecord()
	gone := testRecord()
	gone.Status = record.StatusDecommissioned
	for _, r := range []record.Record{deployed, gone} {
		if err := s.Post(t.Context(), r); err != nil {
			t.Fatalf("Post: %v", err)
		}
	}
	if diff := cmp.Diff([]record.Record{deployed, gone}, gh.Accepted()); diff != "" {
		t.Errorf("accepted (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[record.Key]record.Record{gone.Key(): gone}, gh.Current()); diff != "" {
		t.Errorf("current (-want +got):\n%s", diff)
	}

	bad, err := New(Config{BaseURL: gh.URL(), Org: gh.Org(), Token: "ghp_wrong"})
	if err != nil {
		t.Fatal(err)
	}
	checkErr(t, bad.Post(t.Context(), testRecord()), wantErr{Class: sink.ClassCredentials, StatusCode: 401, Message: "Bad credentials"})
}

// TestAppAgainstFake goes JWT → installation token → record through ghinstallation, against a fake shaped like
// GitHub Enterprise Server (HTTPS, /api/v3) so that the token request must follow BaseURL.
func TestAppAgainstFake(t *testing.T) {
	app := newApp(t)
	gh := newFake(t, githubtest.Options{
		TLS:        true,
		PathPrefix: "/api/v3",
		App:        &githubtest.AppAuth{AppID: testAppID, InstallationID: testInstallID, PublicKey: &app.key.PublicKey},
	})
	s, err := New(Config{
		BaseURL:    gh.URL(),
		Org:        gh.Org(),
		App:        &AppConfig{AppID: testAppID, InstallationID: testInstallID, PrivateKeyPath: app.keyPath},
		HTTPClient: gh.Client(),
	})
	if err != nil {
		t.Fatal(err)
	}
	var want []record.Record
	for _, name := range []string{"a", "b", "c"} {
		r := testRecord()
		r.DeploymentName = name
		want = append(want, r)
		if err := s.Post(t.Context(), r); err != nil {
			t.Fatalf("Post: %v", err)
		}
	}
	if diff := cmp.Diff(want, gh.Accepted()); diff != "" {
		t.Errorf("accepted (-want +got):\n%s", diff)
	}
	if n := gh.TokenRequests(); n != 1 {
		t.Errorf("token requests = %d, want 1 (the token is cached)", n)
	}

	// A revoked installation token fails one post, retryably, and the next post gets a fresh token.
	gh.RevokeTokens()
	checkErr(t, s.Post(t.Context(), testRecord()), wantErr{Class: sink.ClassCredentials, StatusCode: 401, Message: "Bad credentials"})
	if err := s.Post(t.Context(), testRecord()); err != nil {
		t.Fatalf("Post after a refused token: %v", err)
	}
	if n := gh.TokenRequests(); n != 2 {
		t.Errorf("token requests = %d, want 2", n)
	}
}

func TestAppTokenFailures(t *testing.T) {
	app := newApp(t)
	other := newApp(t)
	tests := []struct {
		name    string
		app     AppConfig
		inject  func(gh *githubtest.Server)
		want    wantErr
		records int // posted after the failure by a second Post
	}{
		{name: "unknown installation refuses the credentials, not the artifact",
			app:  AppConfig{AppID: testAppID, InstallationID: testInstallID + 1, PrivateKeyPath: app.keyPath},
			want: wantErr{Class: sink.ClassCredentials, StatusCode: http.StatusNotFound, Message: "installation not found: Not Found"}},
		{name: "key of another App",
			app:  AppConfig{AppID: testAppID, InstallationID: testInstallID, PrivateKeyPath: other.keyPath},
			want: wantErr{Class: sink.ClassCredentials, StatusCode: http.StatusUnauthorized, Message: "A JSON web token could not be decoded"}},
		{name: "wrong App ID",
			app:  AppConfig{AppID: testAppID + 1, InstallationID: testInstallID, PrivateKeyPath: app.keyPath},
			want: wantErr{Class: sink.ClassCredentials, StatusCode: http.StatusUnauthorized, Message: "'Issuer' claim"}},
		{name: "token endpoint unavailable is retryable",
			app: AppConfig{AppID: testAppID, InstallationID: testInstallID, PrivateKeyPath: app.keyPath},
			inject: func(gh *githubtest.Server) {
				gh.InjectTokenNext(1, githubtest.Fault{Status: http.StatusServiceUnavailable})
			},
			want:    wantErr{Class: sink.ClassRetryable, Message: "status 503"},
			records: 1},
		{name: "token endpoint rate limited",
			app: AppConfig{AppID: testAppID, InstallationID: testInstallID, PrivateKeyPath: app.keyPath},
			inject: func(gh *githubtest.Server) {
				gh.InjectTokenNext(1, githubtest.Fault{Status: http.StatusForbidden, Message: githubtest.PrimaryRateLimitMessage,
					Header: http.Header{"X-Ratelimit-Remaining": {"0"}, "X-Ratelimit-Reset": {"1893560645"}}})
			},
			want:    wantErr{Class: sink.ClassRetryAfter, StatusCode: http.StatusForbidden, At: time.Unix(1893560645, 0), Message: "API rate limit exceeded"},
			records: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gh := newFake(t, githubtest.Options{
				App: &githubtest.AppAuth{AppID: testAppID, InstallationID: testInstallID, PublicKey: &app.key.PublicKey},
			})
			if tt.inject != nil {
				tt.inject(gh)
			}
			cfg := tt.app
			s, err := New(Config{BaseURL: gh.URL(), Org: gh.Org(), App: &cfg, Now: func() time.Time { return fixedNow }})
			if err != nil {
				t.Fatal(err)
			}
			checkErr(t, s.Post(t.Context(), testRecord()), tt.want)
			if gh.Calls() != 0 {
				t.Errorf("record endpoint called %d times without a token", gh.Calls())
			}
			if tt.records > 0 {
				if err := s.Post(t.Context(), testRecord()); err != nil {
					t.Fatalf("second Post: %v", err)
				}
			}
			if n := len(gh.Accepted()); n != tt.records {
				t.Errorf("accepted %d records, want %d", n, tt.records)
			}
		})
	}
}

// TestClassificationAgainstFake checks that what the fake injects is classified as the dispatcher needs.
func TestClassificationAgainstFake(t *testing.T) {
	reset := time.Unix(1893560645, 0)
	tests := []struct {
		name   string
		inject func(gh *githubtest.Server)
		change func(r *record.Record)
		want   wantErr
	}{
		{name: "accepted", inject: func(*githubtest.Server) {}, want: wantErr{Class: sink.ClassNone}},
		{name: "503", inject: func(gh *githubtest.Server) { gh.FailNext(1, 503) }, want: wantErr{Class: sink.ClassRetryable, Message: "status 503"}},
		{name: "429", inject: func(gh *githubtest.Server) { gh.TooManyRequestsNext(1, 30*time.Second) },
			want: wantErr{Class: sink.ClassRetryAfter, StatusCode: 429, At: fixedNow.Add(30 * time.Second), Message: "secondary rate limit"}},
		{name: "primary rate limit", inject: func(gh *githubtest.Server) { gh.PrimaryRateLimitNext(1, reset) },
			want: wantErr{Class: sink.ClassRetryAfter, StatusCode: 403, At: reset, Message: "API rate limit exceeded"}},
		{name: "secondary rate limit with Retry-After", inject: func(gh *githubtest.Server) { gh.SecondaryRateLimitNext(1, 90*time.Second) },
			want: wantErr{Class: sink.ClassRetryAfter, StatusCode: 403, At: fixedNow.Add(90 * time.Second)}},
		{name: "secondary rate limit without headers", inject: func(gh *githubtest.Server) { gh.SecondaryRateLimitNext(1, 0) },
			want: wantErr{Class: sink.ClassRetryAfter, StatusCode: 403, At: fixedNow.Add(time.Minute)}},
		{name: "permission 403", inject: func(gh *githubtest.Server) {
			gh.InjectNext(1, githubtest.Fault{Status: 403, Message: "Resource not accessible by integration"})
		}, want: wantErr{Class: sink.ClassCredentials, StatusCode: 403, Message: "Resource not accessible by integration"}},
		{name: "unknown artifact", inject: func(gh *githubtest.Server) { gh.UnknownArtifact("", testRecord().Digest) },
			want: wantErr{Class: sink.ClassNotFound, Message: githubtest.UnknownArtifactMessage}},
		{name: "invalid digest", inject: func(*githubtest.Server) {}, change: func(r *record.Record) { r.Digest = "sha256:abc" },
			want: wantErr{Class: sink.ClassPermanent, StatusCode: 422, Message: "'properties/digest'"}},
		{name: "too many tags", inject: func(*githubtest.Server) {}, change: func(r *record.Record) {
			r.Tags = map[string]string{"a": "1", "b": "2", "c": "3", "d": "4", "e": "5", "f": "6"}
		}, want: wantErr{Class: sink.ClassPermanent, StatusCode: 422, Message: "'properties/tags'"}},
		// An owner/repo value (record.MetadataFrom sends the name only) breaks the documented pattern ^[A-Za-z0-9.\-_]+$ refuses.
		{name: "github_repository as owner/repo", inject: func(*githubtest.Server) {}, change: func(r *record.Record) { r.GitHubRepository = "octo-org/app" },
			want: wantErr{Class: sink.ClassPermanent, StatusCode: 422, Message: "'properties/github_repository'"}},
		{name: "github_repository as a name", inject: func(*githubtest.Server) {}, change: func(r *record.Record) { r.GitHubRepository = "app" },
			want: wantErr{Class: sink.ClassNone}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gh := newFake(t, githubtest.Options{Tokens: []string{secretToken}})
			tt.inject(gh)
			s, err := New(Config{BaseURL: gh.URL(), Org: gh.Org(), Token: secretToken, Now: func() time.Time { return fixedNow }})
			if err != nil {
				t.Fatal(err)
			}
			r := testRecord()
			if tt.change != nil {
				tt.change(&r)
			}
			checkErr(t, s.Post(t.Context(), r), tt.want)
			wantAccepted := 0
			if tt.want.Class == sink.ClassNone {
				wantAccepted = 1
			}
			if n := len(gh.Accepted()); n != wantAccepted {
				t.Errorf("accepted %d records, want %d", n, wantAccepted)
			}
		})
	}
}

func TestSlowFakeTimesOut(t *testing.T) {
	gh := newFake(t, githubtest.Options{Tokens: []string{secretToken}})
	gh.DelayNext(1, time.Minute)
	s, err := New(Config{BaseURL: gh.URL(), Org: gh.Org(), Token: secretToken, Timeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	err = s.Post(t.Context(), testRecord())
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Post = %v, want a deadline error", err)
	}
	checkErr(t, err, wantErr{Class: sink.ClassRetryable})
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := gh.WaitForCalls(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if len(gh.Accepted()) != 0 {
		t.Errorf("a request abandoned by the client was accepted")
	}
	// The delay was for one request only.
	if err := s.Post(t.Context(), testRecord()); err != nil {
		t.Fatalf("second Post: %v", err)
	}
}

// TestOrganizationAgainstFake: a wrong ORG, and a GitHub Enterprise Server BASE_URL without /api/v3, are told
// by the organization check as configuration errors naming ORG and BASE_URL; an unknown artifact stays a 404
// of the record, answered with the fake's own wording of it.
func TestOrganizationAgainstFake(t *testing.T) {
	if !UnknownArtifact(githubtest.UnknownArtifactMessage) {
		t.Fatalf("UnknownArtifact(%q) = false: the sink does not recognize the fake's unknown-artifact answer", githubtest.UnknownArtifactMessage)
	}
	gh := newFake(t, githubtest.Options{Tokens: []string{secretToken}, PathPrefix: "/api/v3"})
	gh.UnknownArtifact("", testRecord().Digest)
	web := strings.TrimSuffix(gh.URL(), "/api/v3")
	tests := []struct {
		name, baseURL, org string
		want               wantErr
		wantCheck          wantErr
	}{
		{name: "configured right: an unknown artifact is the record's 404", baseURL: gh.URL(), org: gh.Org(),
			want: wantErr{Class: sink.ClassNotFound, Message: githubtest.UnknownArtifactMessage}, wantCheck: wantErr{Class: sink.ClassNone}},
		{name: "wrong ORG", baseURL: gh.URL(), org: "octo-orgg",
			want:      wantErr{Class: sink.ClassRetryable, Misconfigured: true, Message: `organization "octo-orgg" not found at ` + gh.URL()},
			wantCheck: wantErr{Class: sink.ClassRetryable, Misconfigured: true, Message: `organization "octo-orgg" not found at ` + gh.URL()}},
		{name: "BASE_URL without /api/v3", baseURL: web, org: gh.Org(),
			want:      wantErr{Class: sink.ClassRetryable, Misconfigured: true, Message: "not found at " + web + " "},
			wantCheck: wantErr{Class: sink.ClassRetryable, Misconfigured: true, Message: "BASE_URL (https://HOST/api/v3"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := New(Config{BaseURL: tt.baseURL, Org: tt.org, Token: secretToken})
			if err != nil {
				t.Fatal(err)
			}
			checkErr(t, s.Post(t.Context(), testRecord()), tt.want)
			checkErr(t, s.CheckTarget(t.Context()), tt.wantCheck)
		})
	}
	if n := len(gh.Accepted()); n != 0 {
		t.Errorf("accepted %d records, want none", n)
	}
}
