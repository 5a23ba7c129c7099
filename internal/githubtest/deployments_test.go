package githubtest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	jwt "github.com/golang-jwt/jwt/v4"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// The commits of the test repository: shaMain and shaFeature share a 7-digit prefix.
const (
	shaMain    = "0a1b2c3d4e5f60718293a4b5c6d7e8f901234567"
	shaFeature = "0a1b2c3e4e5f60718293a4b5c6d7e8f901234567"
	shaTag     = "fedcba9876543210fedcba9876543210fedcba98"
)

var testEpoch = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func testRepos() map[string]Repo {
	return map[string]Repo{"app": {
		Branches: map[string]string{"main": shaMain, "feature/x": shaFeature},
		Tags:     map[string]string{"v1.0.0": shaTag},
		Commits: map[string]Commit{
			shaMain:    {Message: "Fix the thing", AuthorDate: testEpoch.Add(-time.Hour), CommitterDate: testEpoch.Add(-30 * time.Minute), Parents: []string{shaTag}},
			shaFeature: {Message: "Try the other thing", AuthorName: "Hubot", AuthorEmail: "hubot@example.com", AuthorDate: testEpoch.Add(-2 * time.Hour)},
			shaTag:     {Message: "Release 1.0.0", AuthorDate: testEpoch.Add(-24 * time.Hour)},
		},
	}}
}

// newRepoServer is a server with the test repository and a clock that stands still unless moved.
func newRepoServer(t *testing.T, opts Options) (*Server, *clock) {
	t.Helper()
	c := &clock{now: testEpoch}
	if opts.Repos == nil {
		opts.Repos = testRepos()
	}
	opts.Now = c.Now
	return newServer(t, opts), c
}

func deploymentsPath(s *Server, repo string) string {
	return "/repos/" + s.Org() + "/" + repo + "/deployments"
}

func decodeJSON[T any](t *testing.T, got response) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(got.body, &v); err != nil {
		t.Fatalf("decode %s: %v", got.body, err)
	}
	return v
}

// createDeployment creates a deployment and returns its decoded answer, failing the test on anything but 201.
func createDeployment(t *testing.T, s *Server, body map[string]any) deploymentBody {
	t.Helper()
	got := send(t, s, http.MethodPost, deploymentsPath(s, "app"), body, nil)
	if got.status != http.StatusCreated {
		t.Fatalf("create deployment: status %d: %s", got.status, got.body)
	}
	return decodeJSON[deploymentBody](t, got)
}

func createStatus(t *testing.T, s *Server, id int64, body map[string]any) statusBody {
	t.Helper()
	got := send(t, s, http.MethodPost, fmt.Sprintf("%s/%d/statuses", deploymentsPath(s, "app"), id), body, nil)
	if got.status != http.StatusCreated {
		t.Fatalf("create status: status %d: %s", got.status, got.body)
	}
	return decodeJSON[statusBody](t, got)
}

