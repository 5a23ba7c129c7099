package githubtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/deployment-tracker/deployment-tracker/internal/record"
)

const testCluster = "moda-1"

func clusterPath(s *Server, cluster string) string {
	return "/orgs/" + s.Org() + "/artifacts/metadata/deployment-record/cluster/" + cluster
}

// send makes a request with the headers a correct client sends, then lets mutate change it. body is a map, raw
// bytes, or nil for none.
func send(t *testing.T, s *Server, method, path string, body any, mutate func(*http.Request)) response {
	t.Helper()
	var rd io.Reader
	switch v := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(v)
	default:
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, s.URL()+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", MediaType)
	req.Header.Set("X-GitHub-Api-Version", APIVersion)
	req.Header.Set("User-Agent", "githubtest-test")
	req.Header.Set("Authorization", "Bearer "+testPAT)
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if mutate != nil {
		mutate(req)
	}
	resp, err := s.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	rb, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: rb}
}

// entry is a valid deployments element; n makes its deployment name unique.
func entry(n int) map[string]any {
	return map[string]any{
		"name":              "ghcr.io/octo-org/app",
		"digest":            testDigest,
		"version":           "1.2.3",
		"status":            "deployed",
		"deployment_name":   fmt.Sprintf("default/app-%d/app", n),
		"tags":              map[string]any{"team": "platform"},
		"runtime_risks":     []any{"internet-exposed"},
		"github_repository": "app",
	}
}

func clusterBody(entries ...map[string]any) map[string]any {
	deployments := make([]any, len(entries))
	for i, e := range entries {
		deployments[i] = e
	}
	return map[string]any{
		"logical_environment":  "production",
		"physical_environment": "eu-west-1",
		"deployments":          deployments,
	}
}

// entryRecord is the record the fake should store for e sent to testCluster with clusterBody's environments.
func entryRecord(e map[string]any) record.Record {
	r := record.Record{
		Name: e["name"].(string), Digest: e["digest"].(string), Status: record.StatusDeployed,
		LogicalEnvironment: "production", PhysicalEnvironment: "eu-west-1", Cluster: testCluster,
		DeploymentName: e["deployment_name"].(string),
	}
	if v, ok := e["version"].(string); ok {
		r.Version = v
	}
	if v, ok := e["status"].(string); ok {
		r.Status = record.Status(v)
	}
	if v, ok := e["github_repository"].(string); ok {
		r.GitHubRepository = v
	}
	if tags, ok := e["tags"].(map[string]any); ok {
		r.Tags = map[string]string{}
		for k, v := range tags {
			r.Tags[k] = v.(string)
		}
	}
	if risks, ok := e["runtime_risks"].([]any); ok {
		for _, v := range risks {
			r.RuntimeRisks = append(r.RuntimeRisks, v.(string))
		}
	}
	return r
}

// setAnswer is the decoded 200/207 body of the synchronous endpoint.
type setAnswer struct {
	TotalCount        int                      `json:"total_count"`
	DeploymentRecords []deploymentRecord       `json:"deployment_records"`
	Errors            []map[string]interface{} `json:"errors"`
}

