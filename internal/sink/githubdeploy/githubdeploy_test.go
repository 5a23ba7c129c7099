package githubdeploy

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/deployment-tracker/deployment-tracker/internal/extract"
	"github.com/deployment-tracker/deployment-tracker/internal/ghclient"
	"github.com/deployment-tracker/deployment-tracker/internal/githubtest"
	"github.com/deployment-tracker/deployment-tracker/internal/owner"
	"github.com/deployment-tracker/deployment-tracker/internal/rollout"
	"github.com/deployment-tracker/deployment-tracker/internal/sink"
)

const token = "ghp_deploymentsT0ken"

const (
	sha1 = "1111111111111111111111111111111111111111"
	sha2 = "2222222222222222222222222222222222222222"
)

var web = owner.Workload{Group: "apps", Kind: "Deployment", Namespace: "shop", Name: "web"}

// fakeTargets configures every workload with t (found false when t is nil).
type fakeTargets struct{ t *Target }

func (f fakeTargets) Target(context.Context, owner.Workload) (Target, bool, error) {
	if f.t == nil {
		return Target{}, false, nil
	}
	return *f.t, true, nil
}

type fakeObjects map[string]any

func (f fakeObjects) Object(context.Context, owner.Workload) (map[string]any, bool, error) {
	return f, f != nil, nil
}

// reports records what the sink reported.
type reports struct {
	mu  sync.Mutex
	got []Report
}

func (r *reports) Report(_ context.Context, _ owner.Workload, _ Target, rep Report) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, rep)
}

