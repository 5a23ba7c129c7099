package delivery

import (
	"context"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/deployment-tracker/deployment-tracker/internal/delivery"
	"github.com/deployment-tracker/deployment-tracker/internal/extract"
	"github.com/deployment-tracker/deployment-tracker/internal/ghclient"
	"github.com/deployment-tracker/deployment-tracker/internal/githubtest"
	"github.com/deployment-tracker/deployment-tracker/internal/metrics"
	"github.com/deployment-tracker/deployment-tracker/internal/owner"
	"github.com/deployment-tracker/deployment-tracker/internal/rollout"
	"github.com/deployment-tracker/deployment-tracker/internal/sink"
	"github.com/deployment-tracker/deployment-tracker/internal/sink/githubdeploy"
)

const token = "ghp_deliveryT0ken"

// The commits of the fake's repository shop, and when they were committed.
const (
	sha1 = "1111111111111111111111111111111111111111"
	sha2 = "2222222222222222222222222222222222222222"
)

var (
	committed1 = at(-120)
	committed2 = at(-30)
)

func newFake(t *testing.T) *githubtest.Server {
	t.Helper()
	gh, err := githubtest.New(githubtest.Options{
		Tokens: []string{token},
		Now:    func() time.Time { return t0 },
		Repos: map[string]githubtest.Repo{"shop": {
			Branches: map[string]string{"main": sha2},
			Tags:     map[string]string{"v1.0.0": sha1, "v1.1.0": sha2},
			Commits: map[string]githubtest.Commit{
				sha1: {Message: "one", AuthorDate: committed1.Add(-time.Hour), CommitterDate: committed1},
				sha2: {Message: "two", AuthorDate: committed2},
			},
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(gh.Close)
	return gh
}

func newClient(t *testing.T, gh *githubtest.Server) *ghclient.Client {
	t.Helper()
	c, err := ghclient.New(ghclient.Config{BaseURL: gh.URL(), Token: token, Now: func() time.Time { return t0 }})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func commitCalls(gh *githubtest.Server) int {
	return gh.RepoStats().Requests[githubtest.EndpointGetCommit]
}

// fakeTargets configures every workload with t (found false when t is nil).
type fakeTargets struct{ t *githubdeploy.Target }

func (f fakeTargets) Target(context.Context, owner.Workload) (githubdeploy.Target, bool, error) {
	if f.t == nil {
		return githubdeploy.Target{}, false, nil
	}
	return *f.t, true, nil
}

type fakeObjects map[string]any

func (f fakeObjects) Object(context.Context, owner.Workload) (map[string]any, bool, error) {
	return f, f != nil, nil
}

// withImage sets the rollout's app container image, after an init container.
func withImage(image string) func(*rollout.Rollout) {
	return func(r *rollout.Rollout) {
		r.Containers = []rollout.Container{{Name: "migrate", Image: "ghcr.io/octo-org/migrate:v0.1", Init: true}, {Name: "app", Image: image}}
	}
}

// TestResolve: where the commit of a rollout comes from, in order, and what GitHub tells of it.
func TestResolve(t *testing.T) {
	rfc := func(tm time.Time) string { return tm.Format(time.RFC3339) }
	tests := []struct {
		name      string
		workload  map[string]string
		template  map[string]string
		image     string
		targets   *githubdeploy.Target
		objects   fakeObjects
		dryRun    bool
		want      commit
		wantCalls int
	}{
		{
			name:     "commit time annotation: no lookup",
			workload: map[string]string{AnnotationCommitTime: rfc(at(-10)), AnnotationCommit: sha1, AnnotationRepository: "shop"},
			want:     commit{SHA: sha1, Time: at(-10)},
		},
		{
			name:     "commit time on the pod template",
			template: map[string]string{AnnotationCommitTime: "2025-06-01T11:50:00+00:00"},
			want:     commit{Time: at(-10)},
		},
		{
			name:     "a commit time that does not parse",
			workload: map[string]string{AnnotationCommitTime: "yesterday", AnnotationRepository: "shop"},
			want:     commit{Reason: metrics.WithoutCommitInvalid},
		},
		{
			name:      "commit annotation, looked up in the repository annotation's",
			workload:  map[string]string{AnnotationCommit: sha1, AnnotationRepository: "shop"},
			want:      commit{SHA: sha1, Time: committed1},
			wantCalls: 1,
		},
		{
			name:      "OCI revision on the pod template; the committer date, else the author's",
			workload:  map[string]string{AnnotationRepository: "octo-org/shop"},
			template:  map[string]string{AnnotationImageRevision: sha2},
			want:      commit{SHA: sha2, Time: committed2},
			wantCalls: 1,
		},
		{
			name:      "the workload's commit wins over its template's",
			workload:  map[string]string{AnnotationImageRevision: sha1, AnnotationRepository: "shop"},
			template:  map[string]string{AnnotationCommit: sha2},
			want:      commit{SHA: sha1, Time: committed1},
			wantCalls: 1,
		},
		{
			name:      "an abbreviated SHA resolves to the full one",
			workload:  map[string]string{AnnotationCommit: sha1[:7], AnnotationRepository: "shop"},
			want:      commit{SHA: sha1, Time: committed1},
			wantCalls: 1,
		},
		{
			name:      "no commit annotation: the image tag of the first container",
			workload:  map[string]string{AnnotationRepository: "shop"},
			want:      commit{SHA: sha1, Time: committed1},
			wantCalls: 1,
		},
		{
			name: "a ref rule: container, regexp, template",
			workload: map[string]string{
				AnnotationRepository: "shop", AnnotationRefFrom: "container:app",
				AnnotationRefRegexp: `^release-(.+)$`, AnnotationRefTemplate: "v{}",
			},
			image:     "ghcr.io/octo-org/web:release-1.1.0",
			want:      commit{SHA: sha2, Time: committed2},
			wantCalls: 1,
		},
		{
			name:      "a JSONPath rule over the workload object",
			workload:  map[string]string{AnnotationRepository: "shop", AnnotationRefFrom: "{.metadata.labels.version}"},
			objects:   fakeObjects{"metadata": map[string]any{"labels": map[string]any{"version": "main"}}},
			want:      commit{SHA: sha2, Time: committed2},
			wantCalls: 1,
		},
		{
			name: "the GitHub Deployments annotations win over the delivery ones",
			workload: map[string]string{
				githubdeploy.AnnotationRepository: "shop", githubdeploy.AnnotationRefTemplate: "refs/tags/{}",
				AnnotationRepository: "elsewhere",
			},
			image:     "ghcr.io/octo-org/web:v1.1.0",
			want:      commit{SHA: sha2, Time: committed2},
			wantCalls: 1,
		},
		{
			name:      "a GitHubDeployment names the workload",
			targets:   &githubdeploy.Target{Repository: "octo-org/shop", Extract: extract.Rule{ContainerName: "app"}},
			want:      commit{SHA: sha1, Time: committed1},
			wantCalls: 1,
		},
		{name: "nothing names a commit", want: commit{Reason: metrics.WithoutCommitNone}},
		{
			name:     "a commit without a repository",
			workload: map[string]string{AnnotationImageRevision: sha1},
			want:     commit{SHA: sha1, Reason: metrics.WithoutCommitNoRepository},
		},
		{
			name:      "a tag GitHub does not know (422)",
			workload:  map[string]string{AnnotationRepository: "shop"},
			image:     "ghcr.io/octo-org/web:v9",
			want:      commit{SHA: "v9", Reason: metrics.WithoutCommitNotFound},
			wantCalls: 1,
		},
		{
			name:      "a repository GitHub does not know (404)",
			workload:  map[string]string{AnnotationRepository: "someone/shop"},
			want:      commit{SHA: "v1.0.0", Reason: metrics.WithoutCommitNotFound},
			wantCalls: 1,
		},
		{
			name:     "not a repository name",
			workload: map[string]string{AnnotationRepository: "shop shop"},
			want:     commit{Reason: metrics.WithoutCommitInvalid},
		},
		{
			name:     "a regexp that matches nothing",
			workload: map[string]string{AnnotationRepository: "shop", AnnotationRefRegexp: `^release-(.+)$`},
			want:     commit{Reason: metrics.WithoutCommitInvalid},
		},
		{
			name:     "GitHub Deployments annotations that do not parse",
			workload: map[string]string{githubdeploy.AnnotationRepository: "shop", githubdeploy.AnnotationRefFrom: "image:app"},
			want:     commit{Reason: metrics.WithoutCommitInvalid},
		},
		{
			name:     "a JSONPath rule without the object",
			workload: map[string]string{AnnotationRepository: "shop", AnnotationRefFrom: "{.metadata.labels.version}"},
			want:     commit{Reason: metrics.WithoutCommitInvalid},
		},
		{
			name:     "a dry run: the ref, no lookup",
			workload: map[string]string{AnnotationRepository: "shop"},
			dryRun:   true,
			want:     commit{SHA: "v1.0.0", Reason: metrics.WithoutCommitLookupDisabled},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gh := newFake(t)
			cfg := Config{
				Workloads: annotated{Workload: tt.workload, Template: tt.template}, Org: gh.Org(),
				Targets: fakeTargets{tt.targets},
			}
			if tt.objects != nil {
				cfg.Objects = tt.objects
			}
			if !tt.dryRun {
				cfg.Client = newClient(t, gh)
			}
			s, _ := newTestSink(t, cfg)
			image := tt.image
			if image == "" {
				image = "ghcr.io/octo-org/web:v1.0.0"
			}
			got, err := s.resolve(t.Context(), ro(1, rollout.PhaseInProgress, withImage(image)))
			if err != nil {
				t.Fatalf("resolve() error = %v", err)
			}
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(commit{})); diff != "" {
				t.Errorf("resolve() (-want +got):\n%s", diff)
			}
			if n := commitCalls(gh); n != tt.wantCalls {
				t.Errorf("%d commit lookups, want %d", n, tt.wantCalls)
			}
		})
	}
}

// TestLeadTimeFromGitHub: the lead times are the rollout's times minus the committer date GitHub tells.
func TestLeadTimeFromGitHub(t *testing.T) {
	gh := newFake(t)
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	s, _ := newTestSink(t, Config{
		Workloads: annotated{Workload: map[string]string{AnnotationRepository: "shop"}}, Client: newClient(t, gh),
		Org: gh.Org(), Exporters: []delivery.Exporter{NewPrometheus(m.Delivery)},
	})
	n := newNotifier()
	n.notify(t, s, ro(1, rollout.PhaseInProgress, withImage("ghcr.io/octo-org/web:v1.0.0"), submitted(1), running(2)))
	n.notify(t, s, ro(1, rollout.PhaseCurrent, withImage("ghcr.io/octo-org/web:v1.0.0"), submitted(1), running(2), completed(5)))
	got := samples(t, reg)
	for key, want := range map[string]string{
		"deptracker_lead_time_seconds{stage=running}":  "1/7320", // 122 minutes
		"deptracker_lead_time_seconds{stage=complete}": "1/7500", // 125 minutes
		"deptracker_rollout_duration_seconds{}":        "1/240",
		"deptracker_deployments_total{}":               "1",
	} {
		if got[key] != want {
			t.Errorf("%s = %q, want %q (all: %v)", key, got[key], want, got)
		}
	}
	if n := commitCalls(gh); n != 1 {
		t.Errorf("%d commit lookups, want 1: the state keeps the commit between the observations", n)
	}
	if st := n.state[1]; st[StateCommit] != sha1 || st[StateCommitTime] != committed1.Format(time.RFC3339Nano) {
		t.Errorf("state %v: want the commit and its time", st)
	}
}

// TestLookupFailures: a failure that retrying or waiting may fix is returned, classified, and nothing is
// observed; the retry observes once.
func TestLookupFailures(t *testing.T) {
	tests := []struct {
		name  string
		fault githubtest.Fault
		class sink.Class
	}{
		{name: "server error", fault: githubtest.Fault{Status: http.StatusBadGateway}, class: sink.ClassRetryable},
		{
			name: "rate limit",
			fault: githubtest.Fault{Status: http.StatusForbidden, Message: githubtest.PrimaryRateLimitMessage, Header: http.Header{
				"X-Ratelimit-Remaining": {"0"}, "X-Ratelimit-Reset": {"1748782800"},
			}},
			class: sink.ClassRetryAfter,
		},
		{name: "bad credentials", fault: githubtest.Fault{Status: http.StatusUnauthorized, Message: "Bad credentials"}, class: sink.ClassCredentials},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gh := newFake(t)
			s, e := newTestSink(t, Config{
				Workloads: annotated{Workload: map[string]string{AnnotationRepository: "shop"}}, Client: newClient(t, gh), Org: gh.Org(),
			})
			gh.InjectRepoNext(1, githubtest.EndpointGetCommit, tt.fault)
			r := ro(1, rollout.PhaseCurrent, running(2), completed(3))
			st, err := s.Notify(t.Context(), rollout.Notification{Rollout: r})
			if got := sink.Classify(err); got != tt.class || st != nil {
				t.Fatalf("Notify() = %v, %v (class %d); want class %d and no state", st, err, got, tt.class)
			}
			if got := e.kinds(); len(got) != 0 {
				t.Fatalf("observed %v before the commit was found", got)
			}
			n := newNotifier()
			n.notify(t, s, r)
			n.notify(t, s, r)
			if o, _ := e.last(delivery.KindComplete); !o.Rollout.CommitTime.Equal(committed1) {
				t.Errorf("commit time %s, want %s", o.Rollout.CommitTime, committed1)
			}
			if got := e.kinds(); !slices.Equal(got, []delivery.Kind{delivery.KindRunning, delivery.KindComplete}) {
				t.Errorf("after the retry, observed %v", got)
			}
		})
	}
}

// TestWithoutCommitCountedOnce: a rollout without a commit time is counted once, with its first observation,
// and its reason kept in the state; its observations carry no lead time.
func TestWithoutCommitCountedOnce(t *testing.T) {
	gh := newFake(t)
	s, e := newTestSink(t, Config{
		Workloads: annotated{Workload: map[string]string{AnnotationRepository: "shop"}}, Client: newClient(t, gh), Org: gh.Org(),
	})
	n := newNotifier()
	image := withImage("ghcr.io/octo-org/web:v9")
	n.notify(t, s, ro(1, rollout.PhaseInProgress, image, running(2)))
	n.notify(t, s, ro(1, rollout.PhaseCurrent, image, running(2), completed(3)))
	if diff := cmp.Diff([]string{metrics.WithoutCommitNotFound}, e.without); diff != "" {
		t.Errorf("counted without commit (-want +got):\n%s", diff)
	}
	if o, ok := e.last(delivery.KindComplete); !ok || !o.Rollout.CommitTime.IsZero() || o.Rollout.Commit != "v9" {
		t.Errorf("complete observation %+v: want the ref and no commit time", o)
	}
	if st := n.state[1]; st[StateWithoutCommit] != metrics.WithoutCommitNotFound || st[StateCommit] != "v9" {
		t.Errorf("state %v: want the reason and the ref", st)
	}
	if n := commitCalls(gh); n != 1 {
		t.Errorf("%d commit lookups, want 1", n)
	}
}

// TestCommitCache: a commit looked up by SHA is kept; one looked up by a tag or branch for RefTTL.
func TestCommitCache(t *testing.T) {
	gh := newFake(t)
	clk := &clock{now: t0}
	ann := &annotatedRef{}
	s, _ := newTestSink(t, Config{Workloads: ann, Client: newClient(t, gh), Org: gh.Org(), Now: clk.Now, RefTTL: time.Minute})
	resolve := func(rev int64, ref string, image string) commit {
		t.Helper()
		ann.commit = ref
		c, err := s.resolve(t.Context(), ro(rev, rollout.PhaseInProgress, withImage(image)))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	steps := []struct {
		name      string
		ref       string
		image     string
		advance   time.Duration
		wantSHA   string
		wantCalls int
	}{
		{name: "a SHA", ref: sha1, wantSHA: sha1, wantCalls: 1},
		{name: "the same SHA, for another workload", ref: sha1, advance: 24 * time.Hour, wantSHA: sha1, wantCalls: 1},
		{name: "a tag", image: "ghcr.io/octo-org/web:v1.1.0", wantSHA: sha2, wantCalls: 2},
		{name: "the tag again, within the TTL", image: "ghcr.io/octo-org/web:v1.1.0", advance: 30 * time.Second, wantSHA: sha2, wantCalls: 2},
		{name: "the SHA the tag resolved to is kept", ref: sha2, wantSHA: sha2, wantCalls: 2},
		{name: "the tag after the TTL", image: "ghcr.io/octo-org/web:v1.1.0", advance: time.Minute, wantSHA: sha2, wantCalls: 3},
	}
	for i, st := range steps {
		clk.advance(st.advance)
		image := st.image
		if image == "" {
			image = "ghcr.io/octo-org/web:v1.0.0"
		}
		if c := resolve(int64(i+1), st.ref, image); c.SHA != st.wantSHA {
			t.Errorf("%s: commit %s, want %s", st.name, c.SHA, st.wantSHA)
		}
		if n := commitCalls(gh); n != st.wantCalls {
			t.Errorf("%s: %d commit lookups so far, want %d", st.name, n, st.wantCalls)
		}
	}
}

// annotatedRef annotates every workload with the repository shop and, when set, the commit.
type annotatedRef struct{ commit string }

func (a *annotatedRef) Annotations(context.Context, owner.Workload) (Annotations, bool, error) {
	w := map[string]string{AnnotationRepository: "shop"}
	if a.commit != "" {
		w[AnnotationCommit] = a.commit
	}
	return Annotations{Workload: w}, true, nil
}
