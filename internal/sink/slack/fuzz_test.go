package slack

import (
	"encoding/json"
	"net/url"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/deployment-tracker/deployment-tracker/internal/owner"
	"github.com/deployment-tracker/deployment-tracker/internal/rollout"
	"github.com/deployment-tracker/deployment-tracker/internal/slacktest"
)

// FuzzBuild: whatever the rollout holds, the message is valid UTF-8 JSON that Slack (as the fake validates it)
// accepts, within Block Kit's limits.
func FuzzBuild(f *testing.F) {
	f.Add("web", "shop", "ghcr.io/o/web:1", "sha256:0123456789abcdef0123", "ProgressDeadlineExceeded", "<b>&", int64(3), int64(1), 12, int64(95))
	f.Add("", "", "", "", "", "", int64(0), int64(0), 0, int64(-5))
	f.Fuzz(func(t *testing.T, name, ns, image, digest, reason, message string, revision, restores int64, containers int, secs int64) {
		r := rollout.Rollout{
			Workload: owner.Workload{Group: "apps", Kind: "Deployment", Namespace: ns, Name: name},
			Revision: revision, Restores: restores, Phase: rollout.PhaseFailed, Reason: reason, Message: message,
			Started: t0, Finished: t0.Add(time.Duration(secs) * time.Second), Ready: 1, Desired: 2,
		}
		for i := range min(max(containers, 0), 60) {
			r.Containers = append(r.Containers, rollout.Container{Name: name + string(rune('a'+i%26)), Image: image, Digest: digest})
		}
		m := Build(r, Context{Environment: message, Cluster: reason, Team: name})
		if !utf8.ValidString(m.Text) || m.Text == "" {
			t.Fatalf("text %q", m.Text)
		}
		b, err := json.Marshal(m.Blocks)
		if err != nil {
			t.Fatal(err)
		}
		args := url.Values{"text": {m.Text}, "blocks": {string(b)}}
		if code := slacktest.Validate(args); code != "" {
			t.Fatalf("the fake refuses the message: %s\n%s", code, b)
		}
	})
}