func TestClusterSet(t *testing.T) {
	many := func(n int) []map[string]any {
		out := make([]map[string]any, n)
		for i := range out {
			out[i] = entry(i)
		}
		return out
	}
	tests := []struct {
		name        string
		body        func() map[string]any
		raw         []byte
		cluster     string
		unknown     string // digest made an UnknownArtifact
		wantCode    int
		wantError   string // a substring of the 4xx message
		wantFailed  []int  // indexes of the deployments reported in errors
		wantCause   string // a substring of every cause
		wantRecords bool   // deployment_records returned
		wantStored  int    // records accepted (default: every entry when 200)
	}{
		{name: "valid", body: func() map[string]any { return clusterBody(entry(1), entry(2)) }, wantCode: 200, wantRecords: true, wantStored: 2},
		{name: "status defaults to deployed and optional properties may go", body: func() map[string]any {
			e := entry(1)
			for _, k := range []string{"status", "version", "tags", "runtime_risks", "github_repository"} {
				delete(e, k)
			}
			b := clusterBody(e)
			delete(b, "physical_environment")
			b["return_records"] = false
			return b
		}, wantCode: 200, wantStored: 1},
		{name: "decommissioned", body: func() map[string]any {
			e := entry(1)
			e["status"] = "decommissioned"
			return clusterBody(e)
		}, wantCode: 200, wantRecords: true, wantStored: 1},
		{name: "the cap", body: func() map[string]any {
			b := clusterBody(many(MaxClusterRecords)...)
			b["return_records"] = false
			return b
		},
			wantCode: 200, wantStored: MaxClusterRecords},
		{name: "over the cap", body: func() map[string]any { return clusterBody(many(MaxClusterRecords + 1)...) },
			wantCode: 422, wantError: "1001 items is more than the maximum of 1000"},
		{name: "empty deployments", body: func() map[string]any { return clusterBody() }, wantCode: 200},

		{name: "partial success with an invalid deployment", body: func() map[string]any {
			bad := entry(2)
			bad["digest"] = "sha256:abc"
			b := clusterBody(entry(1), bad, entry(3))
			b["partial_success"] = true
			return b
		}, wantCode: 207, wantFailed: []int{1}, wantCause: "deployments[1]: For 'properties/digest'", wantRecords: true, wantStored: 2},
		{name: "partial success with an unknown artifact", unknown: testDigest2, body: func() map[string]any {
			other := entry(2)
			other["digest"] = testDigest2
			b := clusterBody(entry(1), other)
			b["partial_success"] = true
			return b
		}, wantCode: 207, wantFailed: []int{1}, wantCause: UnknownArtifactMessage, wantRecords: true, wantStored: 1},
		{name: "partial success with a duplicate deployment name", body: func() map[string]any {
			b := clusterBody(entry(1), entry(1))
			b["partial_success"] = true
			return b
		}, wantCode: 207, wantFailed: []int{1}, wantCause: "must be unique", wantRecords: true, wantStored: 1},
		{name: "invalid deployment without partial success", body: func() map[string]any {
			bad := entry(2)
			bad["status"] = "running"
			return clusterBody(entry(1), bad)
		}, wantCode: 422, wantError: "deployments[1]: For 'properties/status'"},
		{name: "unknown artifact without partial success", unknown: testDigest, body: func() map[string]any { return clusterBody(entry(1)) },
			wantCode: 404, wantError: UnknownArtifactMessage},
		{name: "deployment with a cluster", body: func() map[string]any {
			e := entry(1)
			e["cluster"] = "other"
			return clusterBody(e)
		}, wantCode: 422, wantError: "deployments[0]: For 'properties/cluster', the property is not in the schema"},
		{name: "deployment without deployment_name", body: func() map[string]any {
			e := entry(1)
			delete(e, "deployment_name")
			return clusterBody(e)
		}, wantCode: 422, wantError: `deployments[0]: "deployment_name" wasn't supplied`},
		{name: "deployment not an object", body: func() map[string]any {
			b := clusterBody()
			b["deployments"] = []any{"x"}
			return b
		}, wantCode: 422, wantError: `deployments[0]: "x" is not an object`},

		{name: "malformed JSON", raw: []byte(`{"deployments":`), wantCode: 400, wantError: "Problems parsing JSON"},
		{name: "logical_environment missing", body: func() map[string]any { b := clusterBody(entry(1)); delete(b, "logical_environment"); return b },
			wantCode: 422, wantError: `"logical_environment" wasn't supplied`},
		{name: "deployments missing", body: func() map[string]any { b := clusterBody(); delete(b, "deployments"); return b },
			wantCode: 422, wantError: `"deployments" wasn't supplied`},
		{name: "deployments not an array", body: func() map[string]any { b := clusterBody(); b["deployments"] = map[string]any{}; return b },
			wantCode: 422, wantError: "'properties/deployments', {} is not an array"},
		{name: "logical_environment too long", body: func() map[string]any {
			b := clusterBody(entry(1))
			b["logical_environment"] = strings.Repeat("é", 129)
			return b
		}, wantCode: 422, wantError: "'properties/logical_environment'"},
		{name: "cluster too long", cluster: strings.Repeat("c", 129), body: func() map[string]any { return clusterBody(entry(1)) },
			wantCode: 422, wantError: "'properties/cluster'"},
		{name: "unknown property", body: func() map[string]any { b := clusterBody(entry(1)); b["cluster"] = "x"; return b },
			wantCode: 422, wantError: "'properties/cluster', the property is not in the schema"},
		{name: "partial_success not a boolean", body: func() map[string]any { b := clusterBody(entry(1)); b["partial_success"] = "yes"; return b },
			wantCode: 422, wantError: "is not a boolean"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newServer(t, Options{})
			if tt.unknown != "" {
				s.UnknownArtifact("", tt.unknown)
			}
			cluster := tt.cluster
			if cluster == "" {
				cluster = testCluster
			}
			var body any = tt.raw
			var sent map[string]any
			if tt.raw == nil {
				sent = tt.body()
				body = sent
			}
			got := send(t, s, http.MethodPost, clusterPath(s, cluster), body, nil)
			if got.status != tt.wantCode {
				t.Fatalf("status = %d, want %d; body %.500s", got.status, tt.wantCode, got.body)
			}
			if got.status >= 400 {
				e := decodeError(t, got.body)
				if !strings.Contains(e.Message, tt.wantError) {
					t.Errorf("message %q does not contain %q", e.Message, tt.wantError)
				}
				if e.DocumentationURL != clusterDocsURL {
					t.Errorf("documentation_url = %q", e.DocumentationURL)
				}
				if n := len(s.Accepted()); n != 0 {
					t.Errorf("accepted %d records, want 0", n)
				}
				return
			}
			var answer setAnswer
			if err := json.Unmarshal(got.body, &answer); err != nil {
				t.Fatal(err)
			}
			if answer.TotalCount != tt.wantStored {
				t.Errorf("total_count = %d, want %d", answer.TotalCount, tt.wantStored)
			}
			if n := len(answer.DeploymentRecords); (n > 0) != tt.wantRecords || (tt.wantRecords && n != tt.wantStored) {
				t.Errorf("%d deployment_records; want returned: %t", n, tt.wantRecords)
			}
			deployments := sent["deployments"].([]any)
			var failed, wantFailed []string
			for _, e := range answer.Errors {
				failed = append(failed, e["deployment_name"].(string))
				if c, _ := e["cause"].(string); !strings.Contains(c, tt.wantCause) {
					t.Errorf("cause %q does not contain %q", c, tt.wantCause)
				}
				if e["cluster"] != cluster || e["logical_environment"] != "production" || e["physical_environment"] != "eu-west-1" {
					t.Errorf("error %v does not carry the request's cluster and environments", e)
				}
			}
			for _, i := range tt.wantFailed {
				wantFailed = append(wantFailed, deployments[i].(map[string]any)["deployment_name"].(string))
			}
			if diff := cmp.Diff(wantFailed, failed); diff != "" {
				t.Errorf("failed deployments (-want +got):\n%s", diff)
			}

			var want []record.Record
			for i, e := range deployments {
				if slices.Contains(tt.wantFailed, i) {
					continue
				}
				r := entryRecord(e.(map[string]any))
				if _, ok := sent["physical_environment"]; !ok {
					r.PhysicalEnvironment = ""
				}
				want = append(want, r)
			}
			if diff := cmp.Diff(want, s.Accepted(), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("Accepted (-want +got):\n%s", diff)
			}
		})
	}
}

