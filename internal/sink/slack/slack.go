// Package slack is the Slack rollout sink: one message per rollout, posted with chat.postMessage when the sink
// first hears of it and edited in place with chat.update as it progresses. The channel and ts of the message
// are the state the sink returns, so that the ledger keeps them across restarts and leader changes and every
// update goes to the same message.
//
// Slack Web API: https://api.slack.com/methods/chat.postMessage, https://api.slack.com/methods/chat.update;
// rate limits: https://api.slack.com/apis/rate-limits (about one message per second per channel).
package slack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	slackapi "github.com/slack-go/slack"
	"golang.org/x/time/rate"

	"github.com/deployment-tracker/deployment-tracker/internal/owner"
	"github.com/deployment-tracker/deployment-tracker/internal/rollout"
	"github.com/deployment-tracker/deployment-tracker/internal/sink"
)

// The annotations the sink reads, on a workload or on its namespace: the workload's own wins over its
// namespace's, which wins over the configuration (rollout.Transform keeps those with AnnotationPrefix on
// workloads; APINamespaces keeps them of namespaces).
const (
	AnnotationPrefix = "slack.deployment-tracker.io/"
	// AnnotationChannel names the channel (ID, or name with or without #) of the workload's messages.
	AnnotationChannel = AnnotationPrefix + "channel"
	// AnnotationIgnore "true" opts the workload (or every workload of the namespace) out of Slack messages.
	AnnotationIgnore = AnnotationPrefix + "ignore"
)

// The state keys the sink returns.
const (
	StateChannel = "channel" // the channel ID of the message
	StateTS      = "ts"      // the message's timestamp, its ID within the channel
	StateIgnored = "ignored" // "true" when the workload opted out before any message was posted
	StateTeam    = "team"    // the team shown, kept for the updates of a deleted workload
)

// DefaultAPIURL is Slack's Web API root.
const DefaultAPIURL = "https://slack.com/api/"

// maxResponse bounds what is read of a Slack answer.
const maxResponse = 1 << 20

// Metadata is what the sink reads of a workload or a namespace.
type Metadata struct {
	Annotations map[string]string
	Labels      map[string]string
}

// WorkloadReader gives the metadata of a workload, from the manager's cache; found is false for a workload
// that does not exist (deleted).
type WorkloadReader interface {
	Metadata(ctx context.Context, w owner.Workload) (md Metadata, found bool, err error)
}

// NamespaceReader gives the metadata of a namespace; found is false for one that does not exist.
type NamespaceReader interface {
	Namespace(ctx context.Context, name string) (md Metadata, found bool, err error)
}

// DefaultTokenFileInterval is how often, at most, the sink looks whether TokenFile changed.
const DefaultTokenFileInterval = 10 * time.Second

// maxTokenFile bounds what is read of the token file.
const maxTokenFile = 64 << 10

// Config configures the sink.
type Config struct {
	// Token is the bot token (xoxb-…), with the chat:write scope. Required unless TokenFile is set.
	Token string
	// TokenFile, if set, is the file the token comes from (SLACK_TOKEN_FILE, a mounted Secret): New reads it
	// (Token is the fallback when it cannot), and the sink reads it again when it changes, so that a rotated
	// token is used without a restart. The file's identity, modification time and size are looked at on use,
	// at most every TokenFileInterval; an empty or unreadable file keeps the last good token.
	TokenFile string
	// TokenFileInterval is how often, at most, TokenFile is looked at (default DefaultTokenFileInterval).
	TokenFileInterval time.Duration
	// Channel is the default channel: an ID (C…) or a name (#deploys). Required.
	Channel string
	// LogicalEnvironment and Cluster are shown in every message.
	LogicalEnvironment, Cluster string
	// Workloads reads the workloads' annotations (channel, opt-out) and labels (team); nil: none are read.
	Workloads WorkloadReader
	// Namespaces reads the same of the workloads' namespaces; nil: namespaces are not read (a single-namespace
	// install may not read Namespace objects).
	Namespaces NamespaceReader
	// TeamLabel is the label whose value (on the workload, else its namespace) is shown as the team; "": none.
	TeamLabel string
	// APIURL is the Web API root, ending in "/" (default DefaultAPIURL); tests point it at a fake.
	APIURL string
	// HTTPClient is the client (default: a client with a 30s timeout). Its responses are read up to 1 MiB.
	HTTPClient *http.Client
	// Now is the clock (default time.Now); it paces the channels.
	Now func() time.Time
	// Interval is the pace per channel: at most one message (post or update) per Interval (default 1s, Slack's
	// documented pace of chat.postMessage).
	Interval time.Duration
	// Errors, if set, counts Slack's refusals by error code (label "error"; see ErrorLabel).
	Errors *prometheus.CounterVec
}