func TestCreateDeploymentSchema(t *testing.T) {
	long := strings.Repeat("é", maxDescription) // multi-byte: lengths count characters
	tests := []struct {
		name      string
		body      map[string]any
		raw       []byte // sent instead of body when set
		wantCode  int
		wantError string // a substring of the message
		want      Deployment
	}{
		{name: "defaults", body: map[string]any{"ref": "main"}, wantCode: 201, want: Deployment{
			Ref: "main", SHA: shaMain, Task: "deploy", Payload: json.RawMessage(`{}`), OriginalEnvironment: "production",
			Environment: "production", AutoMerge: true, ProductionEnvironment: true,
		}},
		{name: "every property", body: map[string]any{
			"ref": "v1.0.0", "task": "deploy:migrations", "auto_merge": false, "required_contexts": []any{"ci/build"},
			"payload": map[string]any{"image": "ghcr.io/octo-org/app:1.0.0"}, "environment": "staging", "description": long,
			"transient_environment": true, "production_environment": true,
		}, wantCode: 201, want: Deployment{
			Ref: "v1.0.0", SHA: shaTag, Task: "deploy:migrations", Payload: json.RawMessage(`{"image":"ghcr.io/octo-org/app:1.0.0"}`),
			OriginalEnvironment: "staging", Environment: "staging", Description: long, RequiredContexts: []string{"ci/build"},
			TransientEnvironment: true, ProductionEnvironment: true,
		}},
		{name: "non-production environment", body: map[string]any{"ref": "main", "environment": "qa"}, wantCode: 201, want: Deployment{
			Ref: "main", SHA: shaMain, Task: "deploy", Payload: json.RawMessage(`{}`), OriginalEnvironment: "qa", Environment: "qa", AutoMerge: true,
		}},
		{name: "production_environment false in production", body: map[string]any{"ref": "main", "production_environment": false}, wantCode: 201, want: Deployment{
			Ref: "main", SHA: shaMain, Task: "deploy", Payload: json.RawMessage(`{}`), OriginalEnvironment: "production", Environment: "production", AutoMerge: true,
		}},
		{name: "empty required_contexts", body: map[string]any{"ref": "main", "required_contexts": []any{}}, wantCode: 201, want: Deployment{
			Ref: "main", SHA: shaMain, Task: "deploy", Payload: json.RawMessage(`{}`), OriginalEnvironment: "production", Environment: "production",
			AutoMerge: true, ProductionEnvironment: true, RequiredContexts: []string{},
		}},
		{name: "payload a JSON string", body: map[string]any{"ref": "main", "payload": `{ "deploy": "migrate" }`}, wantCode: 201, want: Deployment{
			Ref: "main", SHA: shaMain, Task: "deploy", Payload: json.RawMessage(`{"deploy":"migrate"}`), OriginalEnvironment: "production",
			Environment: "production", AutoMerge: true, ProductionEnvironment: true,
		}},
		{name: "payload a plain string", body: map[string]any{"ref": "main", "payload": "migrate"}, wantCode: 201, want: Deployment{
			Ref: "main", SHA: shaMain, Task: "deploy", Payload: json.RawMessage(`"migrate"`), OriginalEnvironment: "production",
			Environment: "production", AutoMerge: true, ProductionEnvironment: true,
		}},
		{name: "description null", body: map[string]any{"ref": "main", "description": nil}, wantCode: 201, want: Deployment{
			Ref: "main", SHA: shaMain, Task: "deploy", Payload: json.RawMessage(`{}`), OriginalEnvironment: "production",
			Environment: "production", AutoMerge: true, ProductionEnvironment: true,
		}},
		{name: "unknown property ignored", body: map[string]any{"ref": "main", "deployment": "x"}, wantCode: 201, want: Deployment{
			Ref: "main", SHA: shaMain, Task: "deploy", Payload: json.RawMessage(`{}`), OriginalEnvironment: "production",
			Environment: "production", AutoMerge: true, ProductionEnvironment: true,
		}},

		{name: "malformed JSON", raw: []byte(`{"ref":`), wantCode: 400, wantError: "Problems parsing JSON"},
		{name: "not an object", raw: []byte(`["main"]`), wantCode: 400, wantError: "Problems parsing JSON"},
		{name: "ref missing", body: map[string]any{"environment": "qa"}, wantCode: 422, wantError: `"ref" wasn't supplied.`},
		{name: "ref not a string", body: map[string]any{"ref": 1}, wantCode: 422, wantError: "Invalid request.\n\nFor 'properties/ref', 1 is not a string."},
		{name: "ref unknown", body: map[string]any{"ref": "nope"}, wantCode: 422, wantError: "No ref found for: nope"},
		{name: "ref empty", body: map[string]any{"ref": ""}, wantCode: 422, wantError: "No ref found for: "},
		{name: "task not a string", body: map[string]any{"ref": "main", "task": true}, wantCode: 422, wantError: "'properties/task', true is not a string."},
		{name: "auto_merge not a boolean", body: map[string]any{"ref": "main", "auto_merge": "false"}, wantCode: 422, wantError: `'properties/auto_merge', "false" is not a boolean.`},
		{name: "required_contexts not an array", body: map[string]any{"ref": "main", "required_contexts": "ci"}, wantCode: 422, wantError: `'properties/required_contexts', "ci" is not an array.`},
		{name: "required_contexts item not a string", body: map[string]any{"ref": "main", "required_contexts": []any{"ci", 2}}, wantCode: 422, wantError: "item 1, 2, is not a string."},
		{name: "payload a number", body: map[string]any{"ref": "main", "payload": 3}, wantCode: 422, wantError: "'properties/payload', 3 is not an object or a string."},
		{name: "payload null", body: map[string]any{"ref": "main", "payload": nil}, wantCode: 422, wantError: "'properties/payload', null is not an object or a string."},
		{name: "environment not a string", body: map[string]any{"ref": "main", "environment": []any{"qa"}}, wantCode: 422, wantError: `'properties/environment', ["qa"] is not a string.`},
		{name: "environment empty", body: map[string]any{"ref": "main", "environment": ""}, wantCode: 422, wantError: "'properties/environment'"},
		{name: "description too long", body: map[string]any{"ref": "main", "description": long + "x"}, wantCode: 422, wantError: "is too long (maximum is 140 characters)"},
		{name: "description a number", body: map[string]any{"ref": "main", "description": 1}, wantCode: 422, wantError: "1 is not a string or null."},
		{name: "transient_environment not a boolean", body: map[string]any{"ref": "main", "transient_environment": 1}, wantCode: 422, wantError: "'properties/transient_environment', 1 is not a boolean."},
		{name: "production_environment not a boolean", body: map[string]any{"ref": "main", "production_environment": "yes"}, wantCode: 422, wantError: "'properties/production_environment'"},
		{name: "every violation reported", body: map[string]any{"task": 1, "auto_merge": 1}, wantCode: 422, wantError: "'properties/auto_merge', 1 is not a boolean.\nFor 'properties/task', 1 is not a string.\n\"ref\" wasn't supplied."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := newRepoServer(t, Options{})
			var body any = tt.body
			if tt.raw != nil {
				body = tt.raw
			}
			got := send(t, s, http.MethodPost, deploymentsPath(s, "app"), body, nil)
			if got.status != tt.wantCode {
				t.Fatalf("status = %d, want %d; body %s", got.status, tt.wantCode, got.body)
			}
			stored := s.Deployments("app")
			if tt.wantCode != http.StatusCreated {
				if e := decodeError(t, got.body); !strings.Contains(e.Message, tt.wantError) {
					t.Errorf("message %q does not contain %q", e.Message, tt.wantError)
				}
				if len(stored) != 0 {
					t.Errorf("stored %d deployments, want none", len(stored))
				}
				return
			}
			if len(stored) != 1 {
				t.Fatalf("stored %d deployments, want 1", len(stored))
			}
			want := tt.want
			want.ID, want.NodeID, want.Repo, want.Creator = 1, nodeID("DE_", 1), "app", UserLogin
			want.CreatedAt, want.UpdatedAt = testEpoch, testEpoch
			if diff := cmp.Diff(want, stored[0]); diff != "" {
				t.Errorf("stored deployment (-want +got):\n%s", diff)
			}
			answer := decodeJSON[deploymentBody](t, got)
			if string(answer.Payload) != string(want.Payload) {
				t.Errorf("answered payload %s, want %s", answer.Payload, want.Payload)
			}
		})
	}
}

func TestCreateDeploymentRefs(t *testing.T) {
	tests := []struct {
		ref     string
		wantSHA string // "" for 422
	}{
		{ref: "main", wantSHA: shaMain},
		{ref: "feature/x", wantSHA: shaFeature},
		{ref: "heads/main", wantSHA: shaMain},
		{ref: "refs/heads/main", wantSHA: shaMain},
		{ref: "v1.0.0", wantSHA: shaTag},
		{ref: "tags/v1.0.0", wantSHA: shaTag},
		{ref: "refs/tags/v1.0.0", wantSHA: shaTag},
		{ref: shaFeature, wantSHA: shaFeature},
		{ref: strings.ToUpper(shaTag), wantSHA: shaTag},
		{ref: shaMain[:8], wantSHA: shaMain},
		{ref: shaTag[:7], wantSHA: shaTag},
		{ref: shaTag[:6]},  // too short
		{ref: shaMain[:7]}, // ambiguous: shaFeature starts alike
		{ref: "refs/heads/v1.0.0"},
		{ref: "tags/main"},
		{ref: "0123456789012345678901234567890123456789"}, // a SHA, but of no commit of the repository
		{ref: "Main"},                                     // ref names are case-sensitive
	}
	for _, tt := range tests {
		t.Run(tt.ref, func(t *testing.T) {
			s, _ := newRepoServer(t, Options{})
			got := send(t, s, http.MethodPost, deploymentsPath(s, "app"), map[string]any{"ref": tt.ref}, nil)
			if tt.wantSHA == "" {
				if got.status != http.StatusUnprocessableEntity {
					t.Fatalf("status %d, want 422: %s", got.status, got.body)
				}
				if e := decodeError(t, got.body); e.Message != "No ref found for: "+tt.ref || e.DocumentationURL != createDeploymentDocs {
					t.Errorf("error %+v, want message %q", e, "No ref found for: "+tt.ref)
				}
				return
			}
			if got.status != http.StatusCreated {
				t.Fatalf("status %d, want 201: %s", got.status, got.body)
			}
			if d := decodeJSON[deploymentBody](t, got); d.SHA != tt.wantSHA || d.Ref != tt.ref {
				t.Errorf("sha %s ref %s, want %s %s", d.SHA, d.Ref, tt.wantSHA, tt.ref)
			}
		})
	}
}

