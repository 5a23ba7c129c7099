package slack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/deployment-tracker/deployment-tracker/internal/owner"
	"github.com/deployment-tracker/deployment-tracker/internal/rollout"
	"github.com/deployment-tracker/deployment-tracker/internal/sink"
	"github.com/deployment-tracker/deployment-tracker/internal/slacktest"
)

const token = "xoxb-test-token"

var t0 = time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC)

// clock is a fake clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// annotations is a WorkloadReader over a map of annotations.
type annotations map[owner.Workload]map[string]string

func (a annotations) Metadata(_ context.Context, w owner.Workload) (Metadata, bool, error) {
	ann, ok := a[w]
	return Metadata{Annotations: ann}, ok, nil
}

// metadata is a WorkloadReader over a map of metadata.
type metadata map[owner.Workload]Metadata

func (m metadata) Metadata(_ context.Context, w owner.Workload) (Metadata, bool, error) {
	md, ok := m[w]
	return md, ok, nil
}

// namespaces is a NamespaceReader over a map.
type namespaces map[string]Metadata

func (n namespaces) Namespace(_ context.Context, name string) (Metadata, bool, error) {
	md, ok := n[name]
	return md, ok, nil
}

var web = owner.Workload{Group: "apps", Kind: "Deployment", Namespace: "shop", Name: "web"}

func sample(phase rollout.Phase) rollout.Rollout {
	r := rollout.Rollout{
		Workload: web, Revision: 3, RevisionKey: "5d8f7c",
		Containers: []rollout.Container{{Name: "app", Image: "ghcr.io/octo-org/web:1.4.2",
			Digest: "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}},
		Phase: phase, Restores: 1, Started: t0, Ready: 1, Desired: 3,
	}
	if phase == rollout.PhaseCurrent {
		r.Completed, r.Ready = t0.Add(95*time.Second), 3
	}
	return r
}

func newSink(t *testing.T, apiURL string, hc *http.Client, clk *clock, ann WorkloadReader, reg *prometheus.CounterVec) *Sink {
	t.Helper()
	s, err := New(Config{Token: token, Channel: "#deploys", LogicalEnvironment: "production", Cluster: "eu-1",
		Workloads: ann, APIURL: apiURL, HTTPClient: hc, Now: clk.Now, Errors: reg})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func errorsVec() *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{Name: "deptracker_slack_errors_total"}, []string{"error"})
}

// TestNotifyRequests asserts method, path, token and the decoded form of the post and of the update.
func TestNotifyRequests(t *testing.T) {
	type req struct {
		path   string
		values url.Values
	}
	var got []req
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			t.Errorf("method %s, want POST", r.Method)
		}
		if ct := r.Header.Get("Content-Type"); ct != "application/x-www-form-urlencoded" {
			t.Errorf("Content-Type %q", ct)
		}
		if err := r.ParseForm(); err != nil {
			t.Fatal(err)
		}
		// slack-go sends chat.* as a form with the token in it (Slack also takes Authorization: Bearer).
		if tok := r.PostForm.Get("token"); tok != token {
			t.Errorf("token %q, want %q", tok, token)
		}
		got = append(got, req{path: r.URL.Path, values: r.PostForm})
		_, _ = w.Write([]byte(`{"ok":true,"channel":"C1","ts":"1700000000.000100"}`))
	}))
	defer srv.Close()
	clk := &clock{now: t0}
	s := newSink(t, srv.URL+"/api/", srv.Client(), clk, nil, nil)

	state, err := s.Notify(t.Context(), rollout.Notification{Rollout: sample(rollout.PhaseInProgress)})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]string{"channel": "C1", "ts": "1700000000.000100"}, state); diff != "" {
		t.Errorf("state (-want +got):\n%s", diff)
	}
	clk.Add(time.Second)
	if _, err := s.Notify(t.Context(), rollout.Notification{Rollout: sample(rollout.PhaseCurrent), Acknowledged: rollout.PhaseInProgress, State: state}); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("%d requests, want 2", len(got))
	}
	for i, want := range []struct{ path, channel, ts, inText string }{
		{"/api/chat.postMessage", "#deploys", "", "rollout in progress"},
		{"/api/chat.update", "C1", "1700000000.000100", "rollout complete"},
	} {
		g := got[i]
		if g.path != want.path || g.values.Get("channel") != want.channel || g.values.Get("ts") != want.ts {
			t.Errorf("request %d: %s channel=%q ts=%q, want %s channel=%q ts=%q", i, g.path, g.values.Get("channel"), g.values.Get("ts"), want.path, want.channel, want.ts)
		}
		text := g.values.Get("text")
		for _, s := range []string{want.inText, "Deployment shop/web", "production", "eu-1", "ghcr.io/octo-org/web:1.4.2@sha256:0123456789ab", "Revision: 3 (restores 1)"} {
			if !strings.Contains(text, s) {
				t.Errorf("request %d: text %q lacks %q", i, text, s)
			}
		}
		var blocks []map[string]any
		if err := json.Unmarshal([]byte(g.values.Get("blocks")), &blocks); err != nil || len(blocks) < 3 {
			t.Errorf("request %d: blocks %q: %v", i, g.values.Get("blocks"), err)
		}
	}
	if text := got[1].values.Get("text"); !strings.Contains(text, "Duration: 1m35s") || !strings.Contains(text, "Ready: 3/3") {
		t.Errorf("update text %q lacks the duration or the ready count", text)
	}
}