// TestClusterSetUpserts checks that cluster requests and single posts share one store, and that a cluster request
// leaves the cluster's records it does not name alone.
func TestClusterSetUpserts(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	s := newServer(t, Options{OnAccept: func(r record.Record) {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, r.DeploymentName)
	}})
	single := validBody()
	single["deployment_name"] = "default/app-9/app"
	if got := post(t, s, single, nil); got.status != 200 {
		t.Fatalf("single post: %d %s", got.status, got.body)
	}
	changed := entry(9)
	changed["digest"], changed["version"] = testDigest2, "2.0.0"
	for i, body := range []map[string]any{clusterBody(entry(1), entry(2)), clusterBody(entry(2), changed)} {
		if got := send(t, s, http.MethodPost, clusterPath(s, testCluster), body, nil); got.status != 200 {
			t.Fatalf("cluster request %d: %d %s", i, got.status, got.body)
		}
	}
	want := map[record.Key]record.Record{}
	for _, e := range []map[string]any{entry(1), entry(2), changed} {
		r := entryRecord(e)
		want[r.Key()] = r
	}
	if diff := cmp.Diff(want, s.Current()); diff != "" {
		t.Errorf("Current (-want +got):\n%s", diff)
	}
	mu.Lock()
	defer mu.Unlock()
	if diff := cmp.Diff([]string{"default/app-9/app", "default/app-1/app", "default/app-2/app", "default/app-2/app", "default/app-9/app"}, seen); diff != "" {
		t.Errorf("OnAccept (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(ClusterStats{Sets: 2, Statuses: map[int]int{200: 2}}, s.ClusterStats()); diff != "" {
		t.Errorf("ClusterStats (-want +got):\n%s", diff)
	}
	if s.Calls() != 1 {
		t.Errorf("Calls = %d, want 1: the record endpoint only", s.Calls())
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := s.WaitFor(ctx, func(a []record.Record) bool { return len(a) == 5 }); err != nil {
		t.Fatal(err)
	}
}

func TestClusterRequestChecks(t *testing.T) {
	tests := []struct {
		name       string
		method     string
		path       func(s *Server) string
		mutate     func(*http.Request)
		inject     func(s *Server)
		wantStatus int
		wantMsg    string
	}{
		{name: "valid", wantStatus: 200},
		{name: "no credentials", mutate: func(r *http.Request) { r.Header.Del("Authorization") }, wantStatus: 401, wantMsg: "Requires authentication"},
		{name: "wrong token", mutate: func(r *http.Request) { r.Header.Set("Authorization", "Bearer nope") }, wantStatus: 401, wantMsg: "Bad credentials"},
		{name: "no User-Agent", mutate: func(r *http.Request) { r.Header.Set("User-Agent", "") }, wantStatus: 403},
		{name: "wrong Accept", mutate: func(r *http.Request) { r.Header.Set("Accept", "text/html") }, wantStatus: 415},
		{name: "no API version", mutate: func(r *http.Request) { r.Header.Del("X-GitHub-Api-Version") }, wantStatus: 400},
		{name: "GET", method: http.MethodGet, wantStatus: 404},
		{name: "other organization", path: func(*Server) string {
			return "/orgs/other/artifacts/metadata/deployment-record/cluster/" + testCluster
		}, wantStatus: 404},
		{name: "organization in another case", path: func(s *Server) string {
			return "/orgs/" + strings.ToUpper(s.Org()) + "/artifacts/metadata/deployment-record/cluster/" + testCluster
		}, wantStatus: 200},
		{name: "injected 503", inject: func(s *Server) { s.FailNext(1, 503) }, wantStatus: 503},
		{name: "injected 429", inject: func(s *Server) { s.TooManyRequestsNext(1, time.Minute) }, wantStatus: 429, wantMsg: "secondary rate limit"},
		{name: "faults come after authentication", inject: func(s *Server) { s.FailNext(1, 503) },
			mutate: func(r *http.Request) { r.Header.Del("Authorization") }, wantStatus: 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newServer(t, Options{})
			if tt.inject != nil {
				tt.inject(s)
			}
			method, path := http.MethodPost, clusterPath(s, testCluster)
			if tt.method != "" {
				method = tt.method
			}
			if tt.path != nil {
				path = tt.path(s)
			}
			got := send(t, s, method, path, clusterBody(entry(1)), tt.mutate)
			if got.status != tt.wantStatus {
				t.Fatalf("status = %d, want %d: %s", got.status, tt.wantStatus, got.body)
			}
			if tt.wantMsg != "" && !strings.Contains(decodeError(t, got.body).Message, tt.wantMsg) {
				t.Errorf("message %s does not contain %q", got.body, tt.wantMsg)
			}
			if wantStored := map[bool]int{true: 1}[got.status == 200]; len(s.Accepted()) != wantStored {
				t.Errorf("accepted %d records, want %d", len(s.Accepted()), wantStored)
			}
			if st := s.ClusterStats(); st.Sets != 1 || st.Statuses[tt.wantStatus] != 1 {
				t.Errorf("ClusterStats = %+v", st)
			}
			if tt.inject != nil && tt.wantStatus != 401 {
				// The fault was for one request.
				if got := send(t, s, method, path, clusterBody(entry(1)), tt.mutate); got.status != 200 {
					t.Errorf("second request: status %d", got.status)
				}
			}
		})
	}
}