func TestDeploymentResponse(t *testing.T) {
	s, _ := newRepoServer(t, Options{PathPrefix: "/api/v3"})
	got := send(t, s, http.MethodPost, deploymentsPath(s, "App"), map[string]any{"ref": "main", "description": "Deploy 1", "payload": map[string]any{"a": 1}}, nil)
	if got.status != http.StatusCreated {
		t.Fatalf("status %d: %s", got.status, got.body)
	}
	base := s.URL() + "/repos/octo-org/app"
	if !strings.HasSuffix(base, "/api/v3/repos/octo-org/app") {
		t.Fatalf("URL %s lacks the path prefix", base)
	}
	want := map[string]any{
		"url": base + "/deployments/1", "id": 1.0, "node_id": nodeID("DE_", 1), "sha": shaMain, "ref": "main", "task": "deploy",
		"payload": map[string]any{"a": 1.0}, "original_environment": "production", "environment": "production", "description": "Deploy 1",
		"creator": map[string]any{
			"login": UserLogin, "id": 2.0, "node_id": nodeID("U_", 2), "url": s.URL() + "/users/" + UserLogin,
			"html_url": "https://github.com/" + UserLogin, "type": "User", "site_admin": false,
		},
		"created_at": "2026-03-01T12:00:00Z", "updated_at": "2026-03-01T12:00:00Z", "statuses_url": base + "/deployments/1/statuses",
		"repository_url": base, "transient_environment": false, "production_environment": true, "performed_via_github_app": nil,
	}
	if diff := cmp.Diff(want, decodeJSON[map[string]any](t, got)); diff != "" {
		t.Errorf("answer (-want +got):\n%s", diff)
	}
	if loc := got.header.Get("Location"); loc != base+"/deployments/1" {
		t.Errorf("Location %q", loc)
	}
	if got.header.Get("X-Ratelimit-Remaining") == "" {
		t.Error("no rate limit headers")
	}

	// The deployment's url and statuses_url answer.
	one := send(t, s, http.MethodGet, deploymentsPath(s, "app")+"/1", nil, nil)
	if one.status != http.StatusOK || decodeJSON[deploymentBody](t, one).SHA != shaMain {
		t.Errorf("GET deployment: %d %s", one.status, one.body)
	}
	for _, path := range []string{"/2", "/x", "/1/statuses/1"} {
		if got := send(t, s, http.MethodGet, deploymentsPath(s, "app")+path, nil, nil); got.status != http.StatusNotFound {
			t.Errorf("GET %s: status %d, want 404", path, got.status)
		}
	}
	list := send(t, s, http.MethodGet, deploymentsPath(s, "app")+"/1/statuses", nil, nil)
	if list.status != http.StatusOK || string(list.body) != "[]\n" {
		t.Errorf("statuses: %d %q, want 200 []", list.status, list.body)
	}
}

func TestRepoRequestChecks(t *testing.T) {
	key, _, err := GenerateAppKey()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name        string
		method      string
		path        string // after /repos/
		mutate      func(*http.Request)
		wantStatus  int
		wantMessage string
	}{
		{name: "create", method: http.MethodPost, path: "octo-org/app/deployments", wantStatus: 201},
		{name: "token scheme", method: http.MethodPost, path: "octo-org/app/deployments", mutate: func(r *http.Request) { r.Header.Set("Authorization", "token "+testPAT) }, wantStatus: 201},
		{name: "v3 media type", method: http.MethodPost, path: "octo-org/app/deployments", mutate: func(r *http.Request) { r.Header.Set("Accept", MediaTypeV3) }, wantStatus: 201},
		{name: "go-github's preview media types", method: http.MethodPost, path: "octo-org/app/deployments", mutate: func(r *http.Request) {
			r.Header.Set("Accept", "application/vnd.github.ant-man-preview+json, application/vnd.github.flash-preview+json")
		}, wantStatus: 201},
		{name: "plain JSON media type", method: http.MethodPost, path: "octo-org/app/deployments", mutate: func(r *http.Request) { r.Header.Set("Accept", "application/json") }, wantStatus: 415},
		{name: "no Accept", method: http.MethodPost, path: "octo-org/app/deployments", mutate: func(r *http.Request) { r.Header.Del("Accept") }, wantStatus: 415},
		{name: "no API version", method: http.MethodPost, path: "octo-org/app/deployments", mutate: func(r *http.Request) { r.Header.Del("X-GitHub-Api-Version") }, wantStatus: 400},
		{name: "wrong API version", method: http.MethodGet, path: "octo-org/app/deployments", mutate: func(r *http.Request) { r.Header.Set("X-GitHub-Api-Version", "2026-03-10") }, wantStatus: 400},
		{name: "no User-Agent", method: http.MethodPost, path: "octo-org/app/deployments", mutate: func(r *http.Request) { r.Header.Set("User-Agent", "") }, wantStatus: 403},
		{name: "no credentials", method: http.MethodPost, path: "octo-org/app/deployments", mutate: func(r *http.Request) { r.Header.Del("Authorization") }, wantStatus: 401, wantMessage: "Requires authentication"},
		{name: "bad credentials", method: http.MethodPost, path: "octo-org/app/deployments", mutate: func(r *http.Request) { r.Header.Set("Authorization", "Bearer nope") }, wantStatus: 401, wantMessage: "Bad credentials"},
		{name: "bad credentials, unknown repo", method: http.MethodGet, path: "octo-org/nope/commits/main", mutate: func(r *http.Request) { r.Header.Set("Authorization", "Bearer nope") }, wantStatus: 401, wantMessage: "Bad credentials"},
		{name: "owner and repo case-insensitive", method: http.MethodPost, path: "Octo-Org/APP/deployments", wantStatus: 201},
		{name: "unknown owner", method: http.MethodPost, path: "other-org/app/deployments", wantStatus: 404, wantMessage: "Not Found"},
		{name: "unknown repo", method: http.MethodPost, path: "octo-org/nope/deployments", wantStatus: 404, wantMessage: "Not Found"},
		{name: "unknown repo, commit", method: http.MethodGet, path: "octo-org/nope/commits/main", wantStatus: 404, wantMessage: "Not Found"},
		{name: "unknown repo, statuses", method: http.MethodPost, path: "octo-org/nope/deployments/1/statuses", wantStatus: 404},
		{name: "method the path lacks", method: http.MethodPut, path: "octo-org/app/deployments", wantStatus: 404},
		{name: "trailing slash", method: http.MethodPost, path: "octo-org/app/deployments/", wantStatus: 404},
		{name: "list", method: http.MethodGet, path: "octo-org/app/deployments", wantStatus: 200},
		{name: "HEAD of a list", method: http.MethodHead, path: "octo-org/app/deployments", wantStatus: 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := newRepoServer(t, Options{App: &AppAuth{AppID: appID, InstallationID: installID, PublicKey: &key.PublicKey}})
			var body any
			if tt.method == http.MethodPost {
				body = map[string]any{"ref": "main"}
				if strings.HasSuffix(tt.path, "/statuses") {
					body = map[string]any{"state": "success"}
				}
			}
			got := send(t, s, tt.method, "/repos/"+tt.path, body, tt.mutate)
			if got.status != tt.wantStatus {
				t.Fatalf("status = %d, want %d; body %s", got.status, tt.wantStatus, got.body)
			}
			if tt.wantMessage != "" {
				if e := decodeError(t, got.body); e.Message != tt.wantMessage {
					t.Errorf("message = %q, want %q", e.Message, tt.wantMessage)
				}
			}
			want := 0
			if tt.wantStatus == http.StatusCreated {
				want = 1
			}
			if n := len(s.Deployments("app")); n != want {
				t.Errorf("stored %d deployments, want %d", n, want)
			}
		})
	}
}