// TestClassification: what each Slack answer gives.
func TestClassification(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
		header map[string]string
		body   string
		class  sink.Class
		config bool   // a ConfigError
		label  string // counted
		at     time.Duration
	}{
		{name: "ok", status: 200, body: `{"ok":true,"channel":"C1","ts":"1.2"}`, class: sink.ClassNone},
		{name: "429", status: 429, header: map[string]string{"Retry-After": "7"}, body: `{"ok":false,"error":"ratelimited"}`, class: sink.ClassRetryAfter, label: "ratelimited", at: 7 * time.Second},
		{name: "429 without Retry-After", status: 429, body: ``, class: sink.ClassRetryAfter, label: "http", at: time.Second},
		{name: "invalid_auth", status: 200, body: `{"ok":false,"error":"invalid_auth"}`, class: sink.ClassCredentials, label: "invalid_auth"},
		{name: "not_authed", status: 200, body: `{"ok":false,"error":"not_authed"}`, class: sink.ClassCredentials, label: "not_authed"},
		{name: "account_inactive", status: 200, body: `{"ok":false,"error":"account_inactive"}`, class: sink.ClassCredentials, label: "account_inactive"},
		{name: "token_revoked", status: 200, body: `{"ok":false,"error":"token_revoked"}`, class: sink.ClassCredentials, label: "token_revoked"},
		{name: "token_expired", status: 200, body: `{"ok":false,"error":"token_expired"}`, class: sink.ClassCredentials, label: "token_expired"},
		{name: "no_permission", status: 200, body: `{"ok":false,"error":"no_permission"}`, class: sink.ClassCredentials, label: "no_permission"},
		{name: "missing_scope", status: 200, body: `{"ok":false,"error":"missing_scope","needed":"chat:write"}`, class: sink.ClassCredentials, label: "missing_scope"},
		{name: "ekm_access_denied", status: 200, body: `{"ok":false,"error":"ekm_access_denied"}`, class: sink.ClassCredentials, label: "ekm_access_denied"},
		{name: "team_access_not_granted", status: 200, body: `{"ok":false,"error":"team_access_not_granted"}`, class: sink.ClassCredentials, label: "team_access_not_granted"},
		{name: "channel_not_found", status: 200, body: `{"ok":false,"error":"channel_not_found"}`, class: sink.ClassRetryable, config: true, label: "channel_not_found"},
		{name: "not_in_channel", status: 200, body: `{"ok":false,"error":"not_in_channel"}`, class: sink.ClassRetryable, config: true, label: "not_in_channel"},
		{name: "is_archived", status: 200, body: `{"ok":false,"error":"is_archived"}`, class: sink.ClassRetryable, config: true, label: "is_archived"},
		{name: "internal_error", status: 200, body: `{"ok":false,"error":"internal_error"}`, class: sink.ClassRetryable, label: "internal_error"},
		{name: "invalid_blocks", status: 200, body: `{"ok":false,"error":"invalid_blocks"}`, class: sink.ClassPermanent, label: "invalid_blocks"},
		{name: "msg_too_long", status: 200, body: `{"ok":false,"error":"msg_too_long"}`, class: sink.ClassPermanent, label: "msg_too_long"},
		{name: "unknown code", status: 200, body: `{"ok":false,"error":"something_new"}`, class: sink.ClassPermanent, label: "other"},
		{name: "500", status: 500, body: `<html>`, class: sink.ClassRetryable, label: "http"},
		{name: "503", status: 503, body: ``, class: sink.ClassRetryable, label: "http"},
		{name: "408", status: 408, body: ``, class: sink.ClassRetryable, label: "http"},
		{name: "400", status: 400, body: ``, class: sink.ClassPermanent, label: "http"},
		{name: "not JSON", status: 200, body: `<html>`, class: sink.ClassRetryable, label: "other"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				for k, v := range tc.header {
					w.Header().Set(k, v)
				}
				w.WriteHeader(tc.status)
				_, _ = w.Write([]byte(tc.body))
			}))
			defer srv.Close()
			vec := errorsVec()
			clk := &clock{now: t0}
			s := newSink(t, srv.URL+"/api/", srv.Client(), clk, nil, vec)
			_, err := s.Notify(t.Context(), rollout.Notification{Rollout: sample(rollout.PhaseInProgress)})
			if got := sink.Classify(err); got != tc.class {
				t.Fatalf("class %v, want %v (err %v)", got, tc.class, err)
			}
			var ce *ConfigError
			if errors.As(err, &ce) != tc.config {
				t.Errorf("ConfigError %v, want %v: %v", ce, tc.config, err)
			}
			if (tc.config || tc.class == sink.ClassCredentials) && !strings.Contains(err.Error(), tc.label) {
				t.Errorf("error %q does not name %s", err, tc.label)
			}
			if tc.at != 0 {
				var ra *sink.RetryAfterError
				errors.As(err, &ra)
				if !ra.At.Equal(t0.Add(tc.at)) {
					t.Errorf("retry at %s, want %s", ra.At, t0.Add(tc.at))
				}
			}
			if tc.label != "" {
				if n := testutil.ToFloat64(vec.WithLabelValues(tc.label)); n != 1 {
					t.Errorf("deptracker_slack_errors_total{error=%q} = %v, want 1", tc.label, n)
				}
			}
			if err != nil && strings.Contains(err.Error(), token) {
				t.Errorf("the error shows the token: %v", err)
			}
		})
	}
}

