// Package slacktest is a fake of the two Slack Web API methods the Slack rollout sink calls, chat.postMessage
// and chat.update, that behaves like Slack where the sink depends on it: the bot token is checked
// (not_authed, invalid_auth), the channel must exist and have the bot as a member (channel_not_found,
// not_in_channel, is_archived), the payload is validated as the API documents it (text or blocks, Block Kit
// limits), chat.update must name a message this server issued in that channel (message_not_found), and
// faults can be injected (429 with Retry-After, a revoked token). It keeps every message with its versions.
//
// github.com/slack-go/slack/slacktest was not used: it answers chat.postMessage with a canned reply, does not
// check the token, and has no chat.update that edits a stored message.
//
// API docs: https://api.slack.com/methods/chat.postMessage, https://api.slack.com/methods/chat.update,
// https://api.slack.com/reference/block-kit/blocks.
package slacktest

import (
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// Limits Slack documents and this fake enforces.
const (
	MaxBlocks        = 50    // blocks per message
	MaxTextRunes     = 40000 // the text argument (Slack truncates beyond; the fake refuses: msg_too_long)
	MaxSectionText   = 3000  // a section's text
	MaxHeaderText    = 150   // a header's plain_text
	MaxSectionFields = 10    // fields of a section
	MaxFieldText     = 2000  // one field
	MaxContextElems  = 10    // elements of a context block
	maxBody          = 1 << 20
)

// Version is one state of a message: what a chat.postMessage or chat.update sent.
type Version struct {
	Text   string
	Blocks []map[string]any
}

// Message is one message the server issued: its channel ID and ts, and every version, oldest first.
type Message struct {
	Channel  string
	TS       string
	Versions []Version
}

// Latest is the message as it shows now.
func (m Message) Latest() Version { return m.Versions[len(m.Versions)-1] }

// Call is one request the server answered.
type Call struct {
	Method  string // chat.postMessage, chat.update
	Channel string // as sent
	TS      string // chat.update's ts, or the ts issued
	Error   string // the Slack error code, "" when ok; "ratelimited" for a 429
	At      time.Time
}

// Server is the fake. Its zero value is not usable: use NewServer.
type Server struct {
	srv   *httptest.Server
	token string

	mu        sync.Mutex
	channels  map[string]*channel // by ID
	names     map[string]string   // channel name (without #) → ID
	messages  []*Message
	calls     []Call
	seq       int64
	rateLimit int           // the next rateLimit calls answer 429
	retry     time.Duration // with this Retry-After
	limitCh   string        // only calls to this channel (as sent), "" for all
	revoked   bool          // the token answers invalid_auth
}

type channel struct {
	id, name string
	member   bool
	archived bool
}

// NewServer starts a fake that accepts token. Stop it with Close.
func NewServer(token string) *Server {
	s := &Server{token: token, channels: map[string]*channel{}, names: map[string]string{}, seq: 1700000000}
	mux := http.NewServeMux()
	mux.HandleFunc("/api/chat.postMessage", func(w http.ResponseWriter, r *http.Request) { s.serve(w, r, "chat.postMessage") })
	mux.HandleFunc("/api/chat.update", func(w http.ResponseWriter, r *http.Request) { s.serve(w, r, "chat.update") })
	mux.HandleFunc("/api/", func(w http.ResponseWriter, _ *http.Request) {
		reply(w, map[string]any{"ok": false, "error": "unknown_method"})
	})
	s.srv = httptest.NewUnstartedServer(mux)
	s.srv.Config.ReadHeaderTimeout = 5 * time.Second
	s.srv.Start()
	return s
}

// URL is the API root to give slack.OptionAPIURL: it ends with /api/.
func (s *Server) URL() string { return s.srv.URL + "/api/" }

// Client is an HTTP client for the server.
func (s *Server) Client() *http.Client { return s.srv.Client() }

// Close stops the server.
func (s *Server) Close() { s.srv.Close() }

// AddChannel creates a channel the bot is a member of, and returns its ID. name is without "#".
func (s *Server) AddChannel(name string) string { return s.addChannel(name, true) }

// AddChannelWithoutBot creates a channel the bot is not a member of (not_in_channel).
func (s *Server) AddChannelWithoutBot(name string) string { return s.addChannel(name, false) }

func (s *Server) addChannel(name string, member bool) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if id, ok := s.names[name]; ok {
		s.channels[id].member = member
		return id
	}
	id := fmt.Sprintf("C%08d", len(s.channels)+1)
	s.channels[id] = &channel{id: id, name: name, member: member}
	s.names[name] = id
	return id
}

