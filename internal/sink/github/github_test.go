package github

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/deployment-tracker/deployment-tracker/internal/ghclient"
	"github.com/deployment-tracker/deployment-tracker/internal/githubtest"
	"github.com/deployment-tracker/deployment-tracker/internal/record"
	"github.com/deployment-tracker/deployment-tracker/internal/sink"
)

const secretToken = "ghp_s3cr3tT0k3nValue"

var fixedNow = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

func testRecord() record.Record {
	return record.Record{
		Name:                "ghcr.io/octo-org/app",
		Digest:              "sha256:1bb1e949e55dcefc6353e7b36c8897d2a107d8e8dca49d4e3c0ea8493fc0bc72",
		Version:             "1.2.3",
		Status:              record.StatusDeployed,
		LogicalEnvironment:  "production",
		PhysicalEnvironment: "eu-west-1",
		Cluster:             "moda-1",
		DeploymentName:      "default/app/app",
		Tags:                map[string]string{"team": "platform"},
		RuntimeRisks:        []string{"internet-exposed"},
	}
}

func TestNewValidation(t *testing.T) {
	keyFile := filepath.Join(t.TempDir(), "key.pem")
	_, pemKey, err := githubtest.GenerateAppKey()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pemKey, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		cfg     Config
		wantErr []string // substrings of the error; none: New succeeds
	}{
		{name: "token", cfg: Config{Org: "octo-org", Token: secretToken}},
		{name: "GHES base URL with trailing slash", cfg: Config{BaseURL: "https://ghes.example.com/api/v3/", Org: "octo-org", Token: secretToken}},
		{name: "app with key file", cfg: Config{Org: "octo-org", App: &AppConfig{AppID: 1, InstallationID: 2, PrivateKeyPath: keyFile}}},
		{name: "app with key bytes", cfg: Config{Org: "octo-org", App: &AppConfig{AppID: 1, InstallationID: 2, PrivateKey: pemKey}}},
		{name: "nothing", cfg: Config{}, wantErr: []string{"Org is required", "Token, TokenFile or App is required"}},
		{name: "both credentials", cfg: Config{Org: "o", Token: secretToken, App: &AppConfig{AppID: 1, InstallationID: 2, PrivateKey: pemKey}}, wantErr: []string{"set exactly one"}},
		{name: "relative base URL", cfg: Config{BaseURL: "api.github.com", Org: "o", Token: secretToken}, wantErr: []string{"BaseURL"}},
		{name: "ftp base URL", cfg: Config{BaseURL: "ftp://example.com", Org: "o", Token: secretToken}, wantErr: []string{"BaseURL"}},
		{name: "org with a slash", cfg: Config{Org: "octo/../x", Token: secretToken}, wantErr: []string{"Org"}},
		{name: "token with a newline", cfg: Config{Org: "o", Token: secretToken + "\n"}, wantErr: []string{"Token contains whitespace"}},
		{name: "negative timeout", cfg: Config{Org: "o", Token: secretToken, Timeout: -1}, wantErr: []string{"Timeout"}},
		{name: "app without ids", cfg: Config{Org: "o", App: &AppConfig{PrivateKey: pemKey}}, wantErr: []string{"AppID", "InstallationID"}},
		{name: "app with two keys", cfg: Config{Org: "o", App: &AppConfig{AppID: 1, InstallationID: 2, PrivateKey: pemKey, PrivateKeyPath: keyFile}}, wantErr: []string{"exactly one of PrivateKeyPath"}},
		{name: "app with no key", cfg: Config{Org: "o", App: &AppConfig{AppID: 1, InstallationID: 2}}, wantErr: []string{"exactly one of PrivateKeyPath"}},
		{name: "app key file missing", cfg: Config{Org: "o", App: &AppConfig{AppID: 1, InstallationID: 2, PrivateKeyPath: keyFile + ".missing"}}, wantErr: []string{"PrivateKeyPath"}},
		{name: "app key not PEM", cfg: Config{Org: "o", App: &AppConfig{AppID: 1, InstallationID: 2, PrivateKey: []byte("not a key")}}, wantErr: []string{"private key"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := New(tt.cfg)
			if len(tt.wantErr) == 0 {
				if err != nil || s == nil {
					t.Fatalf("New: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("New succeeded, want an error")
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if strings.Contains(err.Error(), secretToken) || strings.Contains(err.Error(), "PRIVATE KEY") {
				t.Errorf("error %q leaks a secret", err)
			}
		})
	}
}

func TestPostRequest(t *testing.T) {
	type seen struct {
		Method, Path, Accept, APIVersion, UserAgent, Authorization, ContentType string
		Record                                                                  record.Record
	}
	var got seen
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		dec := json.NewDecoder(r.Body)
		dec.DisallowUnknownFields()
		if err := dec.Decode(&got.Record); err != nil {
			t.Errorf("decode body: %v", err)
		}
		got.Method, got.Path = r.Method, r.URL.Path
		got.Accept, got.APIVersion = r.Header.Get("Accept"), r.Header.Get("X-GitHub-Api-Version")
		got.UserAgent, got.Authorization = r.Header.Get("User-Agent"), r.Header.Get("Authorization")
		got.ContentType = r.Header.Get("Content-Type")
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, `{"total_count":1}`)
	}))
	defer srv.Close()

	s, err := New(Config{BaseURL: srv.URL + "/api/v3", Org: "octo-org", Token: secretToken, UserAgent: "deployment-tracker/test"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Post(t.Context(), testRecord()); err != nil {
		t.Fatalf("Post: %v", err)
	}
	want := seen{
		Method: http.MethodPost, Path: "/api/v3/orgs/octo-org/artifacts/metadata/deployment-record",
		Accept: "application/vnd.github.v3+json", APIVersion: "2022-11-28", UserAgent: "deployment-tracker/test",
		Authorization: "Bearer " + secretToken, ContentType: "application/json", Record: testRecord(),
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("request (-want +got):\n%s", diff)
	}
}

// wantErr describes the expected outcome of Post.
type wantErr struct {
	Class      sink.Class
	StatusCode int       // of PermanentError, CredentialsError and RetryAfterError
	At         time.Time // of RetryAfterError
	Message    string    // substring of the classified message
	// Misconfigured: an *OrganizationError (the organization or BASE_URL is wrong, not the record).
	Misconfigured bool
}

// describe extracts the comparable parts of err.
func describe(err error) wantErr {
	var d wantErr
	d.Class = sink.Classify(err)
	var oe *OrganizationError
	d.Misconfigured = errors.As(err, &oe) && oe.Misconfigured()
	var ra *sink.RetryAfterError
	var pe *sink.PermanentError
	var nf *sink.NotFoundError
	var ce *sink.CredentialsError
	switch {
	case errors.As(err, &ce):
		d.StatusCode, d.Message = ce.StatusCode, ce.Message
	case errors.As(err, &ra):
		d.StatusCode, d.At, d.Message = ra.StatusCode, ra.At, ra.Message
	case errors.As(err, &pe):
		d.StatusCode, d.Message = pe.StatusCode, pe.Message
	case errors.As(err, &nf):
		d.Message = nf.Message
	case err != nil:
		d.Message = err.Error()
	}
	return d
}

func checkErr(t *testing.T, err error, want wantErr) {
	t.Helper()
	got := describe(err)
	if !strings.Contains(got.Message, want.Message) {
		t.Errorf("message %q does not contain %q", got.Message, want.Message)
	}
	got.Message = want.Message
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("outcome (-want +got):\n%s\nerror: %v", diff, err)
	}
	if err != nil && strings.Contains(err.Error(), secretToken) {
		t.Errorf("error %q contains the token", err)
	}
}

