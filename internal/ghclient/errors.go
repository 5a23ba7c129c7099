package ghclient

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/bradleyfalzon/ghinstallation/v2"
	"github.com/google/go-github/v88/github"

	"github.com/deployment-tracker/deployment-tracker/internal/sink"
)

// ErrInstallationToken wraps the failures to mint an App installation token, which Classify classifies too.
var ErrInstallationToken = errors.New("get installation token")

// StatusError is an answer that may be retried (408, 5xx): sink.Classify finds it retryable.
type StatusError struct {
	StatusCode int
	Message    string
}

func (e *StatusError) Error() string { return fmt.Sprintf("status %d: %s", e.StatusCode, e.Message) }

// Classify maps an error of a go-github call (or of Do) to the sink error classes, as GitHub documents its
// answers (https://docs.github.com/rest/using-the-rest-api/troubleshooting-the-rest-api):
//
//   - 429, or a 403 marked as a rate limit (primary or secondary): *sink.RetryAfterError, at the documented
//     time: retry-after first, else x-ratelimit-reset when x-ratelimit-remaining is 0, else one minute;
//   - 401, any other 403, and an installation token that cannot be minted: *sink.CredentialsError (the sink
//     pauses; nothing is dropped);
//   - 404: *sink.NotFoundError (the caller decides what is not found);
//   - 408, 5xx, network errors and timeouts: a plain, retryable error;
//   - other 4xx (422 validation): *sink.PermanentError with GitHub's message.
//
// A 401 also drops a cached App installation token, so that the next attempt mints a new one. nil stays nil.
func (c *Client) Classify(err error) error {
	if err == nil {
		return nil
	}
	var rl *github.RateLimitError
	var abuse *github.AbuseRateLimitError
	var er *github.ErrorResponse
	var tok *ghinstallation.HTTPError
	var redirect *github.RedirectionError
	switch {
	case errors.As(err, &redirect):
		// Redirects are not followed when the client is told not to: a BASE_URL that is a web page (GitHub
		// Enterprise Server without /api/v3) redirects to its login.
		where := ""
		if redirect.Location != nil {
			where = " to " + redirect.Location.String()
		}
		return &sink.PermanentError{StatusCode: redirect.StatusCode, Message: c.redact("redirected" + where)}
	case errors.As(err, &rl):
		// go-github also refuses a call itself, without sending it, while a limit it saw lasts; its response
		// then has no headers, and the reset it remembered says when.
		at := c.now().Add(SecondaryRateLimitWait)
		switch {
		case rl.Response != nil && (rl.Response.Header.Get("Retry-After") != "" || rl.Response.Header.Get("X-Ratelimit-Reset") != ""):
			at = retryAt(rl.Response.Header, c.now())
		case !rl.Rate.Reset.IsZero():
			at = c.bound(rl.Rate.Reset.Time)
		}
		return &sink.RetryAfterError{StatusCode: statusOf(rl.Response, http.StatusForbidden), At: at, Message: c.redact(rl.Message)}
	case errors.As(err, &abuse):
		at := c.now().Add(SecondaryRateLimitWait)
		if abuse.RetryAfter != nil {
			at = c.bound(c.now().Add(*abuse.RetryAfter))
		}
		return &sink.RetryAfterError{StatusCode: statusOf(abuse.Response, http.StatusForbidden), At: at, Message: c.redact(abuse.Message)}
	case errors.As(err, &er) && er.Response != nil:
		// go-github puts the body it read back into the response: read it as Do's answers are read, so that
		// a body that is not GitHub's JSON (a proxy's HTML page) still says what happened.
		msg, docs := c.errorMessage(er), er.DocumentationURL
		if er.Response.Body != nil {
			if data, rerr := io.ReadAll(io.LimitReader(er.Response.Body, 64<<10)); rerr == nil && len(data) > 0 {
				msg, docs = c.message(data, er.Response.StatusCode)
			}
		}
		return c.classify(er.Response.StatusCode, er.Response.Header, msg, docs)
	case errors.As(err, &tok) && tok.Response != nil:
		return fmt.Errorf("%w: %w", ErrInstallationToken, c.tokenRefused(c.ClassifyResponse(tok.Response)))
	}
	return err
}