// Sink posts and updates one Slack message per rollout.
type Sink struct {
	cfg Config
	hc  *http.Client // bounds what is read of every response

	mu       sync.Mutex
	limiters map[string]*rate.Limiter // by channel as sent

	tokMu     sync.Mutex
	token     string           // the token in use
	client    *slackapi.Client // the client of token
	checked   time.Time        // when TokenFile was last looked at
	file      os.FileInfo      // TokenFile as it was when token was read from it
	reloadErr error            // why TokenFile could not be read again, nil once it could
}

var _ sink.RolloutSink = (*Sink)(nil)

// New validates cfg, fills its defaults and returns the sink.
func New(cfg Config) (*Sink, error) {
	var errs []error
	var file os.FileInfo
	if cfg.TokenFile != "" {
		tok, fi, err := readToken(cfg.TokenFile)
		switch {
		case err == nil:
			cfg.Token, file = tok, fi
		case cfg.Token == "":
			errs = append(errs, fmt.Errorf("slack: %w", err))
		}
	}
	if cfg.Token == "" && cfg.TokenFile == "" {
		errs = append(errs, errors.New("slack: a token is required"))
	}
	if cfg.Channel == "" {
		errs = append(errs, errors.New("slack: a default channel is required"))
	}
	if cfg.APIURL == "" {
		cfg.APIURL = DefaultAPIURL
	}
	if !strings.HasSuffix(cfg.APIURL, "/") {
		cfg.APIURL += "/"
	}
	if !strings.HasPrefix(cfg.APIURL, "https://") && !strings.HasPrefix(cfg.APIURL, "http://") {
		errs = append(errs, fmt.Errorf("slack: API URL %q is not an http(s) URL", cfg.APIURL))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Interval <= 0 {
		cfg.Interval = time.Second
	}
	if cfg.TokenFileInterval <= 0 {
		cfg.TokenFileInterval = DefaultTokenFileInterval
	}
	hc := *cfg.HTTPClient
	hc.Transport = limitedTransport{next: transportOf(cfg.HTTPClient)}
	s := &Sink{cfg: cfg, hc: &hc, limiters: map[string]*rate.Limiter{}, token: cfg.Token, file: file, checked: cfg.Now()}
	s.client = s.newClient(cfg.Token)
	return s, nil
}

// newClient is the slack-go client of token.
func (s *Sink) newClient(token string) *slackapi.Client {
	// No slackapi.OptionRetry: the dispatcher's workqueue is the only retry layer.
	return slackapi.New(token, slackapi.OptionAPIURL(s.cfg.APIURL), slackapi.OptionHTTPClient(s.hc))
}

// current is the client to call Slack with: the one of the token in TokenFile, read again when the file
// changed since it was last read (Kubernetes updates a mounted Secret by swapping in a new file: another
// inode, a new modification time). The file is looked at at most every TokenFileInterval. A file that is
// empty or cannot be read keeps the last good token, and is read again at the next look.
func (s *Sink) current() *slackapi.Client {
	s.tokMu.Lock()
	defer s.tokMu.Unlock()
	if s.cfg.TokenFile == "" {
		return s.client
	}
	now := s.cfg.Now()
	if now.Sub(s.checked) < s.cfg.TokenFileInterval {
		return s.client
	}
	s.checked = now
	fi, err := os.Stat(s.cfg.TokenFile)
	if err != nil {
		s.reloadErr = err
		return s.client
	}
	if s.file != nil && os.SameFile(s.file, fi) && fi.ModTime().Equal(s.file.ModTime()) && fi.Size() == s.file.Size() {
		s.reloadErr = nil // back as it was read
		return s.client
	}
	tok, fi, err := readToken(s.cfg.TokenFile)
	if err != nil {
		s.reloadErr = err
		return s.client
	}
	s.file, s.reloadErr = fi, nil
	if tok != s.token {
		s.token, s.client = tok, s.newClient(tok)
	}
	return s.client
}

// readToken reads a token file: its content without surrounding whitespace, which must not be empty, and
// what the file was when read.
func readToken(path string) (string, os.FileInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", nil, fmt.Errorf("token file: %w", err)
	}
	defer func() { _ = f.Close() }()
	fi, err := f.Stat()
	if err != nil {
		return "", nil, fmt.Errorf("token file: %w", err)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxTokenFile))
	if err != nil {
		return "", nil, fmt.Errorf("token file: %w", err)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", nil, fmt.Errorf("token file %s is empty", path)
	}
	return tok, fi, nil
}

