package githubtest

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	jwt "github.com/golang-jwt/jwt/v4"
	"github.com/google/go-cmp/cmp"

	"github.com/deployment-tracker/deployment-tracker/internal/record"
)

const (
	testPAT     = "ghp_testtoken"
	testDigest  = "sha256:1bb1e949e55dcefc6353e7b36c8897d2a107d8e8dca49d4e3c0ea8493fc0bc72"
	testDigest2 = "sha256:2cc1e949e55dcefc6353e7b36c8897d2a107d8e8dca49d4e3c0ea8493fc0bc72"
	appID       = 42
	installID   = 4242
)

// validBody is a record body that satisfies the schema, as a map so that tests can break one property.
func validBody() map[string]any {
	return map[string]any{
		"name":                 "ghcr.io/octo-org/app",
		"digest":               testDigest,
		"version":              "1.2.3",
		"status":               "deployed",
		"logical_environment":  "production",
		"physical_environment": "eu-west-1",
		"cluster":              "moda-1",
		"deployment_name":      "default/app/app",
		"tags":                 map[string]any{"team": "platform"},
		"runtime_risks":        []any{"internet-exposed", "sensitive-data"},
		"github_repository":    "app",
	}
}

func newServer(t *testing.T, opts Options) *Server {
	t.Helper()
	if opts.Tokens == nil {
		opts.Tokens = []string{testPAT}
	}
	s, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

type response struct {
	status int
	header http.Header
	body   []byte
}

// post sends body (a map, or raw bytes) to the record endpoint with the headers a correct client sends, then
// lets mutate change the request.
func post(t *testing.T, s *Server, body any, mutate func(*http.Request)) response {
	t.Helper()
	var b []byte
	switch v := body.(type) {
	case []byte:
		b = v
	default:
		var err error
		if b, err = json.Marshal(v); err != nil {
			t.Fatal(err)
		}
	}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, s.URL()+"/orgs/"+s.Org()+"/artifacts/metadata/deployment-record", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", MediaType)
	req.Header.Set("X-GitHub-Api-Version", APIVersion)
	req.Header.Set("User-Agent", "githubtest-test")
	req.Header.Set("Authorization", "Bearer "+testPAT)
	req.Header.Set("Content-Type", "application/json")
	if mutate != nil {
		mutate(req)
	}
	resp, err := s.Client().Do(req)
	if err != nil {
		t.Fatalf("POST: %v", err)
	}
	defer resp.Body.Close()
	rb, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: rb}
}

func decodeError(t *testing.T, b []byte) errorBody {
	t.Helper()
	var e errorBody
	if err := json.Unmarshal(b, &e); err != nil {
		t.Fatalf("error body %q: %v", b, err)
	}
	return e
}

func TestRecordRequestChecks(t *testing.T) {
	tests := []struct {
		name        string
		mutate      func(*http.Request)
		wantStatus  int
		wantMessage string
	}{
		{name: "valid with Bearer", wantStatus: http.StatusOK},
		{name: "valid with token scheme", mutate: func(r *http.Request) { r.Header.Set("Authorization", "token "+testPAT) }, wantStatus: http.StatusOK},
		{name: "no credentials", mutate: func(r *http.Request) { r.Header.Del("Authorization") }, wantStatus: http.StatusUnauthorized, wantMessage: "Requires authentication"},
		{name: "wrong token", mutate: func(r *http.Request) { r.Header.Set("Authorization", "Bearer nope") }, wantStatus: http.StatusUnauthorized, wantMessage: "Bad credentials"},
		{name: "unknown scheme", mutate: func(r *http.Request) { r.Header.Set("Authorization", "Basic "+testPAT) }, wantStatus: http.StatusUnauthorized, wantMessage: "Bad credentials"},
		{name: "no User-Agent", mutate: func(r *http.Request) { r.Header.Set("User-Agent", "") }, wantStatus: http.StatusForbidden},
		{name: "wrong Accept", mutate: func(r *http.Request) { r.Header.Set("Accept", "application/json") }, wantStatus: http.StatusUnsupportedMediaType},
		{name: "Accept in a list", mutate: func(r *http.Request) { r.Header.Set("Accept", "text/plain, application/vnd.github+json") }, wantStatus: http.StatusOK},
		{name: "no API version", mutate: func(r *http.Request) { r.Header.Del("X-GitHub-Api-Version") }, wantStatus: http.StatusBadRequest},
		{name: "wrong API version", mutate: func(r *http.Request) { r.Header.Set("X-GitHub-Api-Version", "2026-03-10") }, wantStatus: http.StatusBadRequest},
		{name: "org is case-insensitive", mutate: func(r *http.Request) { r.URL.Path = strings.Replace(r.URL.Path, "octo-org", "Octo-Org", 1) }, wantStatus: http.StatusOK},
		{name: "other org", mutate: func(r *http.Request) { r.URL.Path = strings.Replace(r.URL.Path, "octo-org", "other", 1) }, wantStatus: http.StatusNotFound, wantMessage: "Not Found"},
		{name: "GET", mutate: func(r *http.Request) { r.Method = http.MethodGet }, wantStatus: http.StatusNotFound},
		{name: "unknown path", mutate: func(r *http.Request) { r.URL.Path += "s" }, wantStatus: http.StatusNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newServer(t, Options{})
			got := post(t, s, validBody(), tt.mutate)
			if got.status != tt.wantStatus {
				t.Fatalf("status = %d, want %d; body %s", got.status, tt.wantStatus, got.body)
			}
			if tt.wantMessage != "" {
				if e := decodeError(t, got.body); e.Message != tt.wantMessage {
					t.Errorf("message = %q, want %q", e.Message, tt.wantMessage)
				}
			}
			wantAccepted := 0
			if tt.wantStatus == http.StatusOK {
				wantAccepted = 1
			}
			if n := len(s.Accepted()); n != wantAccepted {
				t.Errorf("accepted %d records, want %d", n, wantAccepted)
			}
		})
	}
}

