package flux

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/tools/cache"

	"github.com/deployment-tracker/deployment-tracker/internal/sink"
)

var (
	commitAt  = time.Date(2025, 6, 1, 10, 0, 0, 0, time.UTC)
	appliedAt = commitAt.Add(4*time.Minute + 30*time.Second)
)

// kustomization builds a Kustomization Ready at readyAt after applying rev from the GitRepository "fleet".
func kustomization(name, rev string, readyAt time.Time, change ...func(*unstructured.Unstructured)) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "kustomize.toolkit.fluxcd.io/v1",
		"kind":       "Kustomization",
		"metadata":   map[string]any{"namespace": "flux-system", "name": name},
		"spec":       map[string]any{"sourceRef": map[string]any{"kind": "GitRepository", "name": "fleet"}},
		"status": map[string]any{
			"lastAppliedRevision": rev,
			"conditions": []any{map[string]any{
				"type": "Ready", "status": "True", "reason": "ReconciliationSucceeded",
				"message": "Applied revision: " + rev, "lastTransitionTime": readyAt.Format(time.RFC3339),
			}},
		},
	}}
	for _, c := range change {
		c(u)
	}
	return u
}

func gitRepository(namespace, name, url string) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "source.toolkit.fluxcd.io/v1",
		"kind":       "GitRepository",
		"metadata":   map[string]any{"namespace": namespace, "name": name},
		"spec":       map[string]any{"url": url, "interval": "1m"},
	}}
}

func annotate(k, v string) func(*unstructured.Unstructured) {
	return func(u *unstructured.Unstructured) { u.SetAnnotations(map[string]string{k: v}) }
}

// fakeCommits answers commit times of octo-org/fleet, or the errors queued for it.
type fakeCommits struct {
	mu    sync.Mutex
	times map[string]time.Time
	errs  []error
	calls int
}

func (f *fakeCommits) CommitTime(_ context.Context, owner, repo, sha string) (time.Time, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if len(f.errs) > 0 {
		err := f.errs[0]
		f.errs = f.errs[1:]
		return time.Time{}, err
	}
	if t, ok := f.times[owner+"/"+repo+"@"+sha]; ok {
		return t, nil
	}
	return time.Time{}, ErrCommitNotFound
}

// recorder keeps the observations.
type recorder struct {
	mu  sync.Mutex
	obs []Observation
}

func (r *recorder) Record(_ context.Context, o Observation) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.obs = append(r.obs, o)
}

func (r *recorder) all() []Observation {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Observation(nil), r.obs...)
}

// discovery serves the Kustomization API while served is true.
type discovery struct{ served atomic.Bool }

func (d *discovery) ServerResourcesForGroupVersion(gv string) (*metav1.APIResourceList, error) {
	if !d.served.Load() || gv != KustomizationGVR.GroupVersion().String() {
		return nil, apierrors.NewNotFound(schema.GroupResource{}, gv)
	}
	return &metav1.APIResourceList{GroupVersion: gv, APIResources: []metav1.APIResource{{Name: "kustomizations", Namespaced: true, Kind: "Kustomization"}}}, nil
}

func newDynamic(objs ...runtime.Object) *dynamicfake.FakeDynamicClient {
	return dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), map[schema.GroupVersionResource]string{
		KustomizationGVR: "KustomizationList", GitRepositoryGVR: "GitRepositoryList",
	}, objs...)
}