// tokenRefused turns the refusal of an installation token into a credentials problem: a 404 is an unknown
// installation (uninstalled, or the wrong GH_INSTALL_ID), a 401 a key or App ID GitHub does not accept, not
// facts about a record. Rate limits and server errors keep their class.
func (c *Client) tokenRefused(err error) error {
	var nf *sink.NotFoundError
	var pe *sink.PermanentError
	switch {
	case errors.As(err, &nf):
		return &sink.CredentialsError{StatusCode: http.StatusNotFound, Message: "installation not found: " + nf.Message}
	case errors.As(err, &pe):
		return &sink.CredentialsError{StatusCode: pe.StatusCode, Message: pe.Message}
	}
	return err
}

// ClassifyResponse classifies the answer of a hand-written call (Do), and reads, drains and closes its body
// unless it is a 2xx, which it leaves to the caller (and then returns nil).
func (c *Client) ClassifyResponse(resp *http.Response) error {
	code := resp.StatusCode
	if code >= 200 && code <= 299 {
		return nil
	}
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	msg, docs := c.message(data, code)
	return c.classify(code, resp.Header, msg, docs)
}

func (c *Client) classify(code int, h http.Header, msg, docs string) error {
	switch {
	case code == http.StatusTooManyRequests, code == http.StatusForbidden && rateLimited(h, msg, docs):
		return &sink.RetryAfterError{StatusCode: code, At: retryAt(h, c.now()), Message: msg}
	case code == http.StatusUnauthorized:
		c.creds.refused()
		return &sink.CredentialsError{StatusCode: code, Message: msg}
	case code == http.StatusForbidden:
		return &sink.CredentialsError{StatusCode: code, Message: msg}
	case code == http.StatusNotFound:
		return &sink.NotFoundError{Message: msg}
	case code == http.StatusRequestTimeout, code >= 500:
		return &StatusError{StatusCode: code, Message: msg}
	case code >= 400:
		return &sink.PermanentError{StatusCode: code, Message: msg}
	default:
		return fmt.Errorf("unexpected status %d: %s", code, msg)
	}
}

// errorMessage is GitHub's message and validation errors of er, bounded and redacted.
func (c *Client) errorMessage(er *github.ErrorResponse) string {
	msg := er.Message
	for i, e := range er.Errors {
		if i == 5 {
			msg += "; …"
			break
		}
		switch {
		case e.Message != "":
			msg += "; " + e.Message
		case e.Code != "":
			msg += fmt.Sprintf("; %s %s %s", e.Resource, e.Field, e.Code)
		}
	}
	if msg == "" {
		msg = http.StatusText(er.Response.StatusCode)
	}
	return c.redact(msg)
}

// BodyMessage is what a person should read of an error body of GitHub: its "message" and validation "errors" when
// it is GitHub's JSON, else the text itself; bounded, redacted, the status text when empty.
func (c *Client) BodyMessage(data []byte, code int) string {
	msg, _ := c.message(data, code)
	return msg
}

// message extracts GitHub's "message" (and validation "errors") from an error body, bounded and redacted.
func (c *Client) message(data []byte, code int) (msg, docs string) {
	var body struct {
		Message          string            `json:"message"`
		DocumentationURL string            `json:"documentation_url"`
		Errors           []json.RawMessage `json:"errors"`
	}
	if err := json.Unmarshal(data, &body); err == nil && body.Message != "" {
		msg, docs = body.Message, body.DocumentationURL
		for i, e := range body.Errors {
			if i == 5 {
				msg += "; …"
				break
			}
			msg += "; " + validationError(e)
		}
	} else {
		msg = strings.TrimSpace(string(data))
	}
	if msg == "" {
		msg = http.StatusText(code)
	}
	return c.redact(msg), docs
}