func TestRepoInstallationToken(t *testing.T) {
	key, _, err := GenerateAppKey()
	if err != nil {
		t.Fatal(err)
	}
	s, c := newRepoServer(t, Options{App: &AppAuth{AppID: appID, InstallationID: installID, PublicKey: &key.PublicKey}})
	now := c.Now()
	_, tok, _ := requestToken(t, s, installID, "Bearer "+signJWT(t, key, jwt.SigningMethodRS256, fmt.Sprint(appID), now.Add(-time.Minute), now.Add(time.Minute)))
	useToken := func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok.Token) }

	got := send(t, s, http.MethodPost, deploymentsPath(s, "app"), map[string]any{"ref": "main"}, useToken)
	if got.status != http.StatusCreated {
		t.Fatalf("status %d: %s", got.status, got.body)
	}
	d := decodeJSON[deploymentBody](t, got)
	if d.Creator.Login != AppLogin || d.Creator.Type != "Bot" || d.PerformedViaGitHubApp == nil || d.PerformedViaGitHubApp.ID != appID {
		t.Errorf("creator %+v via %+v, want the App's bot", d.Creator, d.PerformedViaGitHubApp)
	}
	st := send(t, s, http.MethodPost, fmt.Sprintf("%s/%d/statuses", deploymentsPath(s, "app"), d.ID), map[string]any{"state": "queued"}, useToken)
	if st.status != http.StatusCreated || decodeJSON[statusBody](t, st).Creator.Login != AppLogin {
		t.Errorf("status: %d %s", st.status, st.body)
	}
	if got := s.Deployments("app"); got[0].Creator != AppLogin || got[0].Statuses[0].Creator != AppLogin {
		t.Errorf("stored creators %q, %q, want %q", got[0].Creator, got[0].Statuses[0].Creator, AppLogin)
	}

	s.RevokeTokens()
	if got := send(t, s, http.MethodGet, "/repos/octo-org/app/commits/main", nil, useToken); got.status != http.StatusUnauthorized {
		t.Errorf("revoked token: status %d, want 401", got.status)
	}
}

func TestListDeployments(t *testing.T) {
	s, _ := newRepoServer(t, Options{})
	// Seven deployments, ids 1..7: even ids to staging, every third one a migration.
	for i := 1; i <= 7; i++ {
		body := map[string]any{"ref": "main"}
		if i%2 == 0 {
			body["environment"] = "staging"
			body["ref"] = "v1.0.0"
		}
		if i%3 == 0 {
			body["task"] = "deploy:migrations"
		}
		createDeployment(t, s, body)
	}
	// A status may move a deployment to another environment: the filter sees the current one.
	createStatus(t, s, 7, map[string]any{"state": "success", "environment": "qa"})

	tests := []struct {
		query     string
		wantIDs   []int64
		wantLinks map[string]string // rel → page
	}{
		{query: "", wantIDs: []int64{7, 6, 5, 4, 3, 2, 1}},
		{query: "?environment=staging", wantIDs: []int64{6, 4, 2}},
		{query: "?environment=production", wantIDs: []int64{5, 3, 1}},
		{query: "?environment=qa", wantIDs: []int64{7}},
		{query: "?environment=nope", wantIDs: []int64{}},
		{query: "?ref=v1.0.0", wantIDs: []int64{6, 4, 2}},
		{query: "?sha=" + shaMain, wantIDs: []int64{7, 5, 3, 1}},
		{query: "?sha=" + shaMain[:8], wantIDs: []int64{}}, // the filter takes the SHA, not a prefix
		{query: "?task=deploy:migrations", wantIDs: []int64{6, 3}},
		{query: "?task=deploy&ref=main", wantIDs: []int64{7, 5, 1}},
		{query: "?per_page=3", wantIDs: []int64{7, 6, 5}, wantLinks: map[string]string{"next": "2", "last": "3"}},
		{query: "?per_page=3&page=2", wantIDs: []int64{4, 3, 2}, wantLinks: map[string]string{"next": "3", "last": "3", "first": "1", "prev": "1"}},
		{query: "?per_page=3&page=3", wantIDs: []int64{1}, wantLinks: map[string]string{"first": "1", "prev": "2"}},
		{query: "?per_page=3&page=9", wantIDs: []int64{}, wantLinks: map[string]string{"first": "1", "prev": "3"}},
		{query: "?per_page=1000", wantIDs: []int64{7, 6, 5, 4, 3, 2, 1}},
		{query: "?per_page=x&page=0", wantIDs: []int64{7, 6, 5, 4, 3, 2, 1}},
		{query: "?environment=staging&per_page=2", wantIDs: []int64{6, 4}, wantLinks: map[string]string{"next": "2", "last": "2"}},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			got := send(t, s, http.MethodGet, deploymentsPath(s, "app")+tt.query, nil, nil)
			if got.status != http.StatusOK {
				t.Fatalf("status %d: %s", got.status, got.body)
			}
			ids := []int64{}
			for _, d := range decodeJSON[[]deploymentBody](t, got) {
				ids = append(ids, d.ID)
			}
			if diff := cmp.Diff(tt.wantIDs, ids); diff != "" {
				t.Errorf("ids (-want +got):\n%s", diff)
			}
			links := parseLinks(t, got.header.Get("Link"))
			if diff := cmp.Diff(tt.wantLinks, links, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("Link %q (-want +got):\n%s", got.header.Get("Link"), diff)
			}
		})
	}
}