// Archive archives the channel (is_archived).
func (s *Server) Archive(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if id, ok := s.names[name]; ok {
		s.channels[id].archived = true
	}
}

// RateLimit makes the next n calls answer 429 with Retry-After: retry (whole seconds, at least 1).
func (s *Server) RateLimit(n int, retry time.Duration) { s.RateLimitChannel("", n, retry) }

// RateLimitChannel makes the next n calls to channel (as the caller sends it: an ID or #name) answer 429 with
// Retry-After: retry.
func (s *Server) RateLimitChannel(channel string, n int, retry time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rateLimit, s.retry, s.limitCh = n, retry, channel
}

// Revoke makes the token invalid (invalid_auth) until Restore.
func (s *Server) Revoke() { s.mu.Lock(); s.revoked = true; s.mu.Unlock() }

// Restore makes the token valid again.
func (s *Server) Restore() { s.mu.Lock(); s.revoked = false; s.mu.Unlock() }

// Messages returns a copy of every message issued, in order.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Message, 0, len(s.messages))
	for _, m := range s.messages {
		out = append(out, Message{Channel: m.Channel, TS: m.TS, Versions: slices.Clone(m.Versions)})
	}
	return out
}

// Calls returns a copy of every call answered, in order.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request, method string) {
	defer func() { _, _ = io.Copy(io.Discard, r.Body); _ = r.Body.Close() }()
	if r.Method != http.MethodPost {
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	args, err := readArgs(r)
	if err != nil {
		s.fail(w, Call{Method: method}, "invalid_form_data")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	call := Call{Method: method, Channel: args.Get("channel"), TS: args.Get("ts"), At: time.Now()}
	if s.rateLimit > 0 && (s.limitCh == "" || s.limitCh == call.Channel) {
		s.rateLimit--
		call.Error = "ratelimited"
		s.calls = append(s.calls, call)
		secs := max(int(s.retry/time.Second), 1)
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.WriteHeader(http.StatusTooManyRequests)
		_ = json.NewEncoder(w).Encode(map[string]any{"ok": false, "error": "ratelimited"})
		return
	}
	// Slack takes the token from the Authorization header, else from the token argument.
	tok, hasTok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !hasTok {
		tok = args.Get("token")
	}
	switch {
	case tok == "":
		s.fail(w, call, "not_authed")
		return
	case tok != s.token || s.revoked:
		s.fail(w, call, "invalid_auth")
		return
	}
	ch := s.lookup(call.Channel, method == "chat.postMessage")
	switch {
	case ch == nil:
		s.fail(w, call, "channel_not_found")
		return
	case ch.archived:
		s.fail(w, call, "is_archived")
		return
	case !ch.member:
		s.fail(w, call, "not_in_channel")
		return
	}
	v, code := validate(args)
	if code != "" {
		s.fail(w, call, code)
		return
	}
	if method == "chat.update" {
		m := s.find(ch.id, call.TS)
		if m == nil {
			s.fail(w, call, "message_not_found")
			return
		}
		m.Versions = append(m.Versions, v)
		s.calls = append(s.calls, call)
		reply(w, map[string]any{"ok": true, "channel": ch.id, "ts": m.TS, "text": v.Text})
		return
	}
	s.seq++
	m := &Message{Channel: ch.id, TS: fmt.Sprintf("%d.%06d", s.seq, 100), Versions: []Version{v}}
	s.messages = append(s.messages, m)
	call.TS = m.TS
	s.calls = append(s.calls, call)
	reply(w, map[string]any{"ok": true, "channel": ch.id, "ts": m.TS, "message": map[string]any{"text": v.Text, "ts": m.TS}})
}

// lookup finds a channel by ID, or, for chat.postMessage, by name ("#deploys" or "deploys"): chat.update
// takes IDs only. Callers hold s.mu.
func (s *Server) lookup(c string, byName bool) *channel {
	if ch, ok := s.channels[c]; ok {
		return ch
	}
	if !byName {
		return nil
	}
	if id, ok := s.names[strings.TrimPrefix(c, "#")]; ok {
		return s.channels[id]
	}
	return nil
}

func (s *Server) find(channelID, ts string) *Message {
	for _, m := range s.messages {
		if m.Channel == channelID && m.TS == ts {
			return m
		}
	}
	return nil
}

func (s *Server) fail(w http.ResponseWriter, call Call, code string) {
	call.Error = code
	s.calls = append(s.calls, call)
	// Slack answers API errors with 200 and ok:false.
	reply(w, map[string]any{"ok": false, "error": code})
}

func reply(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	_ = json.NewEncoder(w).Encode(v)
}

// readArgs reads the arguments of a form-encoded (what slack-go sends) or JSON body.
func readArgs(r *http.Request) (url.Values, error) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return nil, err
	}
	if len(body) > maxBody {
		return nil, fmt.Errorf("body over %d bytes", maxBody)
	}
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch mt {
	case "application/x-www-form-urlencoded":
		return url.ParseQuery(string(body))
	case "application/json":
		var m map[string]any
		if err := json.Unmarshal(body, &m); err != nil {
			return nil, err
		}
		out := url.Values{}
		for k, v := range m {
			switch v := v.(type) {
			case string:
				out.Set(k, v)
			default:
				b, _ := json.Marshal(v)
				out.Set(k, string(b))
			}
		}
		return out, nil
	}
	return nil, fmt.Errorf("content type %q", mt)
}