// TestAgainstFake: a rollout's message round trip against the fake: one post, updates to the same message,
// annotations, pacing, faults.
func TestAgainstFake(t *testing.T) {
	f := slacktest.NewServer(token)
	defer f.Close()
	deploys := f.AddChannel("deploys")
	team := f.AddChannel("team-shop")
	clk := &clock{now: t0}
	ann := annotations{}
	s := newSink(t, f.URL(), f.Client(), clk, ann, errorsVec())
	notify := func(n rollout.Notification) (map[string]string, error) {
		t.Helper()
		clk.Add(time.Second)
		return s.Notify(t.Context(), n)
	}

	state, err := notify(rollout.Notification{Rollout: sample(rollout.PhaseInProgress)})
	if err != nil {
		t.Fatal(err)
	}
	if state["channel"] != deploys {
		t.Errorf("posted to %q, want %s", state["channel"], deploys)
	}
	// The same phase again (at least once delivery) and the next one: the same message.
	for _, n := range []rollout.Notification{
		{Rollout: sample(rollout.PhaseInProgress), Acknowledged: rollout.PhaseInProgress, State: state},
		{Rollout: sample(rollout.PhaseCurrent), Acknowledged: rollout.PhaseInProgress, State: state},
	} {
		got, err := notify(n)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(state, got); diff != "" {
			t.Errorf("state changed (-want +got):\n%s", diff)
		}
	}
	msgs := f.Messages()
	if len(msgs) != 1 || len(msgs[0].Versions) != 3 {
		t.Fatalf("messages %+v, want 1 with 3 versions", msgs)
	}
	if !strings.Contains(msgs[0].Latest().Text, "rollout complete") {
		t.Errorf("latest text %q", msgs[0].Latest().Text)
	}

	t.Run("an update of a message the fake never issued is refused", func(t *testing.T) {
		_, err := notify(rollout.Notification{Rollout: sample(rollout.PhaseCurrent), Acknowledged: rollout.PhaseInProgress,
			State: map[string]string{"channel": deploys, "ts": "1.000001"}})
		if sink.Classify(err) != sink.ClassPermanent || !strings.Contains(err.Error(), "message_not_found") {
			t.Errorf("err %v, want a permanent message_not_found", err)
		}
	})
	t.Run("channel annotation", func(t *testing.T) {
		other := web
		other.Name = "api"
		ann[other] = map[string]string{AnnotationChannel: "#team-shop"}
		r := sample(rollout.PhaseInProgress)
		r.Workload = other
		st, err := notify(rollout.Notification{Rollout: r})
		if err != nil || st["channel"] != team {
			t.Errorf("state %v, err %v, want channel %s", st, err, team)
		}
	})
	t.Run("ignored workload", func(t *testing.T) {
		quiet := web
		quiet.Name = "quiet"
		ann[quiet] = map[string]string{AnnotationIgnore: "true"}
		r := sample(rollout.PhaseInProgress)
		r.Workload = quiet
		before := len(f.Calls())
		st, err := notify(rollout.Notification{Rollout: r})
		if err != nil || st["ignored"] != "true" {
			t.Errorf("state %v, err %v", st, err)
		}
		// Deleted: the annotations are gone with the workload, the opt-out stays.
		delete(ann, quiet)
		r.Phase = rollout.PhaseDeleted
		if st, err = notify(rollout.Notification{Rollout: r, Acknowledged: rollout.PhaseInProgress, State: st}); err != nil || st["ignored"] != "true" {
			t.Errorf("deleted: state %v, err %v", st, err)
		}
		if n := len(f.Calls()) - before; n != 0 {
			t.Errorf("%d calls for an ignored workload", n)
		}

		// Opted in again (the workload exists, without annotations): the next phase is posted.
		again := quiet
		again.Name = "again"
		ann[again] = map[string]string{AnnotationIgnore: "true"}
		r.Workload, r.Phase = again, rollout.PhaseInProgress
		st, _ = notify(rollout.Notification{Rollout: r})
		ann[again] = nil
		r.Phase = rollout.PhaseCurrent
		if st, err = notify(rollout.Notification{Rollout: r, Acknowledged: rollout.PhaseInProgress, State: st}); err != nil || st["ts"] == "" {
			t.Errorf("opted in again: state %v, err %v, want a message", st, err)
		}
	})
	t.Run("pacing", func(t *testing.T) {
		// Two messages in the same instant to one channel: the second waits a second.
		n := rollout.Notification{Rollout: sample(rollout.PhaseCurrent), Acknowledged: rollout.PhaseInProgress, State: state}
		clk.Add(time.Second)
		if _, err := s.Notify(t.Context(), n); err != nil {
			t.Fatal(err)
		}
		_, err := s.Notify(t.Context(), n)
		var ra *sink.RetryAfterError
		if !errors.As(err, &ra) || !ra.At.Equal(clk.Now().Add(time.Second)) {
			t.Fatalf("err %v, want a Retry-After of one second", err)
		}
		clk.Add(time.Second)
		if _, err := s.Notify(t.Context(), n); err != nil {
			t.Errorf("after the pause: %v", err)
		}
	})
	t.Run("faults", func(t *testing.T) {
		f.RateLimit(1, 3*time.Second)
		n := rollout.Notification{Rollout: sample(rollout.PhaseCurrent), Acknowledged: rollout.PhaseCurrent, State: state}
		_, err := notify(n)
		var ra *sink.RetryAfterError
		if !errors.As(err, &ra) || !ra.At.Equal(clk.Now().Add(3*time.Second)) {
			t.Errorf("err %v, want Retry-After 3s", err)
		}
		f.Revoke()
		var refused *sink.CredentialsError
		if _, err := notify(n); !errors.As(err, &refused) || !strings.Contains(refused.Message, "invalid_auth") {
			t.Errorf("err %v, want credentials refused: invalid_auth", err)
		}
		f.Restore()
		var ce *ConfigError
		f.AddChannelWithoutBot("private")
		r := sample(rollout.PhaseInProgress)
		r.Revision = 9
		for ch, code := range map[string]string{"#nowhere": "channel_not_found", "#private": "not_in_channel"} {
			ann[web] = map[string]string{AnnotationChannel: ch}
			if _, err := notify(rollout.Notification{Rollout: r}); !errors.As(err, &ce) || ce.Code != code {
				t.Errorf("%s: err %v, want %s", ch, err, code)
			}
		}
		delete(ann, web)
		if _, err := notify(n); err != nil {
			t.Errorf("after the faults: %v", err)
		}
	})
}