// jobAnswer is the decoded body of the job endpoints.
type jobAnswer struct {
	JobID      int64      `json:"job_id"`
	Status     string     `json:"status"`
	StartedAt  string     `json:"started_at"`
	TotalCount *int       `json:"total_count"`
	Errors     []jobError `json:"errors"`
}

func decodeJob(t *testing.T, got response) jobAnswer {
	t.Helper()
	var a jobAnswer
	if err := json.Unmarshal(got.body, &a); err != nil {
		t.Fatalf("job answer %s: %v", got.body, err)
	}
	return a
}

func TestClusterJob(t *testing.T) {
	s := newServer(t, Options{})
	s.SetJobPolls(1)
	s.UnknownArtifact("", testDigest2)
	jobs := clusterPath(s, testCluster) + "/jobs"
	poll := func(id int64) (int, jobAnswer) {
		t.Helper()
		got := send(t, s, http.MethodGet, fmt.Sprintf("%s/%d", jobs, id), nil, nil)
		if got.status != 200 {
			return got.status, jobAnswer{}
		}
		return got.status, decodeJob(t, got)
	}

	unknown := entry(2)
	unknown["digest"] = testDigest2
	invalid := entry(3)
	invalid["digest"] = "sha256:abc"
	got := send(t, s, http.MethodPost, jobs, clusterBody(entry(1), unknown, invalid, entry(4)), nil)
	if got.status != http.StatusAccepted {
		t.Fatalf("create: status %d: %s", got.status, got.body)
	}
	created := decodeJob(t, got)
	if created.JobID != 1 {
		t.Errorf("job_id = %d, want 1", created.JobID)
	}
	if len(created.Errors) != 2 || created.Errors[0].Name != "ghcr.io/octo-org/app" || created.Errors[0].Cause != UnknownArtifactMessage ||
		!strings.Contains(created.Errors[1].Cause, "'properties/digest'") {
		t.Errorf("rejected deployments = %+v", created.Errors)
	}

	// One job per cluster at a time; other clusters are independent.
	if got := send(t, s, http.MethodPost, jobs, clusterBody(entry(5)), nil); got.status != http.StatusConflict {
		t.Errorf("second job for the cluster: status %d, want 409", got.status)
	}
	other := send(t, s, http.MethodPost, clusterPath(s, "moda-2")+"/jobs", clusterBody(entry(5)), nil)
	if other.status != http.StatusAccepted {
		t.Errorf("job for another cluster: status %d, want 202", other.status)
	}
	if code, _ := poll(decodeJob(t, other).JobID); code != 404 {
		t.Errorf("the other cluster's job under this cluster: status %d, want 404", code)
	}

	if code, a := poll(created.JobID); code != 200 || a.Status != JobProcessing || a.StartedAt == "" || a.TotalCount != nil {
		t.Errorf("first poll: %d %+v, want processing", code, a)
	}
	if len(s.Accepted()) != 0 {
		t.Errorf("records applied before the job completed")
	}
	code, done := poll(created.JobID)
	if code != 200 || done.Status != JobCompleted || done.TotalCount == nil || *done.TotalCount != 2 {
		t.Errorf("second poll: %d %+v, want completed with 2", code, done)
	}
	if diff := cmp.Diff([]record.Record{entryRecord(entry(1)), entryRecord(entry(4))}, s.Accepted()); diff != "" {
		t.Errorf("Accepted (-want +got):\n%s", diff)
	}
	if code, again := poll(created.JobID); code != 200 || again.Status != JobCompleted || len(s.Accepted()) != 2 {
		t.Errorf("poll after completion: %d %+v", code, again)
	}

	// A finished job frees the cluster; a failed job applies nothing.
	s.FailJobs(1)
	s.SetJobPolls(0)
	got = send(t, s, http.MethodPost, jobs, clusterBody(entry(6)), nil)
	if got.status != http.StatusAccepted {
		t.Fatalf("job after completion: status %d: %s", got.status, got.body)
	}
	if code, failed := poll(decodeJob(t, got).JobID); code != 200 || failed.Status != JobFailed || len(failed.Errors) != 1 || failed.Errors[0].Cause != JobFailedMessage {
		t.Errorf("failed job: %d %+v", code, failed)
	}
	if len(s.Accepted()) != 2 {
		t.Errorf("a failed job applied records")
	}

	if code, _ := poll(99); code != 404 {
		t.Errorf("unknown job: status %d, want 404", code)
	}
	if got := send(t, s, http.MethodGet, jobs+"/x", nil, nil); got.status != 404 {
		t.Errorf("job id not a number: status %d, want 404", got.status)
	}
	if got := send(t, s, http.MethodPost, fmt.Sprintf("%s/%d", jobs, created.JobID), nil, nil); got.status != 404 {
		t.Errorf("POST to a job: status %d, want 404", got.status)
	}
	if st := s.ClusterStats(); st.Jobs != 4 || st.Polls != 8 || st.Statuses[409] != 1 {
		t.Errorf("ClusterStats = %+v", st)
	}
}

