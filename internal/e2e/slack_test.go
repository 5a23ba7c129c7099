package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/deployment-tracker/deployment-tracker/internal/apis/records/v1alpha1"
	"github.com/deployment-tracker/deployment-tracker/internal/owner"
	"github.com/deployment-tracker/deployment-tracker/internal/rollout"
	"github.com/deployment-tracker/deployment-tracker/internal/slacktest"
)

const slackToken = "xoxb-e2e-not-a-secret"

// teamLabel is the tracker's SLACK_TEAM_LABEL in the Slack tests.
const teamLabel = "example.com/team"

// slackTracker replaces the suite's tracker, for the duration of t, with one whose rollout sinks are the ones
// the configuration enables: the Slack sink, configured through SLACK_TOKEN_FILE, SLACK_CHANNEL and
// SLACK_API_URL against the fake f. It returns a function that restarts it (the ledger carries the messages'
// channel and ts over).
func slackTracker(t *testing.T, f *slacktest.Server) (current func() *instance, restartSlack func(whileStopped func())) {
	t.Helper()
	tokenFile := filepath.Join(t.TempDir(), "slack-token")
	if err := os.WriteFile(tokenFile, []byte(slackToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return withTracker(t, trackerSettings{configuredRolloutSinks: true, env: map[string]string{
		"SLACK_TOKEN_FILE": tokenFile, "SLACK_CHANNEL": "#deploys", "SLACK_API_URL": f.URL(),
		"SLACK_TEAM_LABEL": teamLabel,
	}})
}

// slackMessages are the messages of the rollouts of Deployment ns/name.
func slackMessages(f *slacktest.Server, ns, name string) []slacktest.Message {
	var out []slacktest.Message
	for _, m := range f.Messages() {
		if strings.Contains(m.Versions[0].Text, fmt.Sprintf("Deployment %s/%s rollout", ns, name)) {
			out = append(out, m)
		}
	}
	return out
}

// waitSlackText waits until Deployment ns/name has exactly one message, whose latest version contains text.
func waitSlackText(t *testing.T, f *slacktest.Server, ns, name, text string) slacktest.Message {
	t.Helper()
	waitFor(t, fmt.Sprintf("one Slack message of %s/%s saying %q (messages: %+v)", ns, name, text, slackMessages(f, ns, name)), func() bool {
		ms := slackMessages(f, ns, name)
		return len(ms) == 1 && strings.Contains(ms[0].Latest().Text, text)
	})
	return slackMessages(f, ns, name)[0]
}

// slackStatus is the Slack sink's status in the RolloutRecord of revision of w.
func slackStatus(t *testing.T, w owner.Workload, revision int64) (v1alpha1.RolloutSinkStatus, bool) {
	t.Helper()
	var l v1alpha1.RolloutRecordList
	if err := env.Client.List(context.Background(), &l, client.InNamespace(trackerNamespace)); err != nil {
		t.Fatalf("listing rollouts: %v", err)
	}
	for _, rr := range l.Items {
		s := rr.Spec
		if s.Workload.Kind == w.Kind && s.Workload.Namespace == w.Namespace && s.Workload.Name == w.Name && s.Revision == revision {
			for _, st := range rr.Status.Sinks {
				if st.Sink == "slack" {
					return st, true
				}
			}
		}
	}
	return v1alpha1.RolloutSinkStatus{}, false
}

// TestSlack: the Slack sink as the binary wires it, against the Slack fake: one message per rollout, posted
// when it starts and updated in place; scaling posts nothing; a restart in the middle of a rollout updates the
// same message; a 429 is honoured; a wrong channel keeps the notification pending until the annotation is
// fixed; a namespace's channel annotation and team label apply to its workloads, the workload's own win.
func TestSlack(t *testing.T) {
	f := slacktest.NewServer(slackToken)
	defer f.Close()
	deploys := f.AddChannel("deploys")
	team := f.AddChannel("team-web")
	current, restartSlack := slackTracker(t, f)
	ns := newNamespace(t)

	t.Run("a rollout is one message, updated", func(t *testing.T) {
		d := deployment(ns, "web", 1, container("app", "ghcr.io/octo-org/slack-web:1"))
		// InProgress for a few seconds after the pod is Ready: delivery is level-based, and a rollout that
		// completes before its first notification is posted once, as complete.
		d.Spec.MinReadySeconds = 3
		mustCreate(t, d)
		w := workloadOf("Deployment", ns, "web")
		waitRollout(t, w, 1, rollout.PhaseCurrent)
		m := waitSlackText(t, f, ns, "web", "rollout complete")
		if m.Channel != deploys {
			t.Errorf("posted to %s, want the default channel %s", m.Channel, deploys)
		}
		if !strings.Contains(m.Versions[0].Text, "rollout in progress") {
			t.Errorf("first version %q, want the rollout in progress", m.Versions[0].Text)
		}
		latest := m.Latest().Text
		for _, want := range []string{logicalEnvironment, cluster, "Revision: 1", "Ready: 1/1", "Duration: ",
			"ghcr.io/octo-org/slack-web:1@" + digestOf(t, "ghcr.io/octo-org/slack-web:1")[:len("sha256:")+12]} {
			if !strings.Contains(latest, want) {
				t.Errorf("message %q lacks %q", latest, want)
			}
		}
		if len(m.Latest().Blocks) < 3 {
			t.Errorf("blocks %+v, want a header, a summary and fields", m.Latest().Blocks)
		}
		waitFor(t, "the ledger to keep the message", func() bool {
			st, ok := slackStatus(t, w, 1)
			return ok && st.Phase == string(rollout.PhaseCurrent) && st.State["ts"] == m.TS && st.State["channel"] == m.Channel
		})

		t.Run("scaling posts nothing", func(t *testing.T) {
			versions := len(m.Versions)
			update(t, d, func(d *appsv1.Deployment) { d.Spec.Replicas = ptr.To[int32](3) })
			waitRunning(t, ns, map[string]string{"app": "web"}, 3)
			time.Sleep(quiet)
			ms := slackMessages(f, ns, "web")
			if len(ms) != 1 || len(ms[0].Versions) != versions {
				t.Errorf("after scaling: %d messages, %d versions; want 1 message, %d versions", len(ms), len(ms[0].Versions), versions)
			}
		})
	})

	t.Run("a namespace's channel and team", func(t *testing.T) {
		shop := f.AddChannel("shop")
		nsShop := newNamespace(t)
		n := &corev1.Namespace{}
		if err := env.Client.Get(context.Background(), client.ObjectKey{Name: nsShop}, n); err != nil {
			t.Fatal(err)
		}
		n.Annotations = map[string]string{"slack.deployment-tracker.io/channel": "#shop"}
		if n.Labels == nil {
			n.Labels = map[string]string{}
		}
		n.Labels[teamLabel] = "payments"
		if err := env.Client.Update(context.Background(), n); err != nil {
			t.Fatal(err)
		}
		mustCreate(t, deployment(nsShop, "cart", 1, container("app", "ghcr.io/octo-org/slack-cart:1")))
		m := waitSlackText(t, f, nsShop, "cart", "rollout complete")
		if m.Channel != shop {
			t.Errorf("posted to %s, want %s (the namespace's annotation)", m.Channel, shop)
		}
		if text := m.Latest().Text; !strings.Contains(text, "Team: payments") {
			t.Errorf("message %q lacks the namespace's team", text)
		}

		d := deployment(nsShop, "till", 1, container("app", "ghcr.io/octo-org/slack-till:1"))
		d.Annotations = map[string]string{"slack.deployment-tracker.io/channel": "#deploys"}
		d.Labels = map[string]string{teamLabel: "checkout"}
		mustCreate(t, d)
		m = waitSlackText(t, f, nsShop, "till", "rollout complete")
		if m.Channel != deploys {
			t.Errorf("posted to %s, want %s (the workload's annotation wins)", m.Channel, deploys)
		}
		if text := m.Latest().Text; !strings.Contains(text, "Team: checkout") {
			t.Errorf("message %q lacks the workload's team", text)
		}
		if !strings.Contains(fmt.Sprint(m.Latest().Blocks), "*Team*\ncheckout") {
			t.Errorf("blocks %v lack the team", m.Latest().Blocks)
		}
	})

	t.Run("a restart mid-rollout keeps one message", func(t *testing.T) {
		d := deployment(ns, "slow", 1, container("app", "ghcr.io/octo-org/slack-slow:1"))
		d.Spec.MinReadySeconds = 6
		mustCreate(t, d)
		w := workloadOf("Deployment", ns, "slow")
		waitSlackText(t, f, ns, "slow", "rollout in progress")
		restartSlack(func() {
			waitFor(t, "the Deployment to become available while the tracker is down", func() bool {
				cur := &appsv1.Deployment{}
				err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(d), cur)
				return err == nil && cur.Status.AvailableReplicas == 1 && cur.Status.ObservedGeneration == cur.Generation
			})
		})
		waitRollout(t, w, 1, rollout.PhaseCurrent)
		m := waitSlackText(t, f, ns, "slow", "rollout complete")
		time.Sleep(quiet)
		if ms := slackMessages(f, ns, "slow"); len(ms) != 1 {
			t.Errorf("%d messages after the restart, want 1: %+v", len(ms), ms)
		}
		if len(m.Versions) < 2 {
			t.Errorf("versions %+v, want the post and an update", m.Versions)
		}
	})

	t.Run("a 429 is honoured", func(t *testing.T) {
		f.RateLimitChannel("#team-web", 1, 2*time.Second)
		d := deployment(ns, "limited", 1, container("app", "ghcr.io/octo-org/slack-limited:1"))
		d.Annotations = map[string]string{"slack.deployment-tracker.io/channel": "#team-web"}
		mustCreate(t, d)
		m := waitSlackText(t, f, ns, "limited", "rollout")
		if m.Channel != team {
			t.Errorf("posted to %s, want %s (the annotation)", m.Channel, team)
		}
		calls := f.Calls()
		i := slices.IndexFunc(calls, func(c slacktest.Call) bool { return c.Channel == "#team-web" && c.Error == "ratelimited" })
		if i < 0 {
			t.Fatalf("no rate-limited call: %+v", calls)
		}
		j := slices.IndexFunc(calls[i+1:], func(c slacktest.Call) bool { return c.Method == "chat.postMessage" && c.Error == "" && c.TS == m.TS })
		if j < 0 {
			t.Fatalf("no post after the 429: %+v", calls[i:])
		}
		if gap := calls[i+1+j].At.Sub(calls[i].At); gap < 1900*time.Millisecond {
			t.Errorf("posted again %s after a 429 with Retry-After: 2, want at least 2s", gap)
		}
	})

	t.Run("a wrong channel stays pending until fixed", func(t *testing.T) {
		before := testutil.ToFloat64(current().app.Metrics.SlackErrors.WithLabelValues("channel_not_found"))
		d := deployment(ns, "lost", 1, container("app", "ghcr.io/octo-org/slack-lost:1"))
		d.Annotations = map[string]string{"slack.deployment-tracker.io/channel": "#nowhere"}
		mustCreate(t, d)
		w := workloadOf("Deployment", ns, "lost")
		waitFor(t, "the ledger to show the notification pending with Slack's error", func() bool {
			st, ok := slackStatus(t, w, 1)
			return ok && st.Phase == "" && st.Attempts >= 2 && strings.Contains(st.LastError, "channel_not_found") && st.NextRetry != nil
		})
		if n := testutil.ToFloat64(current().app.Metrics.SlackErrors.WithLabelValues("channel_not_found")) - before; n < 2 {
			t.Errorf("deptracker_slack_errors_total{error=channel_not_found} grew by %v, want ≥ 2", n)
		}
		if ms := slackMessages(f, ns, "lost"); len(ms) != 0 {
			t.Errorf("messages %+v before the fix", ms)
		}
		update(t, d, func(d *appsv1.Deployment) { d.Annotations["slack.deployment-tracker.io/channel"] = "#team-web" })
		m := waitSlackText(t, f, ns, "lost", "rollout complete")
		if m.Channel != team {
			t.Errorf("delivered to %s, want %s", m.Channel, team)
		}
		waitFor(t, "the ledger to show it delivered", func() bool {
			st, ok := slackStatus(t, w, 1)
			return ok && st.Phase == string(rollout.PhaseCurrent) && st.LastError == ""
		})
	})
}