func TestPostClassification(t *testing.T) {
	reset := fixedNow.Add(17 * time.Minute).Truncate(time.Second)
	type reply struct {
		status int
		header map[string]string
		body   string
	}
	routine := map[string]string{"X-Ratelimit-Remaining": "4999", "X-Ratelimit-Reset": strconv.FormatInt(fixedNow.Add(time.Hour).Unix(), 10)}
	tests := []struct {
		name  string
		reply reply
		want  wantErr
	}{
		{name: "200", reply: reply{status: 200, body: `{"total_count":1}`}, want: wantErr{Class: sink.ClassNone}},
		{name: "201", reply: reply{status: 201}, want: wantErr{Class: sink.ClassNone}},
		{name: "204", reply: reply{status: 204}, want: wantErr{Class: sink.ClassNone}},
		{name: "400", reply: reply{status: 400, body: `{"message":"Problems parsing JSON"}`},
			want: wantErr{Class: sink.ClassPermanent, StatusCode: 400, Message: "Problems parsing JSON"}},
		{name: "401", reply: reply{status: 401, body: `{"message":"Bad credentials"}`},
			want: wantErr{Class: sink.ClassCredentials, StatusCode: 401, Message: "Bad credentials"}},
		{name: "403 permission with routine rate headers", reply: reply{status: 403, header: routine, body: `{"message":"Resource not accessible by personal access token"}`},
			want: wantErr{Class: sink.ClassCredentials, StatusCode: 403, Message: "Resource not accessible"}},
		{name: "403 SSO", reply: reply{status: 403, body: `{"message":"Resource protected by organization SAML enforcement. You must grant your Personal Access token access to this organization."}`},
			want: wantErr{Class: sink.ClassCredentials, StatusCode: 403, Message: "SAML"}},
		{name: "403 primary rate limit", reply: reply{status: 403, header: map[string]string{"X-Ratelimit-Remaining": "0", "X-Ratelimit-Reset": strconv.FormatInt(reset.Unix(), 10)}, body: `{"message":"API rate limit exceeded for user ID 1."}`},
			want: wantErr{Class: sink.ClassRetryAfter, StatusCode: 403, At: reset, Message: "API rate limit exceeded"}},
		{name: "403 secondary with Retry-After", reply: reply{status: 403, header: map[string]string{"Retry-After": "30"}, body: `{"message":"You have exceeded a secondary rate limit."}`},
			want: wantErr{Class: sink.ClassRetryAfter, StatusCode: 403, At: fixedNow.Add(30 * time.Second), Message: "secondary rate limit"}},
		{name: "403 secondary without headers waits a minute", reply: reply{status: 403, body: `{"message":"You have exceeded a secondary rate limit."}`},
			want: wantErr{Class: sink.ClassRetryAfter, StatusCode: 403, At: fixedNow.Add(time.Minute)}},
		{name: "403 secondary with routine headers waits a minute", reply: reply{status: 403, header: routine, body: `{"message":"You have exceeded a secondary rate limit."}`},
			want: wantErr{Class: sink.ClassRetryAfter, StatusCode: 403, At: fixedNow.Add(time.Minute)}},
		{name: "403 told by its documentation link", reply: reply{status: 403, body: `{"message":"slow down","documentation_url":"https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits"}`},
			want: wantErr{Class: sink.ClassRetryAfter, StatusCode: 403, At: fixedNow.Add(time.Minute)}},
		{name: "403 with a huge Retry-After is capped", reply: reply{status: 403, header: map[string]string{"Retry-After": "99999999999999"}},
			want: wantErr{Class: sink.ClassRetryAfter, StatusCode: 403, At: fixedNow.Add(24 * time.Hour)}},
		{name: "429 Retry-After seconds", reply: reply{status: 429, header: map[string]string{"Retry-After": "120"}},
			want: wantErr{Class: sink.ClassRetryAfter, StatusCode: 429, At: fixedNow.Add(2 * time.Minute), Message: "Too Many Requests"}},
		{name: "429 Retry-After HTTP date", reply: reply{status: 429, header: map[string]string{"Retry-After": fixedNow.Add(5 * time.Minute).Format(http.TimeFormat)}},
			want: wantErr{Class: sink.ClassRetryAfter, StatusCode: 429, At: fixedNow.Add(5 * time.Minute)}},
		{name: "429 Retry-After 0", reply: reply{status: 429, header: map[string]string{"Retry-After": "0"}},
			want: wantErr{Class: sink.ClassRetryAfter, StatusCode: 429, At: fixedNow}},
		{name: "429 reset in the past", reply: reply{status: 429, header: map[string]string{"X-Ratelimit-Remaining": "0", "X-Ratelimit-Reset": strconv.FormatInt(fixedNow.Add(-time.Hour).Unix(), 10)}},
			want: wantErr{Class: sink.ClassRetryAfter, StatusCode: 429, At: fixedNow}},
		{name: "429 without headers waits a minute", reply: reply{status: 429},
			want: wantErr{Class: sink.ClassRetryAfter, StatusCode: 429, At: fixedNow.Add(time.Minute)}},
		{name: "429 unparseable Retry-After waits a minute", reply: reply{status: 429, header: map[string]string{"Retry-After": "soon"}},
			want: wantErr{Class: sink.ClassRetryAfter, StatusCode: 429, At: fixedNow.Add(time.Minute)}},
		{name: "404", reply: reply{status: 404, body: `{"message":"no artifacts found"}`},
			want: wantErr{Class: sink.ClassNotFound, Message: "no artifacts found"}},
		// Not the unknown-artifact answer: the organization is checked, and this server answers 404 there too.
		{name: "404 without body", reply: reply{status: 404},
			want: wantErr{Class: sink.ClassRetryable, Misconfigured: true, Message: `organization "octo-org" not found`}},
		{name: "408", reply: reply{status: 408}, want: wantErr{Class: sink.ClassRetryable, Message: "status 408"}},
		{name: "409", reply: reply{status: 409, body: `{"message":"Conflict"}`}, want: wantErr{Class: sink.ClassPermanent, StatusCode: 409, Message: "Conflict"}},
		{name: "422 with errors", reply: reply{status: 422, body: `{"message":"Invalid request.","errors":["For 'properties/digest', \"x\" is too short.",{"field":"name"}]}`},
			want: wantErr{Class: sink.ClassPermanent, StatusCode: 422, Message: `Invalid request.; For 'properties/digest', "x" is too short.; name`}},
		{name: "500", reply: reply{status: 500, body: `{"message":"Server Error"}`}, want: wantErr{Class: sink.ClassRetryable, Message: "status 500: Server Error"}},
		{name: "502 HTML", reply: reply{status: 502, body: "<html>bad gateway</html>"}, want: wantErr{Class: sink.ClassRetryable, Message: "<html>bad gateway</html>"}},
		{name: "503", reply: reply{status: 503}, want: wantErr{Class: sink.ClassRetryable, Message: "Service Unavailable"}},
		{name: "server echoes the token", reply: reply{status: 401, body: `{"message":"Bad credentials: Bearer ` + secretToken + `"}`},
			want: wantErr{Class: sink.ClassCredentials, StatusCode: 401, Message: "Bad credentials: Bearer [REDACTED]"}},
		{name: "huge message is bounded", reply: reply{status: 400, body: `{"message":"` + strings.Repeat("x", 32<<10) + `"}`},
			want: wantErr{Class: sink.ClassPermanent, StatusCode: 400, Message: strings.Repeat("x", ghclient.MaxMessage) + "…"}},
		{name: "huge body is bounded", reply: reply{status: 500, body: strings.Repeat("y", 8<<20)},
			want: wantErr{Class: sink.ClassRetryable, Message: strings.Repeat("y", ghclient.MaxMessage) + "…"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.Copy(io.Discard, r.Body)
				for k, v := range tt.reply.header {
					w.Header().Set(k, v)
				}
				w.WriteHeader(tt.reply.status)
				_, _ = io.WriteString(w, tt.reply.body)
			}))
			defer srv.Close()
			s, err := New(Config{BaseURL: srv.URL, Org: "octo-org", Token: secretToken, Now: func() time.Time { return fixedNow }})
			if err != nil {
				t.Fatal(err)
			}
			err = s.Post(t.Context(), testRecord())
			checkErr(t, err, tt.want)
			if err != nil && len(err.Error()) > 2*ghclient.MaxMessage+200 {
				t.Errorf("error is %d bytes long, want it bounded", len(err.Error()))
			}
		})
	}
}