func newController(t *testing.T, cfg Config) *Controller {
	t.Helper()
	if cfg.Discovery == nil {
		cfg.Discovery = &discovery{}
	}
	if cfg.Ledger == nil {
		cfg.Ledger = &MemoryLedger{}
	}
	if cfg.Recorder == nil {
		cfg.Recorder = &recorder{}
	}
	cfg.Cluster = "eu-1"
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestMeasure: what one applied revision becomes, from the sources of its commit time.
func TestMeasure(t *testing.T) {
	const rev = "main@sha1:" + sha1A
	commits := map[string]time.Time{"octo-org/fleet@" + sha1A: commitAt, "octo-org/infra@" + sha1B: commitAt}
	fleet := gitRepository("flux-system", "fleet", "https://github.com/octo-org/fleet.git")
	k := types.NamespacedName{Namespace: "flux-system", Name: "apps"}
	tests := []struct {
		name     string
		obj      *unstructured.Unstructured
		gitRepos []runtime.Object
		noGitHub bool
		errs     []error
		final    bool
		want     *Observation // nil: nothing observed
		wantErr  bool
		calls    int
	}{
		{name: "GitRepository on GitHub", obj: kustomization("apps", rev, appliedAt), gitRepos: []runtime.Object{fleet}, calls: 1,
			want: &Observation{Repository: "octo-org/fleet", Commit: sha1A, CommitTime: commitAt, LeadTime: 4*time.Minute + 30*time.Second}},
		{name: "ssh URL", obj: kustomization("apps", rev, appliedAt), gitRepos: []runtime.Object{gitRepository("flux-system", "fleet", "ssh://git@github.com/octo-org/fleet")}, calls: 1,
			want: &Observation{Repository: "octo-org/fleet", Commit: sha1A, CommitTime: commitAt, LeadTime: 4*time.Minute + 30*time.Second}},
		{name: "source in another namespace", gitRepos: []runtime.Object{gitRepository("sources", "fleet", "https://github.com/octo-org/fleet")}, calls: 1,
			obj: kustomization("apps", rev, appliedAt, func(u *unstructured.Unstructured) {
				_ = unstructured.SetNestedField(u.Object, "sources", "spec", "sourceRef", "namespace")
			}),
			want: &Observation{Repository: "octo-org/fleet", Commit: sha1A, CommitTime: commitAt, LeadTime: 4*time.Minute + 30*time.Second}},
		{name: "commit-time annotation", obj: kustomization("apps", rev, appliedAt, annotate(AnnotationCommitTime, "2025-06-01T12:00:00+02:00")),
			want: &Observation{Commit: sha1A, CommitTime: commitAt, LeadTime: 4*time.Minute + 30*time.Second}},
		{name: "invalid commit-time annotation", obj: kustomization("apps", rev, appliedAt, annotate(AnnotationCommitTime, "yesterday")),
			want: &Observation{Commit: sha1A, Reason: ReasonInvalidCommitTime}},
		{name: "OCI artifact from GitHub", calls: 1,
			obj: kustomization("apps", "latest@sha256:3b6cdcc7adcc9a84d3214ee1c029543789d90b5ae69debe9efa3f66e982875de", appliedAt,
				annotate(AnnotationRepository, "octo-org/infra"), func(u *unstructured.Unstructured) {
					_ = unstructured.SetNestedField(u.Object, "main@sha1:"+sha1B, "status", "lastAppliedOriginRevision")
					_ = unstructured.SetNestedField(u.Object, "OCIRepository", "spec", "sourceRef", "kind")
				}),
			want: &Observation{Repository: "octo-org/infra", Commit: sha1B, CommitTime: commitAt, LeadTime: 4*time.Minute + 30*time.Second}},
		{name: "OCI artifact without origin", obj: kustomization("apps", "latest@sha256:3b6cdcc7adcc9a84d3214ee1c029543789d90b5ae69debe9efa3f66e982875de", appliedAt),
			want: &Observation{Reason: ReasonNoCommit}},
		{name: "GitRepository elsewhere", obj: kustomization("apps", rev, appliedAt), gitRepos: []runtime.Object{gitRepository("flux-system", "fleet", "https://gitlab.com/octo-org/fleet")},
			want: &Observation{Commit: sha1A, Reason: ReasonNoRepository}},
		{name: "no GitRepository", obj: kustomization("apps", rev, appliedAt),
			want: &Observation{Commit: sha1A, Reason: ReasonNoRepository}},
		{name: "annotation not a repository", obj: kustomization("apps", rev, appliedAt, annotate(AnnotationRepository, "fleet")), gitRepos: []runtime.Object{fleet},
			want: &Observation{Commit: sha1A, Reason: ReasonNoRepository}},
		{name: "no GitHub client", obj: kustomization("apps", rev, appliedAt), gitRepos: []runtime.Object{fleet}, noGitHub: true,
			want: &Observation{Repository: "octo-org/fleet", Commit: sha1A, Reason: ReasonLookupDisabled}},
		{name: "commit not found", obj: kustomization("apps", "main@sha1:"+sha1B, appliedAt), gitRepos: []runtime.Object{fleet}, calls: 1,
			want: &Observation{Repository: "octo-org/fleet", Commit: sha1B, Reason: ReasonCommitNotFound}},
		{name: "permanent answer", obj: kustomization("apps", rev, appliedAt), gitRepos: []runtime.Object{fleet}, calls: 1,
			errs: []error{&sink.PermanentError{StatusCode: http.StatusBadRequest}},
			want: &Observation{Repository: "octo-org/fleet", Commit: sha1A, Reason: ReasonRejected}},
		{name: "failing lookup is retried", obj: kustomization("apps", rev, appliedAt), gitRepos: []runtime.Object{fleet}, calls: 1,
			errs: []error{errors.New("connection reset")}, wantErr: true},
		{name: "failing lookup, last attempt", obj: kustomization("apps", rev, appliedAt), gitRepos: []runtime.Object{fleet}, calls: 1, final: true,
			errs: []error{errors.New("connection reset")},
			want: &Observation{Repository: "octo-org/fleet", Commit: sha1A, Reason: ReasonLookupFailed}},
		{name: "applied before the commit", obj: kustomization("apps", rev, commitAt.Add(-time.Second)), gitRepos: []runtime.Object{fleet}, calls: 1,
			want: &Observation{Repository: "octo-org/fleet", Commit: sha1A, CommitTime: commitAt, Reason: ReasonAppliedBeforeCommit}},
		{name: "progressing", obj: kustomization("apps", rev, appliedAt, func(u *unstructured.Unstructured) {
			_ = unstructured.SetNestedSlice(u.Object, []any{map[string]any{"type": "Ready", "status": "Unknown", "reason": "Progressing", "lastTransitionTime": appliedAt.Format(time.RFC3339)}}, "status", "conditions")
		})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fc := &fakeCommits{times: commits, errs: tt.errs}
			rec := &recorder{}
			cfg := Config{Dynamic: newDynamic(tt.gitRepos...), Recorder: rec, Commits: fc}
			if tt.noGitHub {
				cfg.Commits = nil
			}
			c := newController(t, cfg)
			c.store = cache.NewStore(cache.MetaNamespaceKeyFunc)
			if err := c.store.Add(tt.obj); err != nil {
				t.Fatal(err)
			}
			err := c.sync(t.Context(), k, tt.final)
			if (err != nil) != tt.wantErr {
				t.Fatalf("sync: %v, want error %t", err, tt.wantErr)
			}
			var want []Observation
			if tt.want != nil {
				w := *tt.want
				w.Kustomization, w.Cluster, w.AppliedAt = k, "eu-1", FromUnstructured(tt.obj).Ready.LastTransitionTime
				w.Revision = FromUnstructured(tt.obj).LastAppliedRevision
				want = append(want, w)
			}
			if diff := cmp.Diff(want, rec.all(), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("observations (-want +got):\n%s", diff)
			}
			if fc.calls != tt.calls {
				t.Errorf("%d commit lookups, want %d", fc.calls, tt.calls)
			}
			// Observed once: syncing again observes nothing more.
			if err == nil {
				if err := c.sync(t.Context(), k, false); err != nil {
					t.Fatal(err)
				}
				if got := len(rec.all()); got != len(want) {
					t.Errorf("a second sync observed again: %d observations", got)
				}
			}
		})
	}
}