func TestNewValidates(t *testing.T) {
	_, err := New(Config{APIURL: "ftp://x"})
	for _, want := range []string{"token", "channel", "API URL"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not name %s", err, want)
		}
	}
}

func TestImageRef(t *testing.T) {
	const d = "sha256:3b1b3b8a7a0fb1c4a5e1b0f0d77c7b6f5d4f7f6a3a2e1d0c9b8a7f6e5d4c3b2a"
	for _, tc := range []struct {
		c    rollout.Container
		want string
	}{
		{rollout.Container{Image: "redis:7.4", Digest: d}, "redis:7.4@sha256:3b1b3b8a7a0f"},
		{rollout.Container{Image: "redis:7.4"}, "redis:7.4"},
		{rollout.Container{Image: "docker.io/envoyproxy/envoy@" + d, Digest: d}, "docker.io/envoyproxy/envoy@sha256:3b1b3b8a7a0f"},
	} {
		if got := imageRef(tc.c); got != tc.want {
			t.Errorf("imageRef(%+v) = %q, want %q", tc.c, got, tc.want)
		}
	}
}

func TestCacheWorkloads(t *testing.T) {
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web",
		Annotations: map[string]string{AnnotationChannel: "#shop"}, Labels: map[string]string{"team": "payments"}}}
	c := CacheWorkloads{Reader: fake.NewClientBuilder().WithObjects(d).Build()}
	for _, tc := range []struct {
		w     owner.Workload
		want  Metadata
		found bool
	}{
		{w: web, want: Metadata{Annotations: map[string]string{AnnotationChannel: "#shop"}, Labels: map[string]string{"team": "payments"}}, found: true},
		{w: owner.Workload{Group: "apps", Kind: "StatefulSet", Namespace: "shop", Name: "web"}},
		{w: owner.Workload{Group: "argoproj.io", Kind: "Rollout", Namespace: "shop", Name: "web"}},
	} {
		got, found, err := c.Metadata(t.Context(), tc.w)
		if err != nil || found != tc.found {
			t.Errorf("%s: found %v, err %v; want found %v", tc.w, found, err, tc.found)
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("%s: metadata (-want +got):\n%s", tc.w, diff)
		}
	}
}