// parseLinks returns the page of each rel of a Link header, checking that every URL keeps the request's path.
func parseLinks(t *testing.T, header string) map[string]string {
	t.Helper()
	out := map[string]string{}
	if header == "" {
		return out
	}
	for part := range strings.SplitSeq(header, ", ") {
		target, rel, ok := strings.Cut(part, "; rel=")
		if !ok || !strings.HasPrefix(target, "<") || !strings.HasSuffix(target, ">") {
			t.Fatalf("malformed Link part %q", part)
		}
		u := strings.Trim(target, "<>")
		if !strings.Contains(u, "/repos/octo-org/app/") {
			t.Errorf("link %s does not keep the path", u)
		}
		_, q, _ := strings.Cut(u, "?")
		for kv := range strings.SplitSeq(q, "&") {
			if p, ok := strings.CutPrefix(kv, "page="); ok {
				out[strings.Trim(rel, `"`)] = p
			}
		}
	}
	return out
}

func TestCreateStatusSchema(t *testing.T) {
	long := strings.Repeat("ü", maxDescription)
	tests := []struct {
		name      string
		body      map[string]any
		raw       []byte
		wantCode  int
		wantError string
		want      DeploymentStatus // ID, NodeID, Creator and dates are filled in
	}{
		{name: "state only", body: map[string]any{"state": "in_progress"}, wantCode: 201, want: DeploymentStatus{State: "in_progress", Environment: "production", AutoInactive: true}},
		{name: "every property", body: map[string]any{
			"state": "success", "target_url": "https://ci.example.com/1", "log_url": "https://ci.example.com/1/log", "description": long,
			"environment": "canary", "environment_url": "https://canary.example.com", "auto_inactive": false,
		}, wantCode: 201, want: DeploymentStatus{
			State: "success", TargetURL: "https://ci.example.com/1/log", LogURL: "https://ci.example.com/1/log", Description: long,
			Environment: "canary", EnvironmentURL: "https://canary.example.com",
		}},
		{name: "target_url alone", body: map[string]any{"state": "failure", "target_url": "https://ci.example.com/2"}, wantCode: 201, want: DeploymentStatus{
			State: "failure", TargetURL: "https://ci.example.com/2", Environment: "production", AutoInactive: true,
		}},
		{name: "unknown property ignored", body: map[string]any{"state": "queued", "color": "green"}, wantCode: 201, want: DeploymentStatus{State: "queued", Environment: "production", AutoInactive: true}},

		{name: "malformed JSON", raw: []byte(`{`), wantCode: 400, wantError: "Problems parsing JSON"},
		{name: "state missing", body: map[string]any{"description": "x"}, wantCode: 422, wantError: `"state" wasn't supplied.`},
		{name: "state unknown", body: map[string]any{"state": "deployed"}, wantCode: 422, wantError: `'properties/state', "deployed" is not a member of`},
		{name: "state upper case", body: map[string]any{"state": "SUCCESS"}, wantCode: 422, wantError: "'properties/state'"},
		{name: "state not a string", body: map[string]any{"state": 1}, wantCode: 422, wantError: "'properties/state', 1 is not a string."},
		{name: "description too long", body: map[string]any{"state": "error", "description": long + "!"}, wantCode: 422, wantError: "too long (maximum is 140 characters)"},
		{name: "description null", body: map[string]any{"state": "error", "description": nil}, wantCode: 422, wantError: "null is not a string."},
		{name: "auto_inactive not a boolean", body: map[string]any{"state": "success", "auto_inactive": "false"}, wantCode: 422, wantError: "is not a boolean."},
		{name: "environment empty", body: map[string]any{"state": "success", "environment": ""}, wantCode: 422, wantError: "'properties/environment'"},
		{name: "log_url not a string", body: map[string]any{"state": "success", "log_url": 1}, wantCode: 422, wantError: "'properties/log_url', 1 is not a string."},
		{name: "environment_url not a string", body: map[string]any{"state": "success", "environment_url": false}, wantCode: 422, wantError: "'properties/environment_url'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := newRepoServer(t, Options{})
			createDeployment(t, s, map[string]any{"ref": "main"})
			var body any = tt.body
			if tt.raw != nil {
				body = tt.raw
			}
			got := send(t, s, http.MethodPost, deploymentsPath(s, "app")+"/1/statuses", body, nil)
			if got.status != tt.wantCode {
				t.Fatalf("status = %d, want %d; body %s", got.status, tt.wantCode, got.body)
			}
			statuses := s.Deployments("app")[0].Statuses
			if tt.wantCode != http.StatusCreated {
				if e := decodeError(t, got.body); !strings.Contains(e.Message, tt.wantError) || e.DocumentationURL != createStatusDocs {
					t.Errorf("error %+v, want a message with %q", e, tt.wantError)
				}
				if len(statuses) != 0 {
					t.Errorf("stored %d statuses, want none", len(statuses))
				}
				return
			}
			want := tt.want
			want.ID, want.NodeID, want.Creator, want.CreatedAt, want.UpdatedAt = 1, nodeID("DES_", 1), UserLogin, testEpoch, testEpoch
			if diff := cmp.Diff([]DeploymentStatus{want}, statuses); diff != "" {
				t.Errorf("stored statuses (-want +got):\n%s", diff)
			}
			answer := decodeJSON[statusBody](t, got)
			base := s.URL() + "/repos/octo-org/app"
			wantAnswer := statusBody{
				URL: base + "/deployments/1/statuses/1", ID: 1, NodeID: nodeID("DES_", 1), State: want.State, Creator: s.user(UserLogin),
				Description: want.Description, Environment: want.Environment, TargetURL: want.TargetURL, CreatedAt: "2026-03-01T12:00:00Z",
				UpdatedAt: "2026-03-01T12:00:00Z", DeploymentURL: base + "/deployments/1", RepositoryURL: base,
				EnvironmentURL: want.EnvironmentURL, LogURL: want.LogURL,
			}
			if diff := cmp.Diff(wantAnswer, answer); diff != "" {
				t.Errorf("answer (-want +got):\n%s", diff)
			}
			if d := s.Deployments("app")[0]; d.Environment != want.Environment || d.OriginalEnvironment != "production" {
				t.Errorf("deployment environment %q (original %q), want %q (production)", d.Environment, d.OriginalEnvironment, want.Environment)
			}
		})
	}
}