func TestClusterJobBody(t *testing.T) {
	many := make([]map[string]any, MaxClusterJobRecords+1)
	for i := range many {
		many[i] = map[string]any{"name": "app", "digest": testDigest, "deployment_name": fmt.Sprint(i)}
	}
	tests := []struct {
		name      string
		body      map[string]any
		wantCode  int
		wantError string
	}{
		{name: "the cap", body: clusterBody(many[:MaxClusterJobRecords]...), wantCode: 202},
		{name: "over the cap", body: clusterBody(many...), wantCode: 422, wantError: "5001 items is more than the maximum of 5000"},
		{name: "partial_success is not documented for jobs", body: func() map[string]any {
			b := clusterBody(entry(1))
			b["partial_success"] = true
			return b
		}(), wantCode: 422, wantError: "'properties/partial_success', the property is not in the schema"},
		{name: "logical_environment missing", body: func() map[string]any {
			b := clusterBody(entry(1))
			delete(b, "logical_environment")
			return b
		}(), wantCode: 422, wantError: `"logical_environment" wasn't supplied`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newServer(t, Options{})
			got := send(t, s, http.MethodPost, clusterPath(s, testCluster)+"/jobs", tt.body, nil)
			if got.status != tt.wantCode {
				t.Fatalf("status = %d, want %d: %.300s", got.status, tt.wantCode, got.body)
			}
			if tt.wantError != "" {
				if e := decodeError(t, got.body); !strings.Contains(e.Message, tt.wantError) || e.DocumentationURL != jobDocsURL {
					t.Errorf("error %+v, want message containing %q", e, tt.wantError)
				}
			}
		})
	}
}