// waitFor polls cond for up to 10 seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func setStatus(t *testing.T, dyn *dynamicfake.FakeDynamicClient, u *unstructured.Unstructured) {
	t.Helper()
	if _, err := dyn.Resource(KustomizationGVR).Namespace(u.GetNamespace()).Update(t.Context(), u, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// TestController: the watch starts once discovery serves the API; each applied revision is observed once,
// also by a controller started again on the same ledger; a deleted Kustomization leaves the ledger; the watch
// stops when the API goes.
func TestController(t *testing.T) {
	const rev1, rev2 = "main@sha1:" + sha1A, "main@sha1:" + sha1B
	dyn := newDynamic(gitRepository("flux-system", "fleet", "https://github.com/octo-org/fleet"))
	disc := &discovery{}
	ledger := &MemoryLedger{}
	fc := &fakeCommits{times: map[string]time.Time{"octo-org/fleet@" + sha1A: commitAt, "octo-org/fleet@" + sha1B: commitAt.Add(time.Hour)}}
	start := func() (*recorder, func()) {
		rec := &recorder{}
		c := newController(t, Config{Dynamic: dyn, Discovery: disc, Ledger: ledger, Commits: fc, Recorder: rec, DiscoveryInterval: 10 * time.Millisecond})
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- c.Start(ctx) }()
		return rec, func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Start: %v", err)
			}
		}
	}
	rec, stop := start()
	k := kustomization("apps", rev1, appliedAt)
	if _, err := dyn.Resource(KustomizationGVR).Namespace("flux-system").Create(t.Context(), k, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	if got := rec.all(); len(got) != 0 {
		t.Fatalf("observed %v before the API is served", got)
	}
	disc.served.Store(true)
	waitFor(t, "the first revision", func() bool { return len(rec.all()) == 1 })
	if got := rec.all()[0]; got.LeadTime != 4*time.Minute+30*time.Second || got.Revision != rev1 {
		t.Errorf("observation %+v", got)
	}

	// Reconciled again at the same revision: Ready moves, nothing is observed.
	setStatus(t, dyn, kustomization("apps", rev1, appliedAt.Add(10*time.Minute)))
	// A new revision.
	setStatus(t, dyn, kustomization("apps", rev2, commitAt.Add(time.Hour+time.Minute)))
	waitFor(t, "the second revision", func() bool { return len(rec.all()) == 2 })
	if got := rec.all()[1]; got.LeadTime != time.Minute || got.Revision != rev2 {
		t.Errorf("observation %+v", got)
	}
	stop()

	// Started again on the same ledger: nothing new.
	rec, stop = start()
	calls := fc.calls
	time.Sleep(100 * time.Millisecond)
	if got := rec.all(); len(got) != 0 || fc.calls != calls {
		t.Errorf("after a restart: observed %v, %d lookups", got, fc.calls-calls)
	}
	if err := dyn.Resource(KustomizationGVR).Namespace("flux-system").Delete(t.Context(), "apps", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the ledger to forget the deleted Kustomization", func() bool {
		l, _ := ledger.Load(t.Context())
		return len(l) == 0
	})
	disc.served.Store(false)
	time.Sleep(50 * time.Millisecond)
	stop()
}