// tokenFileProblem is why TokenFile could not be read again, for the error of a refused token: "" when it
// could, or when there is none.
func (s *Sink) tokenFileProblem() string {
	s.tokMu.Lock()
	defer s.tokMu.Unlock()
	if s.reloadErr == nil {
		return ""
	}
	return "; the last good token is kept because " + s.reloadErr.Error()
}

func transportOf(c *http.Client) http.RoundTripper {
	if c.Transport != nil {
		return c.Transport
	}
	return http.DefaultTransport
}

// limitedTransport bounds what is read of every response body (slack-go decodes bodies without a limit).
type limitedTransport struct{ next http.RoundTripper }

func (t limitedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	resp.Body = limitedBody{Reader: io.LimitReader(resp.Body, maxResponse), c: resp.Body}
	return resp, nil
}

type limitedBody struct {
	io.Reader
	c io.ReadCloser
}

func (b limitedBody) Close() error {
	_, _ = io.Copy(io.Discard, io.LimitReader(b.c, maxResponse))
	return b.c.Close()
}

// Notify posts the rollout's message the first time (no message in n.State) and updates it afterwards. It
// returns the channel and ts of the message. A workload annotated slack.deployment-tracker.io/ignore: "true",
// or in a namespace so annotated (unless the workload says otherwise), gets no new message (one already posted
// is no longer updated).
func (s *Sink) Notify(ctx context.Context, n rollout.Notification) (map[string]string, error) {
	r := n.Rollout
	var wmd, nsmd Metadata
	found := false
	if s.cfg.Workloads != nil {
		var err error
		if wmd, found, err = s.cfg.Workloads.Metadata(ctx, r.Workload); err != nil {
			return nil, fmt.Errorf("slack: reading the annotations of %s: %w", r.Workload, err)
		}
	}
	if s.cfg.Namespaces != nil && r.Workload.Namespace != "" {
		var err error
		if nsmd, _, err = s.cfg.Namespaces.Namespace(ctx, r.Workload.Namespace); err != nil {
			return nil, fmt.Errorf("slack: reading the annotations of namespace %s: %w", r.Workload.Namespace, err)
		}
	}
	annotation := func(key string) string { return first(wmd.Annotations[key], nsmd.Annotations[key]) }
	channelID, ts := n.State[StateChannel], n.State[StateTS]
	// A workload that opted out stays out once deleted (its annotations went with it).
	if annotation(AnnotationIgnore) == "true" || (!found && n.State[StateIgnored] == "true" && ts == "") {
		if ts != "" {
			return nil, nil // keep the message as it is
		}
		return map[string]string{StateIgnored: "true"}, nil
	}
	team := ""
	if s.cfg.TeamLabel != "" {
		team = first(wmd.Labels[s.cfg.TeamLabel], nsmd.Labels[s.cfg.TeamLabel])
		if team == "" && !found {
			team = n.State[StateTeam] // a deleted workload's label went with it
		}
	}
	withTeam := func(st map[string]string) map[string]string {
		if team != "" {
			st[StateTeam] = team
		}
		return st
	}
	msg := Build(r, Context{Environment: s.cfg.LogicalEnvironment, Cluster: s.cfg.Cluster, Team: team})
	opts := []slackapi.MsgOption{slackapi.MsgOptionText(msg.Text, false), slackapi.MsgOptionBlocks(msg.Blocks...)}
	client := s.current()
	if channelID != "" && ts != "" {
		if err := s.pace(channelID); err != nil {
			return nil, err
		}
		_, _, _, err := client.UpdateMessageContext(ctx, channelID, ts, opts...)
		if err != nil {
			return nil, s.classify(err, "chat.update", channelID)
		}
		return withTeam(map[string]string{StateChannel: channelID, StateTS: ts}), nil
	}
	channel := first(annotation(AnnotationChannel), s.cfg.Channel)
	if err := s.pace(channel); err != nil {
		return nil, err
	}
	gotChannel, gotTS, err := client.PostMessageContext(ctx, channel, opts...)
	if err != nil {
		return nil, s.classify(err, "chat.postMessage", channel)
	}
	if gotChannel == "" || gotTS == "" {
		return nil, fmt.Errorf("slack: chat.postMessage to %s: the answer has no channel or ts", channel)
	}
	return withTeam(map[string]string{StateChannel: gotChannel, StateTS: gotTS}), nil
}