func TestDeploymentStatuses(t *testing.T) {
	s, c := newRepoServer(t, Options{Repos: map[string]Repo{"app": testRepos()["app"], "other": testRepos()["app"]}})
	d := createDeployment(t, s, map[string]any{"ref": "main"})
	for _, state := range []string{"queued", "in_progress", "success"} {
		c.Add(time.Minute)
		createStatus(t, s, d.ID, map[string]any{"state": state})
	}

	// Newest first, paginated.
	got := send(t, s, http.MethodGet, deploymentsPath(s, "app")+"/1/statuses?per_page=2", nil, nil)
	if got.status != http.StatusOK {
		t.Fatalf("status %d: %s", got.status, got.body)
	}
	var states []string
	for _, st := range decodeJSON[[]statusBody](t, got) {
		states = append(states, st.State)
	}
	if diff := cmp.Diff([]string{"success", "in_progress"}, states); diff != "" {
		t.Errorf("first page (-want +got):\n%s", diff)
	}
	if links := parseLinks(t, got.header.Get("Link")); links["next"] != "2" {
		t.Errorf("Link %q, want a next page", got.header.Get("Link"))
	}
	one := send(t, s, http.MethodGet, deploymentsPath(s, "app")+"/1/statuses/2", nil, nil)
	if one.status != http.StatusOK || decodeJSON[statusBody](t, one).State != "in_progress" {
		t.Errorf("GET status 2: %d %s", one.status, one.body)
	}

	// The accessor lists statuses oldest first; creating one updates the deployment.
	dep := s.Deployments("APP")[0]
	states = nil
	for _, st := range dep.Statuses {
		states = append(states, st.State)
	}
	if diff := cmp.Diff([]string{"queued", "in_progress", "success"}, states); diff != "" {
		t.Errorf("Deployments statuses (-want +got):\n%s", diff)
	}
	if !dep.UpdatedAt.Equal(testEpoch.Add(3*time.Minute)) || !dep.CreatedAt.Equal(testEpoch) {
		t.Errorf("created %v updated %v", dep.CreatedAt, dep.UpdatedAt)
	}
	if answer := decodeJSON[deploymentBody](t, send(t, s, http.MethodGet, deploymentsPath(s, "app")+"/1", nil, nil)); answer.UpdatedAt != "2026-03-01T12:03:00Z" {
		t.Errorf("updated_at %s", answer.UpdatedAt)
	}

	// A deployment belongs to its repository.
	for _, path := range []string{"/repos/octo-org/other/deployments/1/statuses", "/repos/octo-org/app/deployments/99/statuses", "/repos/octo-org/app/deployments/-1/statuses"} {
		if got := send(t, s, http.MethodPost, path, map[string]any{"state": "success"}, nil); got.status != http.StatusNotFound {
			t.Errorf("POST %s: status %d, want 404", path, got.status)
		}
		if got := send(t, s, http.MethodGet, path, nil, nil); got.status != http.StatusNotFound {
			t.Errorf("GET %s: status %d, want 404", path, got.status)
		}
	}
	if n := len(s.Deployments("other")); n != 0 {
		t.Errorf("other has %d deployments", n)
	}
	if s.Deployments("nope") != nil {
		t.Error("Deployments of an unknown repository is not nil")
	}
}