func TestRecordSchema(t *testing.T) {
	long := func(n int) string { return strings.Repeat("é", n) } // multi-byte: lengths count characters
	tests := []struct {
		name      string
		change    func(b map[string]any)
		raw       []byte // sent instead of the body when set
		wantCode  int
		wantError string // a substring of one of the errors
	}{
		{name: "all properties", change: func(map[string]any) {}, wantCode: 200},
		{name: "required properties only", change: func(b map[string]any) {
			for _, k := range []string{"version", "physical_environment", "cluster", "tags", "runtime_risks", "github_repository"} {
				delete(b, k)
			}
		}, wantCode: 200},
		{name: "empty optional environments", change: func(b map[string]any) { b["physical_environment"], b["cluster"] = "", "" }, wantCode: 200},
		{name: "decommissioned", change: func(b map[string]any) { b["status"] = "decommissioned" }, wantCode: 200},
		{name: "return_records false", change: func(b map[string]any) { b["return_records"] = false }, wantCode: 200},
		{name: "limits reached", change: func(b map[string]any) {
			b["name"], b["version"], b["logical_environment"] = long(256), long(100), long(128)
			b["physical_environment"], b["cluster"], b["deployment_name"] = long(128), long(128), long(256)
			b["github_repository"] = strings.Repeat("a", 100)
			b["tags"] = map[string]any{"a": "1", "b": "2", "c": "3", "d": "4", "e": "5"}
			b["runtime_risks"] = []any{"critical-resource", "internet-exposed", "lateral-movement", "sensitive-data"}
		}, wantCode: 200},

		{name: "malformed JSON", raw: []byte(`{"name":`), wantCode: 400},
		{name: "not an object", raw: []byte(`["name"]`), wantCode: 400},
		{name: "trailing data", raw: []byte(`{} {}`), wantCode: 400},
		{name: "unknown property", change: func(b map[string]any) { b["deployment"] = "x" }, wantCode: 422, wantError: "'properties/deployment'"},
		{name: "name missing", change: func(b map[string]any) { delete(b, "name") }, wantCode: 422, wantError: `"name" wasn't supplied`},
		{name: "digest missing", change: func(b map[string]any) { delete(b, "digest") }, wantCode: 422, wantError: `"digest" wasn't supplied`},
		{name: "status missing", change: func(b map[string]any) { delete(b, "status") }, wantCode: 422, wantError: `"status" wasn't supplied`},
		{name: "logical_environment missing", change: func(b map[string]any) { delete(b, "logical_environment") }, wantCode: 422, wantError: `"logical_environment" wasn't supplied`},
		{name: "deployment_name missing", change: func(b map[string]any) { delete(b, "deployment_name") }, wantCode: 422, wantError: `"deployment_name" wasn't supplied`},
		{name: "name empty", change: func(b map[string]any) { b["name"] = "" }, wantCode: 422, wantError: "'properties/name', \"\" is too short"},
		{name: "name too long", change: func(b map[string]any) { b["name"] = long(257) }, wantCode: 422, wantError: "'properties/name'"},
		{name: "name not a string", change: func(b map[string]any) { b["name"] = 7 }, wantCode: 422, wantError: "'properties/name', 7 is not a string"},
		{name: "name null", change: func(b map[string]any) { b["name"] = nil }, wantCode: 422, wantError: "'properties/name', null is not a string"},
		{name: "digest uppercase hex", change: func(b map[string]any) {
			b["digest"] = testDigest[:7] + strings.ToUpper(testDigest[7:])
		}, wantCode: 422, wantError: "'properties/digest'"},
		{name: "digest sha512", change: func(b map[string]any) { b["digest"] = "sha512:" + strings.Repeat("a", 128) }, wantCode: 422, wantError: "'properties/digest'"},
		{name: "digest short", change: func(b map[string]any) { b["digest"] = testDigest[:70] }, wantCode: 422, wantError: "too short (minimum is 71"},
		{name: "version empty", change: func(b map[string]any) { b["version"] = "" }, wantCode: 422, wantError: "'properties/version'"},
		{name: "version too long", change: func(b map[string]any) { b["version"] = long(101) }, wantCode: 422, wantError: "'properties/version'"},
		{name: "status unknown", change: func(b map[string]any) { b["status"] = "running" }, wantCode: 422, wantError: "'properties/status'"},
		{name: "logical_environment empty", change: func(b map[string]any) { b["logical_environment"] = "" }, wantCode: 422, wantError: "'properties/logical_environment'"},
		{name: "logical_environment too long", change: func(b map[string]any) { b["logical_environment"] = long(129) }, wantCode: 422, wantError: "'properties/logical_environment'"},
		{name: "physical_environment too long", change: func(b map[string]any) { b["physical_environment"] = long(129) }, wantCode: 422, wantError: "'properties/physical_environment'"},
		{name: "cluster too long", change: func(b map[string]any) { b["cluster"] = long(129) }, wantCode: 422, wantError: "'properties/cluster'"},
		{name: "deployment_name too long", change: func(b map[string]any) { b["deployment_name"] = long(257) }, wantCode: 422, wantError: "'properties/deployment_name'"},
		{name: "six tags", change: func(b map[string]any) {
			b["tags"] = map[string]any{"a": "1", "b": "2", "c": "3", "d": "4", "e": "5", "f": "6"}
		}, wantCode: 422, wantError: "'properties/tags', 6 properties"},
		{name: "tag value not a string", change: func(b map[string]any) { b["tags"] = map[string]any{"a": 1} }, wantCode: 422, wantError: "'properties/tags'"},
		{name: "tags not an object", change: func(b map[string]any) { b["tags"] = []any{"a"} }, wantCode: 422, wantError: "is not an object"},
		{name: "unknown runtime risk", change: func(b map[string]any) { b["runtime_risks"] = []any{"exposed"} }, wantCode: 422, wantError: "'properties/runtime_risks'"},
		{name: "duplicate runtime risk", change: func(b map[string]any) { b["runtime_risks"] = []any{"sensitive-data", "sensitive-data"} }, wantCode: 422, wantError: "more than once"},
		{name: "five runtime risks", change: func(b map[string]any) {
			b["runtime_risks"] = []any{"critical-resource", "internet-exposed", "lateral-movement", "sensitive-data", "critical-resource"}
		}, wantCode: 422, wantError: "5 items"},
		{name: "runtime risk not a string", change: func(b map[string]any) { b["runtime_risks"] = []any{1} }, wantCode: 422, wantError: "is not a string"},
		{name: "github_repository owner/repo", change: func(b map[string]any) { b["github_repository"] = "octo-org/app" }, wantCode: 422, wantError: "'properties/github_repository'"},
		{name: "github_repository empty", change: func(b map[string]any) { b["github_repository"] = "" }, wantCode: 422, wantError: "'properties/github_repository'"},
		{name: "github_repository too long", change: func(b map[string]any) { b["github_repository"] = strings.Repeat("a", 101) }, wantCode: 422, wantError: "'properties/github_repository'"},
		{name: "return_records not a boolean", change: func(b map[string]any) { b["return_records"] = "yes" }, wantCode: 422, wantError: "is not a boolean"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newServer(t, Options{})
			var body any = tt.raw
			if tt.raw == nil {
				b := validBody()
				tt.change(b)
				body = b
			}
			got := post(t, s, body, nil)
			if got.status != tt.wantCode {
				t.Fatalf("status = %d, want %d; body %s", got.status, tt.wantCode, got.body)
			}
			if got.status == http.StatusOK {
				if n := len(s.Accepted()); n != 1 {
					t.Errorf("accepted %d records, want 1", n)
				}
				return
			}
			if n := len(s.Accepted()); n != 0 {
				t.Errorf("accepted %d records, want 0", n)
			}
			e := decodeError(t, got.body)
			if e.DocumentationURL != docsURL {
				t.Errorf("documentation_url = %q, want %q", e.DocumentationURL, docsURL)
			}
			if tt.wantError == "" {
				return
			}
			if !strings.Contains(strings.Join(e.Errors, "\n"), tt.wantError) || !strings.Contains(e.Message, tt.wantError) {
				t.Errorf("errors %q, message %q: want one containing %q", e.Errors, e.Message, tt.wantError)
			}
		})
	}
}