// first is the first of values that is not blank, trimmed; "" if none.
func first(values ...string) string {
	for _, v := range values {
		if v = strings.TrimSpace(v); v != "" {
			return v
		}
	}
	return ""
}

// pace holds one message of channel to Interval: when the channel's budget is spent it returns a
// RetryAfterError for when it is not, so that the dispatcher requeues the key instead of a worker sleeping.
func (s *Sink) pace(channel string) error {
	now := s.cfg.Now()
	s.mu.Lock()
	l, ok := s.limiters[channel]
	if !ok {
		l = rate.NewLimiter(rate.Every(s.cfg.Interval), 1)
		s.limiters[channel] = l
	}
	res := l.ReserveN(now, 1)
	delay := res.DelayFrom(now)
	if delay > 0 {
		res.CancelAt(now)
	}
	s.mu.Unlock()
	if delay > 0 {
		return &sink.RetryAfterError{At: now.Add(delay), Message: "pacing channel " + channel}
	}
	return nil
}

// credentialCodes are the Slack errors that refuse the token itself (authentication or authorization, Slack
// answers them with HTTP 200 and ok=false): a sink.CredentialsError, so that the dispatcher pauses the whole
// sink and keeps every notification pending until a good token (a new SLACK_TOKEN_FILE) is accepted.
// https://api.slack.com/methods/chat.postMessage#errors
var credentialCodes = []string{
	"invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired", "no_permission",
	"missing_scope", "ekm_access_denied", "team_access_not_granted",
}

// Error codes of Slack that configuration must fix for one channel (the channel or the bot's membership): the
// notification is retried with backoff until it is fixed, never dropped; other channels go on.
var configCodes = []string{"channel_not_found", "not_in_channel", "is_archived"}