// TestControllerRetries: a failing lookup is retried with backoff, a rate limit waits, and after MaxRetries the
// revision is observed without lead time.
func TestControllerRetries(t *testing.T) {
	tests := []struct {
		name   string
		errs   []error
		reason string
	}{
		{name: "recovers", errs: []error{errors.New("timeout"), &sink.RetryAfterError{At: time.Now().Add(20 * time.Millisecond)}, errors.New("timeout")}},
		{name: "gives up", errs: []error{errors.New("1"), errors.New("2"), errors.New("3"), errors.New("4")}, reason: ReasonLookupFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dyn := newDynamic(gitRepository("flux-system", "fleet", "https://github.com/octo-org/fleet"), kustomization("apps", "main@sha1:"+sha1A, appliedAt))
			disc := &discovery{}
			disc.served.Store(true)
			fc := &fakeCommits{times: map[string]time.Time{"octo-org/fleet@" + sha1A: commitAt}, errs: tt.errs}
			rec := &recorder{}
			c := newController(t, Config{Dynamic: dyn, Discovery: disc, Commits: fc, Recorder: rec, MaxRetries: 3, RetryBaseDelay: time.Millisecond, RetryMaxDelay: 5 * time.Millisecond})
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			go func() { _ = c.Start(ctx) }()
			waitFor(t, "an observation", func() bool { return len(rec.all()) == 1 })
			if got := rec.all()[0].Reason; got != tt.reason {
				t.Errorf("reason %q, want %q", got, tt.reason)
			}
		})
	}
}

func TestNew(t *testing.T) {
	_, err := New(Config{DiscoveryInterval: -1, MaxRetries: -1})
	if err == nil {
		t.Fatal("no error")
	}
	for _, s := range []string{"Dynamic", "Discovery", "Ledger", "Recorder", "DiscoveryInterval", "MaxRetries"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not name %s", err, s)
		}
	}
}