func newFake(t *testing.T) *githubtest.Server {
	t.Helper()
	gh, err := githubtest.New(githubtest.Options{
		Tokens: []string{token},
		Repos: map[string]githubtest.Repo{"shop": {
			Tags:    map[string]string{"v1.0.0": sha1, "v1.1.0": sha2},
			Commits: map[string]githubtest.Commit{sha1: {Message: "one"}, sha2: {Message: "two"}},
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(gh.Close)
	return gh
}

func newSink(t *testing.T, gh *githubtest.Server, target *Target, objs ObjectReader, rep Reporter) *Sink {
	t.Helper()
	c, err := ghclient.New(ghclient.Config{BaseURL: gh.URL(), Token: token})
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{Client: c, Org: gh.Org(), LogicalEnvironment: "staging", Cluster: "eu-1",
		Targets: fakeTargets{target}, Objects: objs, Reporter: rep})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func rolloutOf(rev int64, image string, phase rollout.Phase) rollout.Rollout {
	return rollout.Rollout{
		Workload: web, Revision: rev, Phase: phase, Ready: 2, Desired: 3,
		Containers: []rollout.Container{{Name: "migrate", Image: "ghcr.io/octo-org/migrate:v0.1", Init: true}, {Name: "app", Image: image}},
	}
}

// drive notifies the phases in order, threading the state as the dispatcher does, and returns the last state.
func drive(t *testing.T, s *Sink, r rollout.Rollout, st map[string]string, phases ...rollout.Phase) map[string]string {
	t.Helper()
	var acked rollout.Phase
	for _, p := range phases {
		r.Phase = p
		got, err := s.Notify(t.Context(), rollout.Notification{Rollout: r, Acknowledged: acked, State: st})
		if err != nil {
			t.Fatalf("Notify %s: %v", p, err)
		}
		st, acked = got, p
	}
	return st
}

type seenStatus struct {
	State, EnvironmentURL string
	AutoInactive          bool
	Automatic             bool
}

type seenDeployment struct {
	Ref, SHA, Environment, Task string
	AutoMerge                   bool
	RequiredContexts            []string
	Production, Transient       bool
	Statuses                    []seenStatus
}

func seen(ds []githubtest.Deployment) []seenDeployment {
	var out []seenDeployment
	for _, d := range ds {
		sd := seenDeployment{Ref: d.Ref, SHA: d.SHA, Environment: d.Environment, Task: d.Task, AutoMerge: d.AutoMerge,
			RequiredContexts: d.RequiredContexts, Production: d.ProductionEnvironment, Transient: d.TransientEnvironment}
		for _, st := range d.Statuses {
			sd.Statuses = append(sd.Statuses, seenStatus{State: st.State, EnvironmentURL: st.EnvironmentURL, AutoInactive: st.AutoInactive, Automatic: st.Automatic})
		}
		out = append(out, sd)
	}
	return out
}

// TestRolloutBecomesDeployment: one rollout is one deployment of the image tag in the configured environment,
// with in_progress then success (environment_url, auto_inactive); each status is sent once.
func TestRolloutBecomesDeployment(t *testing.T) {
	gh := newFake(t)
	f := false
	target := &Target{Repository: "shop", Environment: "production", EnvironmentURL: "https://shop.example.com", Production: &f}
	rep := &reports{}
	s := newSink(t, gh, target, nil, rep)
	st := drive(t, s, rolloutOf(3, "ghcr.io/octo-org/shop:v1.0.0", ""), nil, rollout.PhaseInProgress, rollout.PhaseInProgress, rollout.PhaseCurrent, rollout.PhaseCurrent)

	want := []seenDeployment{{Ref: "v1.0.0", SHA: sha1, Environment: "production", Task: "deploy", RequiredContexts: []string{},
		Statuses: []seenStatus{{State: "in_progress", AutoInactive: true}, {State: "success", EnvironmentURL: "https://shop.example.com", AutoInactive: true}}}}
	if diff := cmp.Diff(want, seen(gh.Deployments("shop"))); diff != "" {
		t.Errorf("deployments (-want +got):\n%s", diff)
	}
	if st[StateSent] != StatusSuccess || st[StateRef] != "v1.0.0" || st[StateRepository] != gh.Org()+"/shop" || st[StateDeployment] == "" {
		t.Errorf("state %v", st)
	}
	if len(rep.got) != 2 || rep.got[1].State != StatusSuccess || rep.got[1].Reason != "Synced" || rep.got[1].Ref != "v1.0.0" {
		t.Errorf("reports %+v", rep.got)
	}
	// A restart resumes from the state: nothing is sent again.
	before := gh.RepoStats().Requests
	drive(t, s, rolloutOf(3, "ghcr.io/octo-org/shop:v1.0.0", ""), st, rollout.PhaseCurrent)
	if diff := cmp.Diff(before, gh.RepoStats().Requests); diff != "" {
		t.Errorf("calls after a resume (-before +after):\n%s", diff)
	}
}

// TestPhases: every phase maps to its status; a rollback fails the abandoned ref and the restored revision
// succeeds on the existing deployment of its ref; deletion makes the deployment inactive.
func TestPhases(t *testing.T) {
	gh := newFake(t)
	s := newSink(t, gh, &Target{Repository: "shop"}, nil, nil)
	drive(t, s, rolloutOf(1, "ghcr.io/octo-org/shop:v1.0.0", ""), nil, rollout.PhaseInProgress, rollout.PhaseCurrent)
	drive(t, s, rolloutOf(2, "ghcr.io/octo-org/shop:v1.1.0", ""), nil, rollout.PhaseInProgress, rollout.PhaseFailed, rollout.PhaseRolledBack)
	restored := rolloutOf(3, "ghcr.io/octo-org/shop:v1.0.0", "")
	restored.Restores = 1
	st := drive(t, s, restored, nil, rollout.PhaseInProgress, rollout.PhaseCurrent)
	drive(t, s, restored, st, rollout.PhaseDeleted)

	ds := gh.Deployments("shop")
	if len(ds) != 2 {
		t.Fatalf("%d deployments, want 2 (the restored ref reuses its deployment): %+v", len(ds), seen(ds))
	}
	var states [][]string
	for _, d := range ds {
		var s []string
		for _, st := range d.Statuses {
			s = append(s, st.State)
		}
		states = append(states, s)
	}
	want := [][]string{
		{"in_progress", "success", "in_progress", "success", "inactive"}, // v1.0.0: revisions 1 and 3
		{"in_progress", "failure"},                                       // v1.1.0: failed, rolled back (sent once)
	}
	if diff := cmp.Diff(want, states); diff != "" {
		t.Errorf("statuses (-want +got):\n%s", diff)
	}
	if ds[0].Environment != "staging" || ds[0].Description != "Deployment shop/web revision 1 in eu-1" {
		t.Errorf("default environment and description: %q %q", ds[0].Environment, ds[0].Description)
	}
}

// TestSupersededNeverCompleted: a rollout superseded while in progress is made inactive; a completed one is
// left to auto_inactive; a workload without configuration costs no call.
func TestSupersededAndUnconfigured(t *testing.T) {
	gh := newFake(t)
	s := newSink(t, gh, &Target{Repository: "shop"}, nil, nil)
	drive(t, s, rolloutOf(1, "ghcr.io/octo-org/shop:v1.0.0", ""), nil, rollout.PhaseInProgress, rollout.PhaseSuperseded)
	drive(t, s, rolloutOf(2, "ghcr.io/octo-org/shop:v1.1.0", ""), nil, rollout.PhaseInProgress, rollout.PhaseCurrent, rollout.PhaseSuperseded)
	var got []string
	for _, d := range gh.Deployments("shop") {
		got = append(got, d.Statuses[len(d.Statuses)-1].State)
	}
	if diff := cmp.Diff([]string{"inactive", "success"}, got); diff != "" {
		t.Errorf("last statuses (-want +got):\n%s", diff)
	}

	none := newSink(t, gh, nil, nil, nil)
	before := gh.RepoStats().Requests
	st := drive(t, none, rolloutOf(4, "ghcr.io/octo-org/shop:v1.1.0", ""), nil, rollout.PhaseInProgress, rollout.PhaseCurrent)
	if len(st) != 0 || !cmp.Equal(before, gh.RepoStats().Requests) {
		t.Errorf("unconfigured workload: state %v, calls %v → %v", st, before, gh.RepoStats().Requests)
	}
}

// TestRefRules: JSONPath and regexp/template rules, and a payload from annotations.
func TestRefRules(t *testing.T) {
	gh := newFake(t)
	obj := fakeObjects{"metadata": map[string]any{"annotations": map[string]any{
		"source-ref": "release-1.1.0", "deploy.example.com/team": "payments", "other": "x",
	}}}
	target := &Target{Repository: "shop", PayloadPrefix: "deploy.example.com/",
		Extract: extract.Rule{JSONPath: "{.metadata.annotations.source-ref}", Regexp: `release-(?P<ref>.+)`, Template: "v{}"}}
	s := newSink(t, gh, target, obj, nil)
	drive(t, s, rolloutOf(1, "ghcr.io/octo-org/shop:latest", ""), nil, rollout.PhaseInProgress)
	ds := gh.Deployments("shop")
	if len(ds) != 1 || ds[0].Ref != "v1.1.0" {
		t.Fatalf("deployments %+v", seen(ds))
	}
	var payload map[string]string
	if err := json.Unmarshal(ds[0].Payload, &payload); err != nil || !cmp.Equal(payload, map[string]string{"team": "payments"}) {
		t.Errorf("payload %s (%v)", ds[0].Payload, err)
	}
}

// TestFailures: classified failures, each reported with its reason; nothing half-done is lost.
func TestFailures(t *testing.T) {
	tests := []struct {
		name       string
		target     Target
		image      string
		fault      *githubtest.Fault
		endpoint   githubtest.RepoEndpoint
		wantClass  sink.Class
		wantReason string
	}{
		{name: "no such container", target: Target{Repository: "shop", Extract: extract.Rule{ContainerName: "web"}}, image: "ghcr.io/octo-org/shop:v1.0.0",
			wantClass: sink.ClassPermanent, wantReason: "ExtractFailed"},
		{name: "ref unknown to GitHub", target: Target{Repository: "shop"}, image: "ghcr.io/octo-org/shop:v9.9.9",
			wantClass: sink.ClassPermanent, wantReason: "RefNotFound"},
		{name: "no such repository", target: Target{Repository: "nope"}, image: "ghcr.io/octo-org/shop:v1.0.0",
			wantClass: sink.ClassNotFound, wantReason: "RepositoryNotFound"},
		{name: "other owner's repository", target: Target{Repository: "someone/shop"}, image: "ghcr.io/octo-org/shop:v1.0.0",
			wantClass: sink.ClassNotFound, wantReason: "RepositoryNotFound"},
		{name: "credentials refused", target: Target{Repository: "shop"}, image: "ghcr.io/octo-org/shop:v1.0.0",
			fault: &githubtest.Fault{Status: http.StatusForbidden, Message: "Resource not accessible by integration"}, endpoint: githubtest.EndpointCreateDeployment,
			wantClass: sink.ClassCredentials, wantReason: "CredentialsRefused"},
		{name: "rate limited", target: Target{Repository: "shop"}, image: "ghcr.io/octo-org/shop:v1.0.0",
			fault: &githubtest.Fault{Status: http.StatusTooManyRequests, Header: http.Header{"Retry-After": {"7"}}}, endpoint: githubtest.EndpointCreateDeploymentStatus,
			wantClass: sink.ClassRetryAfter},
		{name: "server error on the status", target: Target{Repository: "shop"}, image: "ghcr.io/octo-org/shop:v1.0.0",
			fault: &githubtest.Fault{Status: http.StatusBadGateway}, endpoint: githubtest.EndpointCreateDeploymentStatus,
			wantClass: sink.ClassRetryable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gh := newFake(t)
			rep := &reports{}
			s := newSink(t, gh, &tt.target, nil, rep)
			if tt.fault != nil {
				gh.InjectRepoNext(1, tt.endpoint, *tt.fault)
			}
			r := rolloutOf(1, tt.image, rollout.PhaseInProgress)
			_, err := s.Notify(t.Context(), rollout.Notification{Rollout: r})
			if got := sink.Classify(err); got != tt.wantClass {
				t.Fatalf("class %v of %v, want %v", got, err, tt.wantClass)
			}
			if tt.wantReason != "" && (len(rep.got) != 1 || rep.got[0].Reason != tt.wantReason) {
				t.Errorf("reports %+v, want reason %s", rep.got, tt.wantReason)
			}
			if strings.Contains(err.Error(), token) {
				t.Errorf("error shows the token: %v", err)
			}
			if tt.fault == nil {
				return
			}
			// The retry delivers, without a second deployment.
			st, err := s.Notify(t.Context(), rollout.Notification{Rollout: r})
			if err != nil {
				t.Fatalf("retry: %v", err)
			}
			ds := gh.Deployments("shop")
			if len(ds) != 1 || len(ds[0].Statuses) != 1 || st[StateSent] != StatusInProgress {
				t.Errorf("after the retry: %+v, state %v", seen(ds), st)
			}
		})
	}
}

// TestDeletedWithoutConfiguration: a workload deleted with its configuration still gets its inactive status,
// from the state.
func TestDeletedWithoutConfiguration(t *testing.T) {
	gh := newFake(t)
	s := newSink(t, gh, &Target{Repository: "shop"}, nil, nil)
	st := drive(t, s, rolloutOf(1, "ghcr.io/octo-org/shop:v1.0.0", ""), nil, rollout.PhaseInProgress, rollout.PhaseCurrent)
	gone := newSink(t, gh, nil, nil, nil)
	drive(t, gone, rolloutOf(1, "ghcr.io/octo-org/shop:v1.0.0", ""), st, rollout.PhaseDeleted)
	d := gh.Deployments("shop")[0]
	if last := d.Statuses[len(d.Statuses)-1].State; last != "inactive" {
		t.Errorf("last status %s, want inactive", last)
	}
}

func TestTargetFromAnnotations(t *testing.T) {
	yes := true
	tests := []struct {
		name      string
		ann       map[string]string
		want      Target
		wantFound bool
		wantErr   string
	}{
		{name: "none", ann: map[string]string{"x": "y"}},
		{name: "full", wantFound: true, ann: map[string]string{
			AnnotationRepository: "octo-org/shop", AnnotationEnvironment: "production", AnnotationRefFrom: "container:app",
			AnnotationRefRegexp: `^v(.+)$`, AnnotationRefTemplate: "release/{}", AnnotationEnvironmentURL: "https://shop.example.com",
			AnnotationProductionEnvironment: "true", AnnotationDescription: "shop",
		}, want: Target{Repository: "octo-org/shop", Environment: "production", Extract: extract.Rule{ContainerName: "app", Regexp: `^v(.+)$`, Template: "release/{}"},
			EnvironmentURL: "https://shop.example.com", Production: &yes, Description: "shop"}},
		{name: "bad values", wantFound: true, ann: map[string]string{
			AnnotationRepository: "a/b/c", AnnotationRefFrom: "image", AnnotationTransientEnvironment: "maybe", AnnotationEnvironmentURL: "ftp://x",
		}, wantErr: AnnotationRepository},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, found, err := TargetFromAnnotations(tt.ann)
			if found != tt.wantFound {
				t.Fatalf("found %v", found)
			}
			if tt.wantErr != "" {
				for _, key := range []string{AnnotationRepository, AnnotationRefFrom, AnnotationTransientEnvironment, AnnotationEnvironmentURL} {
					if err == nil || !strings.Contains(err.Error(), key) {
						t.Errorf("error %v does not name %s", err, key)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("target (-want +got):\n%s", diff)
			}
		})
	}
}

func TestTruncate(t *testing.T) {
	if got := truncate(strings.Repeat("é", 200), maxDescription); len([]rune(got)) != maxDescription {
		t.Errorf("truncate: %d runes", len([]rune(got)))
	}
}