func TestClusterJobFaults(t *testing.T) {
	s := newServer(t, Options{})
	jobs := clusterPath(s, testCluster) + "/jobs"
	s.FailNext(1, 502)
	if got := send(t, s, http.MethodPost, jobs, clusterBody(entry(1)), nil); got.status != 502 {
		t.Fatalf("create with a fault: status %d, want 502", got.status)
	}
	got := send(t, s, http.MethodPost, jobs, clusterBody(entry(1)), nil)
	if got.status != 202 {
		t.Fatalf("create: status %d", got.status)
	}
	status := fmt.Sprintf("%s/%d", jobs, decodeJob(t, got).JobID)
	s.TooManyRequestsNext(1, 30*time.Second)
	if got := send(t, s, http.MethodGet, status, nil, nil); got.status != 429 || got.header.Get("Retry-After") != "30" {
		t.Fatalf("poll with a fault: status %d, Retry-After %q", got.status, got.header.Get("Retry-After"))
	}
	if len(s.Accepted()) != 0 {
		t.Errorf("a refused poll advanced the job")
	}
	if a := decodeJob(t, send(t, s, http.MethodGet, status, nil, nil)); a.Status != JobCompleted {
		t.Errorf("poll: %+v", a)
	}
}

func FuzzDecodeCluster(f *testing.F) {
	for _, b := range []map[string]any{
		clusterBody(entry(1), entry(2)),
		clusterBody(),
		{"logical_environment": "p", "deployments": []any{1, "x", nil, map[string]any{"name": 3}}},
	} {
		data, err := json.Marshal(b)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data, testCluster, false)
	}
	f.Add([]byte(`{"deployments":[{}],"logical_environment":""}`), "", true)
	f.Fuzz(func(t *testing.T, body []byte, cluster string, job bool) {
		req, violations, err := decodeCluster(body, cluster, job)
		if err != nil || len(violations) > 0 {
			return
		}
		for _, e := range req.entries {
			if len(e.violations) > 0 {
				continue
			}
			// A deployment that passes is a record the record endpoint accepts.
			b, err := json.Marshal(e.rec)
			if err != nil {
				t.Fatal(err)
			}
			if _, v, err := decodeRecord(b); err != nil || len(v) > 0 {
				t.Errorf("deployment %+v accepted, but as a record: %v %v", e.rec, err, v)
			}
		}
	})
}