func TestRecordUpsert(t *testing.T) {
	s := newServer(t, Options{})
	first := validBody()
	second := validBody()
	second["digest"], second["version"] = testDigest2, "1.2.4"
	other := validBody()
	other["deployment_name"] = "default/other/other"
	undeploy := validBody()
	undeploy["digest"], undeploy["version"], undeploy["status"] = testDigest2, "1.2.4", "decommissioned"
	undeploy["return_records"] = false

	var ids []int64
	for i, b := range []map[string]any{first, second, other, undeploy} {
		got := post(t, s, b, nil)
		if got.status != http.StatusOK {
			t.Fatalf("post %d: status %d: %s", i, got.status, got.body)
		}
		var resp recordResponse
		if err := json.Unmarshal(got.body, &resp); err != nil {
			t.Fatal(err)
		}
		if resp.TotalCount != 1 {
			t.Errorf("post %d: total_count = %d, want 1", i, resp.TotalCount)
		}
		for _, r := range resp.DeploymentRecords {
			ids = append(ids, r.ID)
		}
	}
	if diff := cmp.Diff([]int64{1, 1, 2}, ids); diff != "" {
		t.Errorf("returned record ids (-want +got):\n%s", diff)
	}

	rec := func(b map[string]any) record.Record {
		t.Helper()
		var r record.Record
		raw, _ := json.Marshal(b)
		if err := json.Unmarshal(raw, &r); err != nil {
			t.Fatal(err)
		}
		return r
	}
	wantLog := []record.Record{rec(first), rec(second), rec(other), rec(undeploy)}
	if diff := cmp.Diff(wantLog, s.Accepted()); diff != "" {
		t.Errorf("Accepted (-want +got):\n%s", diff)
	}
	wantCurrent := map[record.Key]record.Record{}
	for _, r := range []record.Record{rec(undeploy), rec(other)} {
		wantCurrent[r.Key()] = r
	}
	if diff := cmp.Diff(wantCurrent, s.Current()); diff != "" {
		t.Errorf("Current (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[int]int{200: 4}, s.StatusCounts()); diff != "" {
		t.Errorf("StatusCounts (-want +got):\n%s", diff)
	}
}

func TestRecordBodyLimit(t *testing.T) {
	s := newServer(t, Options{MaxBodyBytes: 512})
	b := validBody()
	b["tags"] = map[string]any{"big": strings.Repeat("x", 1024)}
	if got := post(t, s, b, nil); got.status != http.StatusRequestEntityTooLarge {
		t.Fatalf("status = %d, want 413", got.status)
	}
}

// clock is a settable clock for the server.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func signJWT(t *testing.T, key any, method jwt.SigningMethod, iss string, iat, exp time.Time) string {
	t.Helper()
	claims := jwt.RegisteredClaims{Issuer: iss, IssuedAt: jwt.NewNumericDate(iat), ExpiresAt: jwt.NewNumericDate(exp)}
	s, err := jwt.NewWithClaims(method, claims).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// requestToken asks for an installation token with the given Authorization header.
func requestToken(t *testing.T, s *Server, installation int64, authorization string) (int, installationToken, errorBody) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost,
		s.URL()+"/app/installations/"+strconv.FormatInt(installation, 10)+"/access_tokens", nil)
	if err != nil {
		t.Fatal(err)
	}
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	req.Header.Set("Accept", "application/vnd.github.v3+json")
	resp, err := s.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var tok installationToken
	var e errorBody
	if resp.StatusCode == http.StatusCreated {
		if err := json.Unmarshal(b, &tok); err != nil {
			t.Fatal(err)
		}
	} else {
		e = decodeError(t, b)
	}
	return resp.StatusCode, tok, e
}

