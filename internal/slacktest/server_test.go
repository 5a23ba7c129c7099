package slacktest

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

func call(t *testing.T, s *Server, method, token string, args url.Values) (int, map[string]any, http.Header) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, s.URL()+method, strings.NewReader(args.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := s.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, body, resp.Header
}

func TestServer(t *testing.T) {
	s := NewServer("xoxb-1")
	defer s.Close()
	id := s.AddChannel("deploys")
	s.AddChannel("old")
	s.Archive("old")
	s.AddChannelWithoutBot("private")
	section := `[{"type":"section","text":{"type":"mrkdwn","text":"hi"}}]`

	_, ok, _ := call(t, s, "chat.postMessage", "xoxb-1", url.Values{"channel": {"#deploys"}, "text": {"hello"}, "blocks": {section}})
	ts, _ := ok["ts"].(string)
	if ok["ok"] != true || ok["channel"] != id || ts == "" {
		t.Fatalf("post: %v", ok)
	}
	for _, tc := range []struct {
		name, method, token string
		args                url.Values
		want                string
	}{
		{"no token", "chat.postMessage", "", url.Values{"channel": {id}, "text": {"x"}}, "not_authed"},
		{"wrong token", "chat.postMessage", "xoxb-2", url.Values{"channel": {id}, "text": {"x"}}, "invalid_auth"},
		{"token in the form", "chat.postMessage", "", url.Values{"token": {"xoxb-1"}, "channel": {id}, "text": {"x"}}, ""},
		{"unknown channel", "chat.postMessage", "xoxb-1", url.Values{"channel": {"#nope"}, "text": {"x"}}, "channel_not_found"},
		{"archived", "chat.postMessage", "xoxb-1", url.Values{"channel": {"#old"}, "text": {"x"}}, "is_archived"},
		{"bot not invited", "chat.postMessage", "xoxb-1", url.Values{"channel": {"private"}, "text": {"x"}}, "not_in_channel"},
		{"no text", "chat.postMessage", "xoxb-1", url.Values{"channel": {id}}, "no_text"},
		{"blocks not JSON", "chat.postMessage", "xoxb-1", url.Values{"channel": {id}, "blocks": {"["}}, "invalid_blocks_format"},
		{"empty section", "chat.postMessage", "xoxb-1", url.Values{"channel": {id}, "blocks": {`[{"type":"section","text":{"type":"mrkdwn","text":""}}]`}}, "invalid_blocks"},
		{"header too long", "chat.postMessage", "xoxb-1", url.Values{"channel": {id}, "blocks": {`[{"type":"header","text":{"type":"plain_text","text":"` + strings.Repeat("h", 151) + `"}}]`}}, "invalid_blocks"},
		{"text too long", "chat.postMessage", "xoxb-1", url.Values{"channel": {id}, "text": {strings.Repeat("t", MaxTextRunes+1)}}, "msg_too_long"},
		{"update of a ts never issued", "chat.update", "xoxb-1", url.Values{"channel": {id}, "ts": {"1.000001"}, "text": {"x"}}, "message_not_found"},
		{"update by channel name", "chat.update", "xoxb-1", url.Values{"channel": {"#deploys"}, "ts": {ts}, "text": {"x"}}, "channel_not_found"},
		{"update", "chat.update", "xoxb-1", url.Values{"channel": {id}, "ts": {ts}, "text": {"hello again"}}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body, _ := call(t, s, tc.method, tc.token, tc.args)
			if status != http.StatusOK {
				t.Errorf("status %d", status)
			}
			if got, _ := body["error"].(string); got != tc.want || (tc.want == "") != (body["ok"] == true) {
				t.Errorf("answer %v, want error %q", body, tc.want)
			}
		})
	}
	ms := s.Messages()
	if len(ms) != 2 || len(ms[0].Versions) != 2 || ms[0].Latest().Text != "hello again" {
		t.Errorf("messages %+v, want the first updated once", ms)
	}

	s.RateLimitChannel("#deploys", 1, 3*time.Second)
	status, body, h := call(t, s, "chat.postMessage", "xoxb-1", url.Values{"channel": {"#deploys"}, "text": {"x"}})
	if status != http.StatusTooManyRequests || h.Get("Retry-After") != "3" || body["error"] != "ratelimited" {
		t.Errorf("rate limit: %d %v Retry-After=%q", status, body, h.Get("Retry-After"))
	}
	s.Revoke()
	if _, body, _ := call(t, s, "chat.postMessage", "xoxb-1", url.Values{"channel": {id}, "text": {"x"}}); body["error"] != "invalid_auth" {
		t.Errorf("revoked: %v", body)
	}
}