func TestAutoInactive(t *testing.T) {
	type prior struct {
		env        string
		transient  bool
		production *bool
		states     []string
	}
	f := false
	tests := []struct {
		name         string
		priors       []prior
		later        []string // states of the deployment created after the priors, before the final status
		status       map[string]any
		wantInactive []bool // per prior: whether an automatic inactive status was added
	}{
		{
			name:         "success inactivates prior successful deployments of the environment",
			priors:       []prior{{env: "staging", states: []string{"success"}}, {env: "staging", states: []string{"success"}}},
			status:       map[string]any{"state": "success"},
			wantInactive: []bool{true, true},
		},
		{
			name:         "other environments, production, transient, failed and inactive ones stay",
			priors:       []prior{{env: "qa", states: []string{"success"}}, {env: "production", states: []string{"success"}}, {env: "staging", transient: true, states: []string{"success"}}, {env: "staging", states: []string{"success", "failure"}}, {env: "staging", states: []string{"success", "inactive"}}, {env: "staging"}},
			status:       map[string]any{"state": "success"},
			wantInactive: []bool{false, false, false, false, false, false},
		},
		{
			name:         "a production environment that is not production_environment is inactivated",
			priors:       []prior{{env: "staging", production: &f, states: []string{"success"}}},
			status:       map[string]any{"state": "success"},
			wantInactive: []bool{true},
		},
		{
			name:         "auto_inactive false",
			priors:       []prior{{env: "staging", states: []string{"success"}}},
			status:       map[string]any{"state": "success", "auto_inactive": false},
			wantInactive: []bool{false},
		},
		{
			name:         "only a success inactivates",
			priors:       []prior{{env: "staging", states: []string{"success"}}},
			status:       map[string]any{"state": "in_progress"},
			wantInactive: []bool{false},
		},
		{
			name:         "the environment the status moves the deployment to counts",
			priors:       []prior{{env: "staging", states: []string{"success"}}, {env: "qa", states: []string{"success"}}},
			status:       map[string]any{"state": "success", "environment": "qa"},
			wantInactive: []bool{false, true},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := newRepoServer(t, Options{})
			for _, p := range tt.priors {
				body := map[string]any{"ref": "main", "environment": p.env, "transient_environment": p.transient}
				if p.production != nil {
					body["production_environment"] = *p.production
				}
				d := createDeployment(t, s, body)
				for _, st := range p.states {
					createStatus(t, s, d.ID, map[string]any{"state": st, "auto_inactive": false})
				}
			}
			last := createDeployment(t, s, map[string]any{"ref": "main", "environment": "staging"})
			// A later deployment is not prior: it keeps its success.
			later := createDeployment(t, s, map[string]any{"ref": "main", "environment": "staging"})
			createStatus(t, s, later.ID, map[string]any{"state": "success", "auto_inactive": false})
			createStatus(t, s, last.ID, tt.status)

			deps := s.Deployments("app")
			for i, p := range tt.priors {
				sts := deps[i].Statuses
				got := len(sts) > len(p.states)
				if got != tt.wantInactive[i] {
					t.Errorf("prior %d (%+v): inactivated %v, want %v; statuses %+v", i, p, got, tt.wantInactive[i], sts)
				}
				if got {
					st := sts[len(sts)-1]
					if st.State != "inactive" || !st.Automatic || st.Creator != UserLogin || st.Environment != deps[i].Environment || len(sts) != len(p.states)+1 {
						t.Errorf("prior %d: added %+v", i, st)
					}
				}
			}
			if sts := deps[len(deps)-1].Statuses; len(sts) != 1 || sts[0].State != "success" {
				t.Errorf("later deployment's statuses %+v, want its success alone", sts)
			}
			// The added statuses are listed like any other.
			if i := len(tt.wantInactive) - 1; i >= 0 && tt.wantInactive[i] {
				got := send(t, s, http.MethodGet, fmt.Sprintf("%s/%d/statuses", deploymentsPath(s, "app"), deps[i].ID), nil, nil)
				if list := decodeJSON[[]statusBody](t, got); len(list) == 0 || list[0].State != "inactive" {
					t.Errorf("listed statuses %s, want the inactive one first", got.body)
				}
			}
		})
	}
}

func TestRepoFaults(t *testing.T) {
	s, _ := newRepoServer(t, Options{})
	s.InjectRepoNext(1, EndpointCreateDeploymentStatus, Fault{Status: http.StatusBadGateway})
	s.InjectRepoNext(2, AnyRepoEndpoint, Fault{Status: http.StatusTooManyRequests, Message: SecondaryRateLimitMessage, Header: http.Header{"Retry-After": {"7"}}})
	s.InjectRepoNext(1, EndpointGetCommit, Fault{Delay: 10 * time.Millisecond}) // slow, then normal
	s.FailNext(1, http.StatusInternalServerError)                               // the record endpoint's queue

	steps := []struct {
		name       string
		method     string
		path       string
		body       map[string]any
		mutate     func(*http.Request)
		wantStatus int
	}{
		// The create skips the fault for statuses and takes the first 429.
		{name: "create, 429", method: http.MethodPost, path: deploymentsPath(s, "app"), body: map[string]any{"ref": "main"}, wantStatus: 429},
		// Credentials are checked before any fault.
		{name: "bad credentials", method: http.MethodPost, path: deploymentsPath(s, "app"), body: map[string]any{"ref": "main"},
			mutate: func(r *http.Request) { r.Header.Set("Authorization", "Bearer nope") }, wantStatus: 401},
		{name: "create, 429 again", method: http.MethodPost, path: deploymentsPath(s, "app"), body: map[string]any{"ref": "main"}, wantStatus: 429},
		{name: "create", method: http.MethodPost, path: deploymentsPath(s, "app"), body: map[string]any{"ref": "main"}, wantStatus: 201},
		{name: "status, 502", method: http.MethodPost, path: deploymentsPath(s, "app") + "/1/statuses", body: map[string]any{"state": "success"}, wantStatus: 502},
		{name: "status", method: http.MethodPost, path: deploymentsPath(s, "app") + "/1/statuses", body: map[string]any{"state": "success"}, wantStatus: 201},
		{name: "slow commit", method: http.MethodGet, path: "/repos/octo-org/app/commits/main", wantStatus: 200},
	}
	for _, st := range steps {
		var body any
		if st.body != nil {
			body = st.body
		}
		if got := send(t, s, st.method, st.path, body, st.mutate); got.status != st.wantStatus {
			t.Fatalf("%s: status %d, want %d: %s", st.name, got.status, st.wantStatus, got.body)
		} else if st.wantStatus == 429 && (got.header.Get("Retry-After") != "7" || decodeError(t, got.body).Message != SecondaryRateLimitMessage) {
			t.Errorf("%s: Retry-After %q body %s", st.name, got.header.Get("Retry-After"), got.body)
		}
	}
	if n := len(s.Deployments("app")); n != 1 {
		t.Errorf("%d deployments, want 1", n)
	}
	want := RepoStats{
		Requests: map[RepoEndpoint]int{EndpointCreateDeployment: 4, EndpointCreateDeploymentStatus: 2, EndpointGetCommit: 1},
		Statuses: map[RepoEndpoint]map[int]int{
			EndpointCreateDeployment:       {429: 2, 401: 1, 201: 1},
			EndpointCreateDeploymentStatus: {502: 1, 201: 1},
			EndpointGetCommit:              {200: 1},
		},
	}
	if diff := cmp.Diff(want, s.RepoStats()); diff != "" {
		t.Errorf("RepoStats (-want +got):\n%s", diff)
	}
	// The record endpoint's fault is still queued for it.
	if got := post(t, s, validBody(), nil); got.status != http.StatusInternalServerError {
		t.Errorf("record: status %d, want its injected 500", got.status)
	}

	// Reset clears the repository faults too.
	s.InjectRepoNext(5, AnyRepoEndpoint, Fault{Status: http.StatusServiceUnavailable})
	s.Reset()
	createDeployment(t, s, map[string]any{"ref": "main"})
}