func TestPostTransportErrors(t *testing.T) {
	t.Run("connection refused", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		url := srv.URL
		srv.Close()
		s, err := New(Config{BaseURL: url, Org: "octo-org", Token: secretToken})
		if err != nil {
			t.Fatal(err)
		}
		checkErr(t, s.Post(t.Context(), testRecord()), wantErr{Class: sink.ClassRetryable, Message: "connect"})
	})
	t.Run("timeout", func(t *testing.T) {
		release := make(chan struct{})
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}))
		defer srv.Close()
		defer close(release)
		s, err := New(Config{BaseURL: srv.URL, Org: "octo-org", Token: secretToken, Timeout: 50 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		err = s.Post(t.Context(), testRecord())
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("error %v is not a deadline", err)
		}
		checkErr(t, err, wantErr{Class: sink.ClassRetryable})
	})
	t.Run("cancelled by the caller", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
		defer srv.Close()
		s, err := New(Config{BaseURL: srv.URL, Org: "octo-org", Token: secretToken})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if err := s.Post(ctx, testRecord()); !errors.Is(err, context.Canceled) {
			t.Errorf("error %v is not context.Canceled", err)
		}
	})
}

func TestPostConcurrent(t *testing.T) {
	gh, err := githubtest.New(githubtest.Options{Tokens: []string{secretToken}})
	if err != nil {
		t.Fatal(err)
	}
	defer gh.Close()
	s, err := New(Config{BaseURL: gh.URL(), Org: gh.Org(), Token: secretToken})
	if err != nil {
		t.Fatal(err)
	}
	const n = 20
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := testRecord()
			r.DeploymentName = "default/app-" + strconv.Itoa(i) + "/app"
			if err := s.Post(t.Context(), r); err != nil {
				t.Errorf("Post: %v", err)
			}
		}()
	}
	wg.Wait()
	if got := len(gh.Current()); got != n {
		t.Errorf("current records = %d, want %d", got, n)
	}
}