// countingReader counts the Gets of its Reader and can refuse them.
type countingReader struct {
	client.Reader
	gets   int
	refuse error
}

func (c *countingReader) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	c.gets++
	if c.refuse != nil {
		return c.refuse
	}
	return c.Reader.Get(ctx, key, obj, opts...)
}

// TestAPINamespaces: a metadata GET kept for the TTL, trimmed to the Slack annotations and the team label; a
// missing namespace is no metadata, a refusal is no metadata either (logged once), other errors are returned.
func TestAPINamespaces(t *testing.T) {
	ns := &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{Name: "shop",
			Annotations: map[string]string{AnnotationChannel: "#shop", "other.io/x": "y"},
			Labels:      map[string]string{"team": "payments", "env": "prod"}},
	}
	r := &countingReader{Reader: fake.NewClientBuilder().WithObjects(ns).Build()}
	clk := &clock{now: t0}
	n := &APINamespaces{Reader: r, TeamLabel: "team", TTL: time.Minute, Now: clk.Now}
	want := Metadata{Annotations: map[string]string{AnnotationChannel: "#shop"}, Labels: map[string]string{"team": "payments"}}
	for i, tc := range []struct {
		name      string
		advance   time.Duration
		want      Metadata
		found     bool
		wantGets  int
		namespace string
	}{
		{name: "first read", namespace: "shop", want: want, found: true, wantGets: 1},
		{name: "within the TTL", namespace: "shop", advance: 59 * time.Second, want: want, found: true, wantGets: 1},
		{name: "after the TTL", namespace: "shop", advance: time.Second, want: want, found: true, wantGets: 2},
		{name: "missing", namespace: "gone", wantGets: 3},
		{name: "missing, cached", namespace: "gone", wantGets: 3},
	} {
		clk.Add(tc.advance)
		got, found, err := n.Namespace(t.Context(), tc.namespace)
		if err != nil || found != tc.found || r.gets != tc.wantGets {
			t.Errorf("%d %s: found %v, err %v, %d gets; want found %v, %d gets", i, tc.name, found, err, r.gets, tc.found, tc.wantGets)
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("%s: metadata (-want +got):\n%s", tc.name, diff)
		}
	}
	r.refuse = apierrors.NewForbidden(schema.GroupResource{Resource: "namespaces"}, "web", errors.New("no"))
	if md, found, err := n.Namespace(t.Context(), "web"); err != nil || found || md.Annotations != nil {
		t.Errorf("forbidden: %+v, %v, %v; want no metadata and no error", md, found, err)
	}
	r.refuse = errors.New("connection refused")
	if _, _, err := n.Namespace(t.Context(), "api"); err == nil {
		t.Error("a failed GET: no error")
	}
}