func TestAccessToken(t *testing.T) {
	key, _, err := GenerateAppKey()
	if err != nil {
		t.Fatal(err)
	}
	otherKey, _, err := GenerateAppKey()
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	iat, exp := start.Add(-30*time.Second), start.Add(90*time.Second) // what ghinstallation signs
	id := strconv.Itoa(appID)
	tests := []struct {
		name         string
		installation int64
		auth         func() string
		wantStatus   int
		wantMessage  string
	}{
		{name: "valid", auth: func() string { return "Bearer " + signJWT(t, key, jwt.SigningMethodRS256, id, iat, exp) }, wantStatus: 201},
		{name: "client ID as issuer", auth: func() string { return "Bearer " + signJWT(t, key, jwt.SigningMethodRS256, "Iv1.client", iat, exp) }, wantStatus: 201},
		{name: "ten minutes", auth: func() string {
			return "Bearer " + signJWT(t, key, jwt.SigningMethodRS256, id, start.Add(-time.Minute), start.Add(10*time.Minute))
		}, wantStatus: 201},
		{name: "no JWT", auth: func() string { return "" }, wantStatus: 401, wantMessage: "A JSON web token could not be decoded"},
		{name: "not a JWT", auth: func() string { return "Bearer abc.def" }, wantStatus: 401, wantMessage: "A JSON web token could not be decoded"},
		{name: "PAT instead of JWT", auth: func() string { return "token " + testPAT }, wantStatus: 401},
		{name: "signed by another key", auth: func() string { return "Bearer " + signJWT(t, otherKey, jwt.SigningMethodRS256, id, iat, exp) }, wantStatus: 401, wantMessage: "A JSON web token could not be decoded"},
		{name: "HS256", auth: func() string { return "Bearer " + signJWT(t, []byte("secret"), jwt.SigningMethodHS256, id, iat, exp) }, wantStatus: 401},
		{name: "RS512", auth: func() string { return "Bearer " + signJWT(t, key, jwt.SigningMethodRS512, id, iat, exp) }, wantStatus: 401},
		{name: "wrong issuer", auth: func() string { return "Bearer " + signJWT(t, key, jwt.SigningMethodRS256, "43", iat, exp) }, wantStatus: 401, wantMessage: "'Issuer' claim ('iss') must be the ID or client ID of the App"},
		{name: "expired", auth: func() string {
			return "Bearer " + signJWT(t, key, jwt.SigningMethodRS256, id, start.Add(-11*time.Minute), start.Add(-time.Minute))
		}, wantStatus: 401},
		{name: "expires too late", auth: func() string {
			return "Bearer " + signJWT(t, key, jwt.SigningMethodRS256, id, iat, start.Add(20*time.Minute))
		}, wantStatus: 401, wantMessage: "'Expiration time' claim ('exp') is too far in the future"},
		{name: "issued in the future", auth: func() string {
			return "Bearer " + signJWT(t, key, jwt.SigningMethodRS256, id, start.Add(5*time.Minute), start.Add(6*time.Minute))
		}, wantStatus: 401},
		{name: "other installation", installation: installID + 1, auth: func() string {
			return "Bearer " + signJWT(t, key, jwt.SigningMethodRS256, id, iat, exp)
		}, wantStatus: 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := &clock{now: start}
			s := newServer(t, Options{
				App: &AppAuth{AppID: appID, ClientID: "Iv1.client", InstallationID: installID, PublicKey: &key.PublicKey},
				Now: clk.Now,
			})
			inst := tt.installation
			if inst == 0 {
				inst = installID
			}
			status, tok, e := requestToken(t, s, inst, tt.auth())
			if status != tt.wantStatus {
				t.Fatalf("status = %d, want %d (%q)", status, tt.wantStatus, e.Message)
			}
			if tt.wantMessage != "" && e.Message != tt.wantMessage {
				t.Errorf("message = %q, want %q", e.Message, tt.wantMessage)
			}
			if s.TokenRequests() != 1 {
				t.Errorf("TokenRequests = %d, want 1", s.TokenRequests())
			}
			if status != http.StatusCreated {
				return
			}
			if !strings.HasPrefix(tok.Token, "ghs_") || tok.ExpiresAt != start.Add(time.Hour).Format(time.RFC3339) {
				t.Errorf("token %+v: want ghs_… expiring at %s", tok, start.Add(time.Hour).Format(time.RFC3339))
			}
			useToken := func(r *http.Request) { r.Header.Set("Authorization", "token "+tok.Token) }
			if got := post(t, s, validBody(), useToken); got.status != http.StatusOK {
				t.Fatalf("record with installation token: status %d: %s", got.status, got.body)
			}
			clk.Add(time.Hour)
			if got := post(t, s, validBody(), useToken); got.status != http.StatusUnauthorized {
				t.Errorf("record with expired installation token: status %d, want 401", got.status)
			}
		})
	}
}

