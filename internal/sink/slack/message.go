package slack

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	slackapi "github.com/slack-go/slack"

	"github.com/deployment-tracker/deployment-tracker/internal/rollout"
)

// Block Kit limits (https://api.slack.com/reference/block-kit/blocks) the message stays within.
const (
	maxHeader      = 150
	maxSectionText = 3000
	maxField       = 2000
	maxImages      = 10
	maxText        = 4000 // the fallback text: Slack accepts 40000, notifications show far less
)

// Message is a rendered rollout message: Block Kit blocks and the plain-text fallback shown in notifications
// and by clients without blocks.
type Message struct {
	Text   string
	Blocks []slackapi.Block
}

var phaseIcons = map[rollout.Phase]string{
	rollout.PhaseInProgress: ":hourglass_flowing_sand:",
	rollout.PhaseCurrent:    ":white_check_mark:",
	rollout.PhaseFailed:     ":x:",
	rollout.PhaseRolledBack: ":leftwards_arrow_with_hook:",
	rollout.PhaseSuperseded: ":fast_forward:",
	rollout.PhaseDeleted:    ":wastebasket:",
}

var phaseWords = map[rollout.Phase]string{
	rollout.PhaseInProgress: "in progress",
	rollout.PhaseCurrent:    "complete",
	rollout.PhaseFailed:     "failed",
	rollout.PhaseRolledBack: "rolled back",
	rollout.PhaseSuperseded: "superseded",
	rollout.PhaseDeleted:    "deleted",
}

// Context is what a message shows besides the rollout: where it runs and whose it is.
type Context struct {
	Environment, Cluster string
	// Team is the value of the configured team label on the workload or its namespace; "" shows none.
	Team string
}

// Build renders the message of r: the workload, its team, the environment and cluster, the phase, the revision
// (and the one it restores), ready/desired replicas, how long it took, and the images with short digests. It
// depends on r and c alone (no clock), so that an update with nothing new renders the same message.
func Build(r rollout.Rollout, c Context) Message {
	w := r.Workload
	word := phaseWords[r.Phase]
	if word == "" {
		word = string(r.Phase)
	}
	icon := phaseIcons[r.Phase]
	if icon == "" {
		icon = ":grey_question:"
	}
	title := fmt.Sprintf("%s %s/%s rollout %s", w.Kind, w.Namespace, w.Name, word)

	revision := fmt.Sprintf("%d", r.Revision)
	if r.Restores > 0 {
		revision += fmt.Sprintf(" (restores %d)", r.Restores)
	}
	dur := duration(r)
	fields := []struct{ name, value string }{
		{"Workload", fmt.Sprintf("%s %s/%s", w.Kind, w.Namespace, w.Name)},
		{"Team", c.Team},
		{"Environment", c.Environment},
		{"Cluster", c.Cluster},
		{"Revision", revision},
		{"Phase", string(r.Phase)},
		{"Ready", fmt.Sprintf("%d/%d", r.Ready, r.Desired)},
	}
	if dur != "" {
		fields = append(fields, struct{ name, value string }{"Duration", dur})
	}
	var sf []*slackapi.TextBlockObject
	var plain []string
	for _, f := range fields {
		if f.value == "" {
			continue
		}
		sf = append(sf, mrkdwn(truncate("*"+f.name+"*\n"+escape(f.value), maxField)))
		plain = append(plain, f.name+": "+f.value)
	}

	var imgLines, imgPlain []string
	for i, ctr := range r.Containers {
		if i == maxImages {
			imgLines = append(imgLines, fmt.Sprintf("… and %d more", len(r.Containers)-maxImages))
			imgPlain = append(imgPlain, fmt.Sprintf("and %d more", len(r.Containers)-maxImages))
			break
		}
		img := imageRef(ctr)
		imgLines = append(imgLines, fmt.Sprintf("• %s: `%s`", escape(ctr.Name), escape(img)))
		imgPlain = append(imgPlain, ctr.Name+"="+img)
	}

	blocks := []slackapi.Block{
		slackapi.NewHeaderBlock(slackapi.NewTextBlockObject(slackapi.PlainTextType, truncate(title, maxHeader), false, false)),
		slackapi.NewSectionBlock(mrkdwn(truncate(icon+" *"+escape(title)+"*", maxSectionText)), nil, nil),
		slackapi.NewSectionBlock(nil, sf, nil),
	}
	if len(imgLines) > 0 {
		blocks = append(blocks, slackapi.NewSectionBlock(mrkdwn(truncate("*Images*\n"+strings.Join(imgLines, "\n"), maxSectionText)), nil, nil))
	}
	var why []string
	for _, s := range []string{r.Reason, r.Message} {
		if s = strings.TrimSpace(s); s != "" {
			why = append(why, s)
		}
	}
	if len(why) > 0 {
		why := strings.Join(why, ": ")
		blocks = append(blocks, slackapi.NewContextBlock("", mrkdwn(truncate(escape(why), maxSectionText))))
		plain = append(plain, "Reason: "+why)
	}

	text := title + ". " + strings.Join(plain, ", ")
	if len(imgPlain) > 0 {
		text += ". Images: " + strings.Join(imgPlain, ", ")
	}
	return Message{Text: truncate(text, maxText), Blocks: blocks}
}

// ShortDigest shortens "sha256:<64 hex>" to "sha256:<12 hex>", like docker does; other values are kept up to
// 19 characters.
func ShortDigest(d string) string {
	algo, hex, ok := strings.Cut(d, ":")
	if !ok {
		return truncate(d, 19)
	}
	if len(hex) > 12 {
		hex = hex[:12]
	}
	return truncate(algo, 6) + ":" + hex
}

// imageRef is the container's image with its short digest: the digest the image names (name@sha256:…), else
// the one its pods run.
func imageRef(c rollout.Container) string {
	if name, digest, ok := strings.Cut(c.Image, "@"); ok {
		return name + "@" + ShortDigest(digest)
	}
	if d := ShortDigest(c.Digest); d != "" {
		return c.Image + "@" + d
	}
	return c.Image
}

// duration is how long the rollout took: Completed (else Finished) minus Started; "" while it runs.
func duration(r rollout.Rollout) string {
	end := r.Completed
	if end.IsZero() {
		end = r.Finished
	}
	if end.IsZero() || r.Started.IsZero() || end.Before(r.Started) {
		return ""
	}
	return end.Sub(r.Started).Round(time.Second).String()
}

func mrkdwn(s string) *slackapi.TextBlockObject {
	return slackapi.NewTextBlockObject(slackapi.MarkdownType, s, false, false)
}

// escape escapes the three characters Slack's mrkdwn gives a meaning
// (https://api.slack.com/reference/surfaces/formatting#escaping).
func escape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// truncate keeps at most n runes of s, ending with … when it cut; an empty s stays empty. Invalid UTF-8 is
// replaced, so that the result is always valid JSON text.
func truncate(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}