// TestPrecedence: the workload's annotation wins over its namespace's, which wins over SLACK_CHANNEL; the
// opt-out and the team label follow the same order; the team shows in the blocks and the fallback text.
func TestPrecedence(t *testing.T) {
	f := slacktest.NewServer(token)
	defer f.Close()
	deploys := f.AddChannel("deploys")
	nsChannel := f.AddChannel("shop")
	own := f.AddChannel("web")
	clk := &clock{now: t0}
	workloads := metadata{}
	nss := namespaces{}
	s, err := New(Config{Token: token, Channel: "#deploys", LogicalEnvironment: "production", Cluster: "eu-1",
		Workloads: workloads, Namespaces: nss, TeamLabel: "team", APIURL: f.URL(), HTTPClient: f.Client(), Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	md := func(ann map[string]string, team string) Metadata {
		m := Metadata{Annotations: ann}
		if team != "" {
			m.Labels = map[string]string{"team": team}
		}
		return m
	}
	for i, tc := range []struct {
		name         string
		workload, ns Metadata
		noNamespace  bool
		wantChannel  string
		wantIgnored  bool
		wantTeam     string
	}{
		{name: "nothing: the default", wantChannel: deploys},
		{name: "namespace channel", ns: md(map[string]string{AnnotationChannel: "#shop"}, ""), wantChannel: nsChannel},
		{name: "workload channel wins", workload: md(map[string]string{AnnotationChannel: "#web"}, ""),
			ns: md(map[string]string{AnnotationChannel: "#shop"}, ""), wantChannel: own},
		{name: "blank workload channel: the namespace's", workload: md(map[string]string{AnnotationChannel: " "}, ""),
			ns: md(map[string]string{AnnotationChannel: "#shop"}, ""), wantChannel: nsChannel},
		{name: "namespace opt-out", ns: md(map[string]string{AnnotationIgnore: "true", AnnotationChannel: "#shop"}, ""), wantIgnored: true},
		{name: "workload opts back in", workload: md(map[string]string{AnnotationIgnore: "false"}, ""),
			ns: md(map[string]string{AnnotationIgnore: "true"}, ""), wantChannel: deploys},
		{name: "workload opt-out", workload: md(map[string]string{AnnotationIgnore: "true"}, ""), wantIgnored: true},
		{name: "team from the namespace", ns: md(nil, "payments"), wantChannel: deploys, wantTeam: "payments"},
		{name: "team of the workload wins", workload: md(nil, "checkout"), ns: md(nil, "payments"), wantChannel: deploys, wantTeam: "checkout"},
		{name: "no namespace object", noNamespace: true, wantChannel: deploys},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := owner.Workload{Group: "apps", Kind: "Deployment", Namespace: fmt.Sprintf("ns-%d", i), Name: "web"}
			workloads[w] = tc.workload
			if !tc.noNamespace {
				nss[w.Namespace] = tc.ns
			}
			r := sample(rollout.PhaseInProgress)
			r.Workload = w
			clk.Add(time.Second)
			before := len(f.Messages())
			st, err := s.Notify(t.Context(), rollout.Notification{Rollout: r})
			if err != nil {
				t.Fatal(err)
			}
			if tc.wantIgnored {
				if st[StateIgnored] != "true" || len(f.Messages()) != before {
					t.Errorf("state %v, %d new messages; want ignored and none", st, len(f.Messages())-before)
				}
				return
			}
			if st[StateChannel] != tc.wantChannel || st[StateTeam] != tc.wantTeam {
				t.Errorf("state %v, want channel %s, team %q", st, tc.wantChannel, tc.wantTeam)
			}
			msgs := f.Messages()
			m := msgs[len(msgs)-1].Latest()
			blocks, _ := json.Marshal(m.Blocks)
			hasTeam := strings.Contains(m.Text, "Team: "+tc.wantTeam) && strings.Contains(string(blocks), `*Team*\n`+tc.wantTeam)
			if tc.wantTeam != "" && !hasTeam {
				t.Errorf("message %q, blocks %s: want team %q in both", m.Text, blocks, tc.wantTeam)
			}
			if tc.wantTeam == "" && strings.Contains(m.Text, "Team:") {
				t.Errorf("message %q shows a team", m.Text)
			}
		})
	}

	t.Run("a deleted workload keeps its team", func(t *testing.T) {
		w := owner.Workload{Group: "apps", Kind: "Deployment", Namespace: "gone", Name: "web"}
		workloads[w] = md(nil, "payments")
		r := sample(rollout.PhaseInProgress)
		r.Workload = w
		clk.Add(time.Second)
		st, err := s.Notify(t.Context(), rollout.Notification{Rollout: r})
		if err != nil {
			t.Fatal(err)
		}
		delete(workloads, w)
		r.Phase = rollout.PhaseDeleted
		clk.Add(time.Second)
		st, err = s.Notify(t.Context(), rollout.Notification{Rollout: r, Acknowledged: rollout.PhaseInProgress, State: st})
		if err != nil || st[StateTeam] != "payments" {
			t.Errorf("state %v, err %v, want team payments", st, err)
		}
		msgs := f.Messages()
		if text := msgs[len(msgs)-1].Latest().Text; !strings.Contains(text, "Team: payments") || !strings.Contains(text, "deleted") {
			t.Errorf("text %q, want the deletion with the team", text)
		}
	})
}