func TestRevokeTokens(t *testing.T) {
	key, _, err := GenerateAppKey()
	if err != nil {
		t.Fatal(err)
	}
	s := newServer(t, Options{App: &AppAuth{AppID: appID, InstallationID: installID, PublicKey: &key.PublicKey}})
	now := time.Now()
	_, tok, _ := requestToken(t, s, installID, "Bearer "+signJWT(t, key, jwt.SigningMethodRS256, strconv.Itoa(appID), now.Add(-time.Minute), now.Add(time.Minute)))
	useToken := func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok.Token) }
	if got := post(t, s, validBody(), useToken); got.status != http.StatusOK {
		t.Fatalf("status %d: %s", got.status, got.body)
	}
	s.RevokeTokens()
	if got := post(t, s, validBody(), useToken); got.status != http.StatusUnauthorized {
		t.Errorf("after RevokeTokens: status %d, want 401", got.status)
	}
	if got := post(t, s, validBody(), nil); got.status != http.StatusOK {
		t.Errorf("PAT after RevokeTokens: status %d, want 200", got.status)
	}
}

func TestNewOptions(t *testing.T) {
	key, _, err := GenerateAppKey()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		opts Options
	}{
		{name: "relative prefix", opts: Options{PathPrefix: "api/v3"}},
		{name: "app without key", opts: Options{App: &AppAuth{AppID: 1, InstallationID: 1}}},
		{name: "app without ids", opts: Options{App: &AppAuth{PublicKey: &key.PublicKey}}},
		{name: "bad address", opts: Options{Addr: "256.0.0.1:http"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if s, err := New(tt.opts); err == nil {
				s.Close()
				t.Fatal("New succeeded, want an error")
			}
		})
	}
}