// TestNotFoundChecksOrganization answers the record with a 404 that is not the unknown-artifact answer, and
// GET /orgs/{org} in each of the ways it can answer: only a missing organization (or a BASE_URL that is not the
// API) is a configuration error; an organization that exists leaves the 404 to the record; an answer that
// tells nothing keeps its own class.
func TestNotFoundChecksOrganization(t *testing.T) {
	type reply struct {
		status int
		body   string
	}
	orgJSON := `{"login":"octo-org","id":1,"type":"Organization"}`
	tests := []struct {
		name      string
		record    reply
		org       reply
		want      wantErr
		wantCheck bool // GET /orgs/octo-org was asked
	}{
		{name: "unknown artifact: no check", record: reply{404, `{"message":"no artifacts found"}`},
			want: wantErr{Class: sink.ClassNotFound, Message: "no artifacts found"}},
		{name: "unknown artifact, worded otherwise in case", record: reply{404, `{"message":"No artifacts found for digest"}`},
			want: wantErr{Class: sink.ClassNotFound, Message: "No artifacts found"}},
		{name: "generic 404, organization exists: the record's", record: reply{404, `{"message":"Not Found"}`}, org: reply{200, orgJSON},
			want: wantErr{Class: sink.ClassNotFound, Message: "Not Found"}, wantCheck: true},
		{name: "generic 404, organization missing", record: reply{404, `{"message":"Not Found"}`}, org: reply{404, `{"message":"Not Found"}`},
			want: wantErr{Class: sink.ClassRetryable, Misconfigured: true, Message: `organization "octo-org" not found at`}, wantCheck: true},
		{name: "HTML 404 (a web server, not the API), the organization page HTML", record: reply{404, "<html>Page not found</html>"}, org: reply{200, "<html>octo-org</html>"},
			want: wantErr{Class: sink.ClassRetryable, Misconfigured: true, Message: "not GitHub's JSON"}, wantCheck: true},
		{name: "generic 404, an answer that is not an organization", record: reply{404, ""}, org: reply{200, `{}`},
			want: wantErr{Class: sink.ClassRetryable, Misconfigured: true, Message: "not an organization"}, wantCheck: true},
		{name: "generic 404, organization check refused: the credentials pause", record: reply{404, ""}, org: reply{401, `{"message":"Bad credentials"}`},
			want: wantErr{Class: sink.ClassCredentials, StatusCode: 401, Message: "Bad credentials"}, wantCheck: true},
		{name: "generic 404, organization check fails: retried", record: reply{404, ""}, org: reply{503, ""},
			want: wantErr{Class: sink.ClassRetryable, Message: "could not be checked"}, wantCheck: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var checked bool
			var mu sync.Mutex
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.Copy(io.Discard, r.Body)
				rep := tt.record
				if r.Method == http.MethodGet && r.URL.Path == "/orgs/octo-org" {
					mu.Lock()
					checked = true
					mu.Unlock()
					rep = tt.org
				}
				w.WriteHeader(rep.status)
				_, _ = io.WriteString(w, rep.body)
			}))
			defer srv.Close()
			s, err := New(Config{BaseURL: srv.URL, Org: "octo-org", Token: secretToken})
			if err != nil {
				t.Fatal(err)
			}
			checkErr(t, s.Post(t.Context(), testRecord()), tt.want)
			mu.Lock()
			defer mu.Unlock()
			if checked != tt.wantCheck {
				t.Errorf("organization checked: %t, want %t", checked, tt.wantCheck)
			}
		})
	}
}