func TestRepoBodyLimit(t *testing.T) {
	s, _ := newRepoServer(t, Options{MaxBodyBytes: 64})
	got := send(t, s, http.MethodPost, deploymentsPath(s, "app"), map[string]any{"ref": "main", "description": strings.Repeat("a", 100)}, nil)
	if got.status != http.StatusRequestEntityTooLarge {
		t.Errorf("status %d, want 413: %s", got.status, got.body)
	}
}

func TestNewValidatesRepos(t *testing.T) {
	tests := []struct {
		name    string
		repos   map[string]Repo
		wantErr string
	}{
		{name: "short SHA", repos: map[string]Repo{"app": {Commits: map[string]Commit{"abc1234": {}}}}, wantErr: "not a SHA"},
		{name: "upper-case SHA", repos: map[string]Repo{"app": {Commits: map[string]Commit{strings.ToUpper(shaMain): {}}}}, wantErr: "not a SHA"},
		{name: "bad parent", repos: map[string]Repo{"app": {Commits: map[string]Commit{shaMain: {Parents: []string{"x"}}}}}, wantErr: "parent"},
		{name: "branch to an unknown commit", repos: map[string]Repo{"app": {Branches: map[string]string{"main": shaMain}}}, wantErr: `branch "main"`},
		{name: "tag to an unknown commit", repos: map[string]Repo{"app": {Tags: map[string]string{"v1": shaTag}, Commits: map[string]Commit{shaMain: {}}}}, wantErr: `tag "v1"`},
		{name: "bad branch name", repos: map[string]Repo{"app": {Branches: map[string]string{"a b": shaMain}, Commits: map[string]Commit{shaMain: {}}}}, wantErr: "not a valid branch name"},
		{name: "bad repository name", repos: map[string]Repo{"octo-org/app": {}}, wantErr: "repository name"},
		{name: "names differing in case", repos: map[string]Repo{"app": {}, "App": {}}, wantErr: "case-insensitive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := New(Options{Repos: tt.repos})
			if err == nil {
				s.Close()
				t.Fatal("New accepted the repositories")
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q does not contain %q", err, tt.wantErr)
			}
		})
	}
}

func TestChangeRepos(t *testing.T) {
	repos := testRepos()
	s, _ := newRepoServer(t, Options{Repos: repos})
	repos["app"].Branches["main"] = shaTag // the server copied the options
	const shaNew = "1234567890abcdef1234567890abcdef12345678"

	if err := s.SetBranch("app", "main", shaNew); err == nil {
		t.Error("SetBranch to an unknown commit succeeded")
	}
	if err := s.AddCommit("nope", shaNew, Commit{}); err == nil {
		t.Error("AddCommit to an unknown repository succeeded")
	}
	if err := s.AddCommit("App", shaNew, Commit{Message: "Next", Parents: []string{shaMain}}); err != nil {
		t.Fatal(err)
	}
	if d := createDeployment(t, s, map[string]any{"ref": "main"}); d.SHA != shaMain {
		t.Errorf("main deployed %s before it moved, want %s", d.SHA, shaMain)
	}
	if err := s.SetBranch("app", "main", shaNew); err != nil {
		t.Fatal(err)
	}
	if err := s.SetTag("app", "v2.0.0", shaNew); err != nil {
		t.Fatal(err)
	}
	for _, ref := range []string{"main", "v2.0.0", shaNew[:7]} {
		if d := createDeployment(t, s, map[string]any{"ref": ref}); d.SHA != shaNew {
			t.Errorf("%s deployed %s, want %s", ref, d.SHA, shaNew)
		}
	}
	if err := s.AddRepo("APP", Repo{}); err == nil {
		t.Error("AddRepo of an existing name succeeded")
	}
	if err := s.AddRepo("web", Repo{Commits: map[string]Commit{shaNew: {}}, Branches: map[string]string{"main": shaNew}}); err != nil {
		t.Fatal(err)
	}
	if got := send(t, s, http.MethodPost, deploymentsPath(s, "web"), map[string]any{"ref": "main"}, nil); got.status != http.StatusCreated {
		t.Errorf("deploy to the added repository: %d %s", got.status, got.body)
	}
}

func TestWaitForDeployments(t *testing.T) {
	s, _ := newRepoServer(t, Options{})
	done := make(chan error, 1)
	go func() {
		done <- s.WaitForDeployments(t.Context(), "app", func(ds []Deployment) bool {
			return len(ds) == 1 && len(ds[0].Statuses) == 1 && ds[0].Statuses[0].State == "success"
		})
	}()
	d := createDeployment(t, s, map[string]any{"ref": "main"})
	createStatus(t, s, d.ID, map[string]any{"state": "success"})
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("WaitForDeployments did not return")
	}

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := s.WaitForDeployments(ctx, "app", func([]Deployment) bool { return false }); err == nil {
		t.Error("WaitForDeployments with a done context returned nil")
	}
	s.Close()
	if err := s.WaitForDeployments(t.Context(), "app", func([]Deployment) bool { return false }); err == nil {
		t.Error("WaitForDeployments on a closed server returned nil")
	}
}

// The record endpoint takes the v3 media type that go-github sends too.
func TestRecordAcceptsV3MediaType(t *testing.T) {
	s := newServer(t, Options{})
	if got := post(t, s, validBody(), func(r *http.Request) { r.Header.Set("Accept", MediaTypeV3) }); got.status != http.StatusOK {
		t.Errorf("status %d: %s", got.status, got.body)
	}
}

// FuzzDecodeDeployment checks that the validators never panic, and that an accepted deployment has a payload
// that is a JSON object or string.
func FuzzDecodeDeployment(f *testing.F) {
	f.Add([]byte(`{"ref":"main"}`))
	f.Add([]byte(`{"ref":"main","payload":"{\"a\":1}","required_contexts":[],"description":null}`))
	f.Add([]byte(`{"ref":1,"payload":[],"required_contexts":[1]}`))
	f.Add([]byte(`{"state":"success","auto_inactive":false,"environment":"qa"}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, body []byte) {
		_, _, _ = decodeStatus(body)
		req, violations, err := decodeDeployment(body)
		if err != nil || len(violations) > 0 {
			return
		}
		if !json.Valid(req.Payload) || (jsonType(req.Payload) != "object" && jsonType(req.Payload) != "string") {
			t.Errorf("accepted %s with payload %s", body, req.Payload)
		}
	})
}