func TestTLSAndPathPrefix(t *testing.T) {
	var seen []record.Record
	var mu sync.Mutex
	s := newServer(t, Options{TLS: true, PathPrefix: "/api/v3/", OnAccept: func(r record.Record) {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, r)
	}})
	if !strings.HasPrefix(s.URL(), "https://") || !strings.HasSuffix(s.URL(), "/api/v3") {
		t.Fatalf("URL = %q, want https://…/api/v3", s.URL())
	}
	if got := post(t, s, validBody(), nil); got.status != http.StatusOK {
		t.Fatalf("status %d: %s", got.status, got.body)
	}
	if got := post(t, s, validBody(), func(r *http.Request) { r.URL.Path = strings.TrimPrefix(r.URL.Path, "/api/v3") }); got.status != http.StatusNotFound {
		t.Errorf("without prefix: status %d, want 404", got.status)
	}
	mu.Lock()
	defer mu.Unlock()
	if diff := cmp.Diff(s.Accepted(), seen); diff != "" {
		t.Errorf("OnAccept saw (-accepted +seen):\n%s", diff)
	}
}

func TestWaitFor(t *testing.T) {
	s := newServer(t, Options{})
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- s.WaitFor(ctx, func(acc []record.Record) bool { return len(acc) == 3 })
	}()
	var wg sync.WaitGroup
	for i := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b := validBody()
			b["deployment_name"] = "d" + strconv.Itoa(i)
			if got := post(t, s, b, nil); got.status != http.StatusOK {
				t.Errorf("status %d", got.status)
			}
		}()
	}
	wg.Wait()
	if err := <-done; err != nil {
		t.Fatalf("WaitFor: %v", err)
	}
	if err := s.WaitForCalls(ctx, 3); err != nil {
		t.Fatalf("WaitForCalls: %v", err)
	}

	short, cancelShort := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancelShort()
	if err := s.WaitFor(short, func([]record.Record) bool { return false }); err == nil {
		t.Error("WaitFor with an expired context returned nil")
	}
	go s.Close()
	if err := s.WaitFor(ctx, func([]record.Record) bool { return false }); err == nil || ctx.Err() != nil {
		t.Errorf("WaitFor on a closed server = %v, want a server closed error", err)
	}
}