// transientCodes are Slack errors worth retrying as they are.
var transientCodes = []string{"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}

// ErrorLabels are the values of the error label of deptracker_slack_errors_total: the codes above, a few
// payload refusals, "http" for an HTTP status other than 200 and 429, and "other".
var ErrorLabels = append(append(append(append([]string{}, credentialCodes...), configCodes...), transientCodes...),
	"msg_too_long", "invalid_blocks", "invalid_blocks_format", "no_text", "message_not_found", "cant_update_message",
	"edit_window_closed", "http", "other")

// ErrorLabel is the error label for a Slack error code: the code when it is one of ErrorLabels, else "other".
func ErrorLabel(code string) string {
	for _, l := range ErrorLabels {
		if l == code {
			return l
		}
	}
	return "other"
}

// ConfigError is a refusal that only a change of configuration fixes for one channel: a channel that does not
// exist, is archived or that the bot was not invited to. It is retryable (the notification stays pending with
// backoff, so that it is delivered once the configuration is fixed). A refused token is a
// sink.CredentialsError instead.
type ConfigError struct {
	Method, Channel, Code string
}

func (e *ConfigError) Error() string {
	hint := "fix the configuration"
	switch e.Code {
	case "channel_not_found":
		hint = "no such channel: fix SLACK_CHANNEL or the " + AnnotationChannel + " annotation"
	case "not_in_channel":
		hint = "invite the app to the channel (/invite @app)"
	case "is_archived":
		hint = "the channel is archived: unarchive it or change the channel"
	}
	return fmt.Sprintf("slack: %s to %s refused: %s: %s; kept pending until fixed", e.Method, e.Channel, e.Code, hint)
}

// credentialsHint tells what to fix for a Slack error of credentialCodes.
func credentialsHint(code string) string {
	switch code {
	case "missing_scope", "no_permission":
		return "the token lacks a permission: give the app the chat:write scope (and reinstall it)"
	case "account_inactive":
		return "the bot user or its workspace is deactivated"
	case "ekm_access_denied":
		return "the workspace's Enterprise Key Management revoked access"
	case "team_access_not_granted":
		return "the token is not granted access to the workspace of the channel"
	}
	return "check the token (SLACK_TOKEN_FILE or SLACK_TOKEN); a new token in SLACK_TOKEN_FILE is taken at the next attempt, without a restart"
}

// classify turns a slack-go error into the sink's error classes and counts it.
func (s *Sink) classify(err error, method, channel string) error {
	var rl *slackapi.RateLimitedError
	if errors.As(err, &rl) {
		s.count("ratelimited")
		return &sink.RetryAfterError{StatusCode: http.StatusTooManyRequests, At: s.cfg.Now().Add(max(rl.RetryAfter, time.Second)),
			Message: fmt.Sprintf("slack: %s to %s", method, channel)}
	}
	var se slackapi.SlackErrorResponse
	if errors.As(err, &se) {
		code := se.Err
		s.count(code)
		switch {
		case contains(credentialCodes, code):
			return &sink.CredentialsError{StatusCode: http.StatusOK,
				Message: fmt.Sprintf("slack: %s to %s refused: %s: %s%s", method, channel, code, credentialsHint(code), s.tokenFileProblem())}
		case contains(configCodes, code):
			return &ConfigError{Method: method, Channel: channel, Code: code}
		case contains(transientCodes, code):
			return fmt.Errorf("slack: %s to %s: %w", method, channel, err)
		}
		// A payload Slack refuses (invalid_blocks, msg_too_long, message_not_found, …): sending it again
		// cannot help.
		return &sink.PermanentError{StatusCode: http.StatusOK, Message: fmt.Sprintf("slack: %s to %s: %s", method, channel, code)}
	}
	var sc slackapi.StatusCodeError
	if errors.As(err, &sc) {
		s.count("http")
		switch {
		case sc.Code == http.StatusTooManyRequests:
			// A 429 without a usable Retry-After: wait a second.
			return &sink.RetryAfterError{StatusCode: sc.Code, At: s.cfg.Now().Add(time.Second), Message: fmt.Sprintf("slack: %s to %s", method, channel)}
		case sc.Code >= 400 && sc.Code < 500 && sc.Code != http.StatusRequestTimeout:
			return &sink.PermanentError{StatusCode: sc.Code, Message: fmt.Sprintf("slack: %s to %s: %s", method, channel, sc.Status)}
		}
		return fmt.Errorf("slack: %s to %s: status %s: %w", method, channel, strconv.Itoa(sc.Code), err)
	}
	s.count("other")
	return fmt.Errorf("slack: %s to %s: %w", method, channel, err)
}

func (s *Sink) count(code string) {
	if s.cfg.Errors != nil {
		s.cfg.Errors.WithLabelValues(ErrorLabel(code)).Inc()
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