// TestTokenFileRotation replaces the token file as Kubernetes updates a mounted Secret (a new file renamed
// over the old one): the sink takes the new token at the first use 10s or more after its last look, without
// a restart, and keeps the last good token while the file is empty or gone.
func TestTokenFileRotation(t *testing.T) {
	const oldToken, newToken = "xoxb-old", "xoxb-new"
	f := slacktest.NewServer(newToken)
	defer f.Close()
	f.AddChannel("deploys")
	dir := t.TempDir()
	path := dir + "/token"
	write := func(content string) {
		t.Helper()
		tmp := dir + "/.token.tmp"
		if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
	}
	write(oldToken + "\n")
	clk := &clock{now: t0}
	s, err := New(Config{TokenFile: path, Channel: "#deploys", APIURL: f.URL(), HTTPClient: f.Client(), Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	notify := func() error {
		clk.Add(time.Second) // past the channel's pace
		_, err := s.Notify(t.Context(), rollout.Notification{Rollout: sample(rollout.PhaseInProgress)})
		return err
	}
	refused := func(err error) bool { return sink.Classify(err) == sink.ClassCredentials }

	steps := []struct {
		name        string
		change      func()
		advance     time.Duration // before the notification, besides its second of pace
		wantRefused bool
		wantHint    string // in the refusal
	}{
		{name: "the old token is refused", wantRefused: true},
		{name: "rotated: not looked at before 10s", change: func() { write(newToken + "\n") }, wantRefused: true},
		{name: "rotated: taken 10s after the last look", advance: 8 * time.Second},
		{name: "emptied: the last good token kept", change: func() { write("") }, advance: 10 * time.Second},
		{name: "removed: the last good token kept", change: func() {
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
		}, advance: 10 * time.Second},
		{name: "revoked meanwhile: the refusal tells why the file is not read", change: f.Revoke, advance: 10 * time.Second,
			wantRefused: true, wantHint: "the last good token is kept because"},
	}
	for _, st := range steps {
		if st.change != nil {
			st.change()
		}
		clk.Add(st.advance)
		err := notify()
		if refused(err) != st.wantRefused {
			t.Fatalf("%s: err %v, want refused %t", st.name, err, st.wantRefused)
		}
		if !st.wantRefused && err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if st.wantHint != "" && !strings.Contains(err.Error(), st.wantHint) {
			t.Errorf("%s: err %v, want it to say %q", st.name, err, st.wantHint)
		}
		if err != nil && (strings.Contains(err.Error(), oldToken) || strings.Contains(err.Error(), newToken)) {
			t.Errorf("%s: the error shows a token: %v", st.name, err)
		}
	}
}

// TestTokenFileAtStart: New reads the file, falls back to Token when it cannot, and fails without either.
func TestTokenFileAtStart(t *testing.T) {
	dir := t.TempDir()
	empty := dir + "/empty"
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		cfg     Config
		wantErr bool
	}{
		{name: "missing file, no token", cfg: Config{TokenFile: dir + "/missing", Channel: "C1"}, wantErr: true},
		{name: "empty file, no token", cfg: Config{TokenFile: empty, Channel: "C1"}, wantErr: true},
		{name: "missing file, token", cfg: Config{TokenFile: dir + "/missing", Token: token, Channel: "C1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.cfg)
			if (err != nil) != tc.wantErr {
				t.Errorf("New() error %v, want error %t", err, tc.wantErr)
			}
		})
	}
}