// validationError is one element of a validation answer's "errors": a string, or an object with a message or
// a resource, field and code (https://docs.github.com/rest/using-the-rest-api/troubleshooting-the-rest-api).
func validationError(e json.RawMessage) string {
	var str string
	if json.Unmarshal(e, &str) == nil {
		return str
	}
	var obj github.Error
	if json.Unmarshal(e, &obj) == nil {
		if obj.Message != "" {
			return obj.Message
		}
		if parts := strings.Fields(obj.Resource + " " + obj.Field + " " + obj.Code); len(parts) > 0 {
			return strings.Join(parts, " ")
		}
	}
	return string(e)
}

// redact removes the credentials from msg (in case a server echoes them), control characters and invalid
// UTF-8, and bounds it.
func (c *Client) redact(msg string) string {
	for _, s := range c.creds.secrets() {
		if s != "" {
			msg = strings.ReplaceAll(msg, s, "[REDACTED]")
		}
	}
	msg = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(msg, "?"))
	if len(msg) > MaxMessage {
		msg = strings.ToValidUTF8(msg[:MaxMessage], "") + "…"
	}
	return msg
}

// Message is the server message of a classified error, or the error's text.
func Message(err error) string {
	var pe *sink.PermanentError
	var ce *sink.CredentialsError
	var nf *sink.NotFoundError
	switch {
	case errors.As(err, &pe):
		return pe.Message
	case errors.As(err, &ce):
		return ce.Message
	case errors.As(err, &nf):
		return nf.Message
	}
	return err.Error()
}

// rateLimited tells a rate limited 403 from a permission 403: GitHub answers both primary and secondary rate
// limits with 403 or 429, and marks them with x-ratelimit-remaining: 0, a retry-after header, or a message and
// documentation link about rate limits.
func rateLimited(h http.Header, msg, docs string) bool {
	return h.Get("X-Ratelimit-Remaining") == "0" ||
		h.Get("Retry-After") != "" ||
		strings.Contains(strings.ToLower(msg), "rate limit") ||
		strings.HasSuffix(docs, "secondary-rate-limits") ||
		strings.HasSuffix(docs, "#abuse-rate-limits")
}

// retryAt is when calls may resume, following
// https://docs.github.com/rest/using-the-rest-api/rate-limits-for-the-rest-api#exceeding-the-rate-limit:
// retry-after (seconds, or an HTTP date) first; else x-ratelimit-reset (UTC epoch seconds) when
// x-ratelimit-remaining is 0; else at least one minute.
func retryAt(h http.Header, now time.Time) time.Time {
	at := now.Add(SecondaryRateLimitWait)
	if v := strings.TrimSpace(h.Get("Retry-After")); v != "" {
		if secs, err := strconv.ParseInt(v, 10, 64); err == nil && secs >= 0 {
			at = now.Add(time.Duration(min(secs, int64(maxRetryAfter/time.Second))) * time.Second)
		} else if t, err := http.ParseTime(v); err == nil {
			at = t
		}
	} else if h.Get("X-Ratelimit-Remaining") == "0" {
		if reset, err := strconv.ParseInt(h.Get("X-Ratelimit-Reset"), 10, 64); err == nil {
			at = time.Unix(reset, 0)
		}
	}
	return bound(at, now)
}

func (c *Client) bound(at time.Time) time.Time { return bound(at, c.now()) }

// bound keeps at between now and maxRetryAfter from now.
func bound(at, now time.Time) time.Time {
	if at.Before(now) {
		return now
	}
	if limit := now.Add(maxRetryAfter); at.After(limit) {
		return limit
	}
	return at
}

func statusOf(resp *http.Response, def int) int {
	if resp == nil {
		return def
	}
	return resp.StatusCode
}
