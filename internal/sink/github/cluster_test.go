package github

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
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

// fastPolls is the tuning of the tests: the real caps, polls without waiting.
var fastPolls = clusterTuning{
	syncMax: MaxClusterRecords, jobMax: MaxClusterJobRecords,
	pollFirst: time.Millisecond, pollMax: 5 * time.Millisecond, jobTimeout: time.Minute,
}

// clusterRecords returns n valid records of cluster, each of its own artifact and deployment.
func clusterRecords(n int, cluster string) []record.Record {
	out := make([]record.Record, n)
	for i := range out {
		r := testRecord()
		r.Name = fmt.Sprintf("ghcr.io/octo-org/app-%d", i)
		r.Digest = fmt.Sprintf("sha256:%064x", i+1)
		r.DeploymentName = fmt.Sprintf("default/app-%d/app", i)
		r.Cluster = cluster
		out[i] = r
	}
	return out
}

func newClusterSink(t *testing.T, gh *githubtest.Server) *Sink {
	t.Helper()
	s, err := New(Config{BaseURL: gh.URL(), Org: gh.Org(), Token: secretToken, Now: func() time.Time { return fixedNow }})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// checkResults compares results with want (index → outcome; absent indexes must be nil).
func checkResults(t *testing.T, results []error, n int, want map[int]wantErr) {
	t.Helper()
	if len(results) != n {
		t.Fatalf("%d results for %d records", len(results), n)
	}
	for i, err := range results {
		w, ok := want[i]
		if !ok {
			if err != nil {
				t.Errorf("result %d: %v, want nil", i, err)
			}
			continue
		}
		got := describe(err)
		if !strings.Contains(got.Message, w.Message) {
			t.Errorf("result %d: message %q does not contain %q", i, got.Message, w.Message)
		}
		got.Message = w.Message
		if diff := cmp.Diff(w, got); diff != "" {
			t.Errorf("result %d (-want +got):\n%s\nerror: %v", i, diff, err)
		}
		if err != nil && strings.Contains(err.Error(), secretToken) {
			t.Errorf("result %d contains the token", i)
		}
	}
}

// every returns want for each index in [from, to).
func every(from, to int, w wantErr) map[int]wantErr {
	m := make(map[int]wantErr, to-from)
	for i := from; i < to; i++ {
		m[i] = w
	}
	return m
}

func currentOf(recs []record.Record) map[record.Key]record.Record {
	m := make(map[record.Key]record.Record, len(recs))
	for _, r := range recs {
		m[r.Key()] = r
	}
	return m
}

func TestPostClusterAgainstFake(t *testing.T) {
	tests := []struct {
		name      string
		recs      func() []record.Record
		wantSets  int
		wantStats map[int]int
	}{
		{name: "one cluster", recs: func() []record.Record { return clusterRecords(3, "moda-1") }, wantSets: 1, wantStats: map[int]int{200: 1}},
		{name: "2,500 records make 3 requests", recs: func() []record.Record { return clusterRecords(2500, "moda-1") }, wantSets: 3, wantStats: map[int]int{200: 3}},
		{name: "the cap makes 1 request", recs: func() []record.Record { return clusterRecords(MaxClusterRecords, "moda-1") }, wantSets: 1, wantStats: map[int]int{200: 1}},
		{name: "a group per cluster and environments", recs: func() []record.Record {
			recs := clusterRecords(6, "moda-1")
			recs[1].Cluster = "moda-2"
			recs[2].PhysicalEnvironment = ""
			recs[3].LogicalEnvironment = "staging"
			recs[4].Status = record.StatusDecommissioned
			recs[5].Version, recs[5].Tags, recs[5].RuntimeRisks, recs[5].GitHubRepository = "", nil, nil, "app"
			return recs
		}, wantSets: 4, wantStats: map[int]int{200: 4}},
		{name: "nothing to send", recs: func() []record.Record { return nil }, wantStats: map[int]int{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gh := newFake(t, githubtest.Options{Tokens: []string{secretToken}})
			s := newClusterSink(t, gh)
			recs := tt.recs()
			results, err := s.PostCluster(t.Context(), recs)
			if err != nil {
				t.Fatalf("PostCluster: %v", err)
			}
			checkResults(t, results, len(recs), nil)
			if diff := cmp.Diff(currentOf(recs), gh.Current()); diff != "" {
				t.Errorf("current (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(githubtest.ClusterStats{Sets: tt.wantSets, Statuses: tt.wantStats}, gh.ClusterStats()); diff != "" {
				t.Errorf("cluster requests (-want +got):\n%s", diff)
			}
			if gh.Calls() != 0 {
				t.Errorf("%d single posts", gh.Calls())
			}
		})
	}
}

func TestPostClusterPartialSuccess(t *testing.T) {
	gh := newFake(t, githubtest.Options{Tokens: []string{secretToken}})
	s := newClusterSink(t, gh)
	recs := clusterRecords(5, "moda-1")
	gh.UnknownArtifact("", recs[1].Digest)
	recs[3].Tags = map[string]string{"a": "1", "b": "2", "c": "3", "d": "4", "e": "5", "f": "6"}
	noCluster := recs[4]
	noCluster.Cluster = ""
	recs = append(recs, noCluster, recs[0]) // 5: no cluster, 6: the key of 0 again

	results, err := s.PostCluster(t.Context(), recs)
	if err != nil {
		t.Fatalf("PostCluster: %v", err)
	}
	checkResults(t, results, len(recs), map[int]wantErr{
		1: {Class: sink.ClassNotFound, Message: githubtest.UnknownArtifactMessage},
		3: {Class: sink.ClassPermanent, StatusCode: 422, Message: "'properties/tags'"},
		5: {Class: sink.ClassRetryable, Message: "record has no cluster"},
		6: {Class: sink.ClassRetryable, Message: "same key"},
	})
	if !errors.Is(results[5], ErrNoCluster) || !errors.Is(results[6], ErrDuplicateKey) {
		t.Errorf("results 5 and 6 = %v, %v", results[5], results[6])
	}
	if diff := cmp.Diff(currentOf([]record.Record{recs[0], recs[2], recs[4]}), gh.Current()); diff != "" {
		t.Errorf("current (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[int]int{207: 1}, gh.ClusterStats().Statuses); diff != "" {
		t.Errorf("statuses (-want +got):\n%s", diff)
	}

	// The failed records can then be posted one by one, as the dispatcher does, and classify alike.
	for i, want := range map[int]wantErr{
		1: {Class: sink.ClassNotFound, Message: githubtest.UnknownArtifactMessage},
		3: {Class: sink.ClassPermanent, StatusCode: 422, Message: "'properties/tags'"},
	} {
		checkErr(t, s.Post(t.Context(), recs[i]), want)
	}
	if err := s.Post(t.Context(), recs[5]); err != nil {
		t.Errorf("Post of the record without a cluster: %v", err)
	}
}

func TestPostClusterBulkFailures(t *testing.T) {
	reset := time.Unix(1893560645, 0)
	tests := []struct {
		name    string
		n       int
		inject  func(gh *githubtest.Server)
		org     string
		want    wantErr // of err and of the records not delivered
		wantOK  int     // records delivered, the first ones
		wantSet int     // requests
	}{
		{name: "503", n: 10, inject: func(gh *githubtest.Server) { gh.FailNext(1, 503) },
			want: wantErr{Class: sink.ClassRetryable, Message: "status 503"}, wantSet: 1},
		{name: "429", n: 10, inject: func(gh *githubtest.Server) { gh.TooManyRequestsNext(1, 30*time.Second) },
			want: wantErr{Class: sink.ClassRetryAfter, StatusCode: 429, At: fixedNow.Add(30 * time.Second), Message: "secondary rate limit"}, wantSet: 1},
		{name: "primary rate limit", n: 10, inject: func(gh *githubtest.Server) { gh.PrimaryRateLimitNext(1, reset) },
			want: wantErr{Class: sink.ClassRetryAfter, StatusCode: 403, At: reset, Message: "API rate limit exceeded"}, wantSet: 1},
		{name: "permission 403", n: 10, inject: func(gh *githubtest.Server) {
			gh.InjectNext(1, githubtest.Fault{Status: 403, Message: "Resource not accessible by integration"})
		}, want: wantErr{Class: sink.ClassCredentials, StatusCode: 403, Message: "Resource not accessible"}, wantSet: 1},
		{name: "404 is about the request, not an artifact", n: 10, org: "other-org",
			want: wantErr{Class: sink.ClassPermanent, StatusCode: 404, Message: "Not Found"}, wantSet: 1},
		{name: "the second of three requests fails, the third is not sent", n: 2500, inject: func(gh *githubtest.Server) {
			gh.InjectNext(1, githubtest.Fault{}) // the first passes
			gh.FailNext(1, 502)
		}, want: wantErr{Class: sink.ClassRetryable, Message: "status 502"}, wantOK: MaxClusterRecords, wantSet: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gh := newFake(t, githubtest.Options{Tokens: []string{secretToken}})
			if tt.inject != nil {
				tt.inject(gh)
			}
			org := gh.Org()
			if tt.org != "" {
				org = tt.org
			}
			s, err := New(Config{BaseURL: gh.URL(), Org: org, Token: secretToken, Now: func() time.Time { return fixedNow }})
			if err != nil {
				t.Fatal(err)
			}
			recs := clusterRecords(tt.n, "moda-1")
			results, err := s.PostCluster(t.Context(), recs)
			checkErr(t, err, tt.want)
			checkResults(t, results, len(recs), every(tt.wantOK, tt.n, tt.want))
			for _, r := range results[tt.wantOK:] {
				if !errors.Is(r, err) {
					t.Fatalf("result %v does not wrap %v", r, err)
				}
			}
			if diff := cmp.Diff(currentOf(recs[:tt.wantOK]), gh.Current()); diff != "" {
				t.Errorf("current (-want +got):\n%s", diff)
			}
			if got := gh.ClusterStats().Sets; got != tt.wantSet {
				t.Errorf("%d requests, want %d", got, tt.wantSet)
			}
		})
	}
}

func TestPostClusterJobs(t *testing.T) {
	t.Run("6,001 records make two jobs", func(t *testing.T) {
		gh := newFake(t, githubtest.Options{Tokens: []string{secretToken}})
		gh.SetJobPolls(2)
		s := newClusterSink(t, gh)
		recs := clusterRecords(MaxClusterJobRecords+1001, "moda-1")
		results, err := s.postCluster(t.Context(), recs, fastPolls)
		if err != nil {
			t.Fatalf("postCluster: %v", err)
		}
		checkResults(t, results, len(recs), nil)
		if got := len(gh.Current()); got != len(recs) {
			t.Errorf("%d current records, want %d", got, len(recs))
		}
		if diff := cmp.Diff(githubtest.ClusterStats{Jobs: 2, Polls: 6, Statuses: map[int]int{202: 2, 200: 6}}, gh.ClusterStats()); diff != "" {
			t.Errorf("cluster requests (-want +got):\n%s", diff)
		}
	})

	small := clusterTuning{syncMax: 2, jobMax: 3, pollFirst: time.Millisecond, pollMax: 2 * time.Millisecond, jobTimeout: time.Minute}
	tests := []struct {
		name      string
		n         int
		setup     func(gh *githubtest.Server, recs []record.Record)
		tune      *clusterTuning
		want      map[int]wantErr
		wantErr   wantErr
		wantOK    []int // the records GitHub stores
		wantStats githubtest.ClusterStats
	}{
		{name: "balanced jobs", n: 7, wantOK: []int{0, 1, 2, 3, 4, 5, 6},
			wantStats: githubtest.ClusterStats{Jobs: 3, Polls: 3, Statuses: map[int]int{202: 3, 200: 3}}},
		{name: "rejected deployments", n: 4, setup: func(gh *githubtest.Server, recs []record.Record) {
			gh.UnknownArtifact("", recs[2].Digest)
		}, want: map[int]wantErr{2: {Class: sink.ClassNotFound, Message: githubtest.UnknownArtifactMessage}},
			wantOK: []int{0, 1, 3}, wantStats: githubtest.ClusterStats{Jobs: 2, Polls: 2, Statuses: map[int]int{202: 2, 200: 2}}},
		{name: "a rejection by artifact name fails every record of that name", n: 4, setup: func(gh *githubtest.Server, recs []record.Record) {
			recs[3].Name = recs[2].Name
			gh.UnknownArtifact("", recs[2].Digest)
		}, want: map[int]wantErr{
			2: {Class: sink.ClassNotFound, Message: githubtest.UnknownArtifactMessage},
			3: {Class: sink.ClassNotFound, Message: githubtest.UnknownArtifactMessage},
			// GitHub stored 3; reporting it failed only makes the caller post it again.
		}, wantOK: []int{0, 1, 3}, wantStats: githubtest.ClusterStats{Jobs: 2, Polls: 2, Statuses: map[int]int{202: 2, 200: 2}}},
		{name: "failed job", n: 4, setup: func(gh *githubtest.Server, _ []record.Record) { gh.FailJobs(1) },
			wantErr:   wantErr{Class: sink.ClassRetryable, Message: "job 1 failed: " + githubtest.JobFailedMessage},
			want:      every(0, 4, wantErr{Class: sink.ClassRetryable, Message: "job 1 failed"}),
			wantStats: githubtest.ClusterStats{Jobs: 1, Polls: 1, Statuses: map[int]int{202: 1, 200: 1}}},
		{name: "409 while a job of the cluster runs is retryable", n: 4, setup: func(gh *githubtest.Server, _ []record.Record) {
			gh.SetJobPolls(1000)
			startJob(t, gh, "moda-1")
		}, wantErr: wantErr{Class: sink.ClassRetryable, Message: "status 409: A job (1) is already in progress"},
			want:      every(0, 4, wantErr{Class: sink.ClassRetryable, Message: "status 409"}),
			wantStats: githubtest.ClusterStats{Jobs: 2, Statuses: map[int]int{202: 1, 409: 1}}},
		{name: "poll refused", n: 4, setup: func(gh *githubtest.Server, _ []record.Record) {
			gh.InjectNext(1, githubtest.Fault{}) // the creation passes
			gh.FailNext(1, 503)
		}, wantErr: wantErr{Class: sink.ClassRetryable, Message: "poll job 1: status 503"},
			want:      every(0, 4, wantErr{Class: sink.ClassRetryable, Message: "status 503"}),
			wantStats: githubtest.ClusterStats{Jobs: 1, Polls: 1, Statuses: map[int]int{202: 1, 503: 1}}},
		{name: "job not done in time", n: 4, setup: func(gh *githubtest.Server, _ []record.Record) { gh.SetJobPolls(1 << 30) },
			tune:    &clusterTuning{syncMax: 2, jobMax: 3, pollFirst: time.Millisecond, pollMax: time.Millisecond, jobTimeout: 50 * time.Millisecond},
			wantErr: wantErr{Class: sink.ClassRetryable, Message: "job 1"},
			want:    every(0, 4, wantErr{Class: sink.ClassRetryable, Message: "job 1"})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gh := newFake(t, githubtest.Options{Tokens: []string{secretToken}})
			s := newClusterSink(t, gh)
			recs := clusterRecords(tt.n, "moda-1")
			if tt.setup != nil {
				tt.setup(gh, recs)
			}
			tune := small
			if tt.tune != nil {
				tune = *tt.tune
			}
			results, err := s.postCluster(t.Context(), recs, tune)
			checkErr(t, err, tt.wantErr)
			checkResults(t, results, len(recs), tt.want)
			var ok []record.Record
			for _, i := range tt.wantOK {
				ok = append(ok, recs[i])
			}
			if diff := cmp.Diff(currentOf(ok), gh.Current()); diff != "" {
				t.Errorf("current (-want +got):\n%s", diff)
			}
			if tt.wantStats.Statuses != nil {
				if diff := cmp.Diff(tt.wantStats, gh.ClusterStats()); diff != "" {
					t.Errorf("cluster requests (-want +got):\n%s", diff)
				}
			}
		})
	}
}

// startJob starts a job of cluster on gh directly, leaving it running.
func startJob(t *testing.T, gh *githubtest.Server, cluster string) {
	t.Helper()
	body := `{"logical_environment":"production","deployments":[]}`
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost,
		gh.URL()+"/orgs/"+gh.Org()+"/artifacts/metadata/deployment-record/cluster/"+cluster+"/jobs", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+secretToken)
	req.Header.Set("Accept", ghclient.MediaType)
	req.Header.Set("X-GitHub-Api-Version", ghclient.APIVersion)
	req.Header.Set("User-Agent", "test")
	resp, err := gh.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("start job: status %d", resp.StatusCode)
	}
}