// TestCheckTarget checks the organization against each answer GET /orgs/{org} can give.
func TestCheckTarget(t *testing.T) {
	tests := []struct {
		name   string
		status int
		body   string
		want   wantErr
	}{
		{name: "found", status: 200, body: `{"login":"octo-org","id":1}`, want: wantErr{Class: sink.ClassNone}},
		{name: "not found", status: 404, body: `{"message":"Not Found"}`, want: wantErr{Class: sink.ClassRetryable, Misconfigured: true, Message: "404 Not Found"}},
		{name: "HTML", status: 200, body: "<!DOCTYPE html><html></html>", want: wantErr{Class: sink.ClassRetryable, Misconfigured: true, Message: "not GitHub's JSON"}},
		{name: "another client error", status: 400, body: `{"message":"Bad Request"}`, want: wantErr{Class: sink.ClassRetryable, Misconfigured: true, Message: "400 Bad Request"}},
		{name: "credentials refused", status: 401, body: `{"message":"Bad credentials"}`, want: wantErr{Class: sink.ClassCredentials, StatusCode: 401, Message: "Bad credentials"}},
		{name: "server error", status: 502, body: "bad gateway", want: wantErr{Class: sink.ClassRetryable, Message: "bad gateway"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Method != http.MethodGet || r.URL.Path != "/orgs/octo-org" {
					t.Errorf("request %s %s, want GET /orgs/octo-org", r.Method, r.URL.Path)
				}
				w.WriteHeader(tt.status)
				_, _ = io.WriteString(w, tt.body)
			}))
			defer srv.Close()
			s, err := New(Config{BaseURL: srv.URL, Org: "octo-org", Token: secretToken})
			if err != nil {
				t.Fatal(err)
			}
			err = s.CheckTarget(t.Context())
			checkErr(t, err, tt.want)
			if tt.want.Misconfigured && !strings.Contains(err.Error(), srv.URL) {
				t.Errorf("error %q does not name BASE_URL %s", err, srv.URL)
			}
		})
	}
}