// validate checks the message arguments as Slack does and returns the version, or the error code.
func validate(args url.Values) (Version, string) {
	v := Version{Text: args.Get("text")}
	if utf8.RuneCountInString(v.Text) > MaxTextRunes {
		return v, "msg_too_long"
	}
	if b := args.Get("blocks"); b != "" {
		if err := json.Unmarshal([]byte(b), &v.Blocks); err != nil {
			return v, "invalid_blocks_format"
		}
		if len(v.Blocks) > MaxBlocks {
			return v, "invalid_blocks"
		}
		for _, bl := range v.Blocks {
			if !validBlock(bl) {
				return v, "invalid_blocks"
			}
		}
	}
	if strings.TrimSpace(v.Text) == "" && len(v.Blocks) == 0 {
		return v, "no_text"
	}
	return v, ""
}

func validBlock(b map[string]any) bool {
	switch b["type"] {
	case "header":
		t, ok := textObject(b["text"])
		return ok && t.kind == "plain_text" && t.runes() >= 1 && t.runes() <= MaxHeaderText
	case "section":
		text, hasText := b["text"]
		fields, hasFields := b["fields"].([]any)
		if !hasText && !hasFields {
			return false
		}
		if hasText {
			t, ok := textObject(text)
			if !ok || t.runes() < 1 || t.runes() > MaxSectionText {
				return false
			}
		}
		if hasFields {
			if len(fields) == 0 || len(fields) > MaxSectionFields {
				return false
			}
			for _, f := range fields {
				t, ok := textObject(f)
				if !ok || t.runes() < 1 || t.runes() > MaxFieldText {
					return false
				}
			}
		}
		return true
	case "context":
		elems, ok := b["elements"].([]any)
		if !ok || len(elems) == 0 || len(elems) > MaxContextElems {
			return false
		}
		for _, e := range elems {
			if t, ok := textObject(e); !ok || t.runes() < 1 || t.runes() > MaxSectionText {
				return false
			}
		}
		return true
	case "divider":
		return true
	}
	return false
}

type text struct{ kind, text string }

func (t text) runes() int { return utf8.RuneCountInString(t.text) }

func textObject(v any) (text, bool) {
	m, ok := v.(map[string]any)
	if !ok {
		return text{}, false
	}
	kind, _ := m["type"].(string)
	s, ok := m["text"].(string)
	if !ok || (kind != "plain_text" && kind != "mrkdwn") {
		return text{}, false
	}
	return text{kind: kind, text: s}, true
}

// Validate checks the arguments of a message (text, blocks) as chat.postMessage does, and returns the error
// code Slack would answer, "" when it accepts them.
func Validate(args url.Values) string {
	_, code := validate(args)
	return code
}