// TestPostClusterApp goes through ghinstallation to a fake shaped like GitHub Enterprise Server, and lets a
// refused installation token fail one bulk request retryably.
func TestPostClusterApp(t *testing.T) {
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
	recs := clusterRecords(1500, "moda-1")
	results, err := s.PostCluster(t.Context(), recs)
	if err != nil {
		t.Fatalf("PostCluster: %v", err)
	}
	checkResults(t, results, len(recs), nil)
	if n := gh.TokenRequests(); n != 1 {
		t.Errorf("token requests = %d, want 1", n)
	}
	gh.RevokeTokens()
	_, err = s.PostCluster(t.Context(), recs[:1])
	checkErr(t, err, wantErr{Class: sink.ClassCredentials, StatusCode: 401, Message: "Bad credentials"})
	if _, err := s.PostCluster(t.Context(), recs[:1]); err != nil {
		t.Fatalf("PostCluster after a refused token: %v", err)
	}
	if n := gh.TokenRequests(); n != 2 {
		t.Errorf("token requests = %d, want 2", n)
	}
}

// TestPostClusterRequest checks the request against a hand-written server, and how answers the fake does not
// give are read.
func TestPostClusterRequest(t *testing.T) {
	type reply struct {
		status int
		body   string
	}
	recs := clusterRecords(3, "moda/1 a")
	recs[2].PhysicalEnvironment = ""
	tests := []struct {
		name    string
		reply   reply
		want    map[int]wantErr
		wantErr wantErr
	}{
		{name: "200 without errors", reply: reply{200, `{"total_count":2}`}},
		{name: "empty 2xx", reply: reply{204, ``}},
		{name: "errors by deployment_name, by name, and by cause", reply: reply{207, `{"total_count":0,"errors":[
			{"name":"x","deployment_name":"default/app-0/app","cause":"no artifacts found"},
			{"name":"ghcr.io/octo-org/app-1","cause":"The actor lacks write access to the repository"}]}`},
			want: map[int]wantErr{
				0: {Class: sink.ClassNotFound, Message: "no artifacts found"},
				1: {Class: sink.ClassPermanent, StatusCode: 403, Message: "lacks write access"},
			}},
		{name: "an error naming no record fails the chunk", reply: reply{207, `{"errors":[{"cause":"something went wrong"}]}`},
			want: every(0, 2, wantErr{Class: sink.ClassPermanent, StatusCode: 422, Message: "something went wrong"})},
		{name: "answer not JSON", reply: reply{200, `<html>`},
			wantErr: wantErr{Class: sink.ClassRetryable, Message: "decode answer"},
			want:    every(0, 2, wantErr{Class: sink.ClassRetryable, Message: "decode answer"})},
		{name: "409", reply: reply{409, `{"message":"busy"}`},
			wantErr: wantErr{Class: sink.ClassRetryable, Message: "status 409: busy"},
			want:    every(0, 2, wantErr{Class: sink.ClassRetryable, Message: "status 409"})},
		{name: "422", reply: reply{422, `{"message":"Invalid request.","errors":["too many"]}`},
			wantErr: wantErr{Class: sink.ClassPermanent, StatusCode: 422, Message: "Invalid request.; too many"},
			want:    every(0, 2, wantErr{Class: sink.ClassPermanent, StatusCode: 422})},
		{name: "500 with the token echoed", reply: reply{500, `{"message":"oops ` + secretToken + `"}`},
			wantErr: wantErr{Class: sink.ClassRetryable, Message: "oops [REDACTED]"},
			want:    every(0, 2, wantErr{Class: sink.ClassRetryable, Message: "status 500"})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var mu sync.Mutex
			var paths []string
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				paths = append(paths, r.URL.EscapedPath())
				mu.Unlock()
				if r.Method != http.MethodPost || r.Header.Get("Authorization") != "Bearer "+secretToken ||
					r.Header.Get("Accept") != ghclient.MediaType || r.Header.Get("X-GitHub-Api-Version") != ghclient.APIVersion ||
					r.Header.Get("Content-Type") != "application/json" || r.Header.Get("User-Agent") == "" {
					t.Errorf("request %s %v", r.Method, r.Header)
				}
				data, _ := io.ReadAll(r.Body)
				var body map[string]any
				if err := json.Unmarshal(data, &body); err != nil {
					t.Errorf("body: %v", err)
				}
				deployments, _ := body["deployments"].([]any)
				for _, d := range deployments {
					for _, k := range []string{"cluster", "logical_environment", "physical_environment"} {
						if _, ok := d.(map[string]any)[k]; ok {
							t.Errorf("deployment carries %s: %v", k, d)
						}
					}
				}
				if body["partial_success"] != true || body["return_records"] != false || body["logical_environment"] != "production" {
					t.Errorf("body %s", data)
				}
				if _, ok := body["physical_environment"]; ok != (len(deployments) == 2) {
					t.Errorf("physical_environment in %s", data)
				}
				w.WriteHeader(tt.reply.status)
				if len(deployments) == 2 {
					_, _ = io.WriteString(w, tt.reply.body)
				} else {
					_, _ = io.WriteString(w, `{"total_count":1}`)
				}
			}))
			defer srv.Close()
			s, err := New(Config{BaseURL: srv.URL + "/api/v3/", Org: "octo-org", Token: secretToken})
			if err != nil {
				t.Fatal(err)
			}
			results, err := s.PostCluster(t.Context(), recs)
			checkErr(t, err, tt.wantErr)
			want := maps.Clone(tt.want)
			if tt.wantErr.Class != sink.ClassNone {
				// The second group is not sent after the first failed.
				want[2] = tt.wantErr
			}
			checkResults(t, results, len(recs), want)
			wantPaths := []string{"/api/v3/orgs/octo-org/artifacts/metadata/deployment-record/cluster/moda%2F1%20a"}
			if tt.wantErr.Class == sink.ClassNone {
				wantPaths = append(wantPaths, wantPaths[0])
			}
			if diff := cmp.Diff(wantPaths, paths); diff != "" {
				t.Errorf("paths (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPostClusterConcurrent(t *testing.T) {
	gh := newFake(t, githubtest.Options{Tokens: []string{secretToken}})
	s := newClusterSink(t, gh)
	var all []record.Record
	var wg sync.WaitGroup
	for c := range 4 {
		recs := clusterRecords(50, fmt.Sprintf("moda-%d", c))
		all = append(all, recs...)
		wg.Add(1)
		go func() {
			defer wg.Done()
			results, err := s.PostCluster(t.Context(), recs)
			if err != nil {
				t.Errorf("PostCluster: %v", err)
			}
			for _, r := range results {
				if r != nil {
					t.Errorf("result: %v", r)
				}
			}
		}()
	}
	wg.Wait()
	if diff := cmp.Diff(currentOf(all), gh.Current()); diff != "" {
		t.Errorf("current (-want +got):\n%s", diff)
	}
}

func TestPostClusterCancelled(t *testing.T) {
	gh := newFake(t, githubtest.Options{Tokens: []string{secretToken}})
	s := newClusterSink(t, gh)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	recs := clusterRecords(3, "moda-1")
	results, err := s.PostCluster(ctx, recs)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v is not context.Canceled", err)
	}
	for i, r := range results {
		if !errors.Is(r, context.Canceled) {
			t.Errorf("result %d: %v", i, r)
		}
	}
}
