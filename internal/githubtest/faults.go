package githubtest

import (
	"math"
	"net/http"
	"strconv"
	"time"
)

// Rate limit documentation, as GitHub links it from rate-limited responses
// (https://docs.github.com/rest/using-the-rest-api/rate-limits-for-the-rest-api#exceeding-the-rate-limit).
const (
	PrimaryRateLimitDocs   = "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-primary-rate-limits"
	SecondaryRateLimitDocs = "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits"
)

// Messages of injected failures, worded as GitHub words them.
const (
	PrimaryRateLimitMessage   = "API rate limit exceeded for installation. If you reach out to GitHub Support for help, please include the request ID."
	SecondaryRateLimitMessage = "You have exceeded a secondary rate limit. Please wait a few minutes before you try again. If you reach out to GitHub Support for help, please include the request ID."
	// UnknownArtifactMessage is the 404 message for an artifact GitHub has no attestation for, as the reference
	// deployment tracker (github/deployment-tracker) expects it.
	UnknownArtifactMessage = "no artifacts found"
)

// Fault is one programmed answer. A Fault with a zero Status only delays the request, which then proceeds
// normally: a slow response.
type Fault struct {
	// Status is the HTTP status to answer with; 0 answers normally after Delay.
	Status int
	// Message is the "message" of the JSON error body (default: the status text).
	Message string
	// DocumentationURL is the "documentation_url" of the body.
	DocumentationURL string
	// Header is added to the response.
	Header http.Header
	// Delay is waited before answering (or proceeding); a client that gives up first gets nothing.
	Delay time.Duration
}

type pending struct {
	fault Fault
	left  int
}

// artifact selects records by name and/or digest; an empty field matches any value.
type artifact struct{ name, digest string }

func (a artifact) matches(name, digest string) bool {
	return (a.name == "" || a.name == name) && (a.digest == "" || a.digest == digest)
}

// InjectNext makes the next n requests to the record endpoint (those past the authentication and organization
// checks) answer with f instead of being processed. Faults queue up in the order they were injected.
func (s *Server) InjectNext(n int, f Fault) {
	if n <= 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, pending{fault: f, left: n})
}

// InjectTokenNext makes the next n requests to the installation access token endpoint (those with a valid JWT)
// answer with f.
func (s *Server) InjectTokenNext(n int, f Fault) {
	if n <= 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokenFaults = append(s.tokenFaults, pending{fault: f, left: n})
}

// FailNext makes the next n record requests answer status (for example 500, 502 or 503).
func (s *Server) FailNext(n, status int) { s.InjectNext(n, Fault{Status: status}) }

// TooManyRequestsNext makes the next n record requests answer 429 with a Retry-After of retryAfter (rounded up
// to whole seconds).
func (s *Server) TooManyRequestsNext(n int, retryAfter time.Duration) {
	s.InjectNext(n, Fault{
		Status:           http.StatusTooManyRequests,
		Message:          SecondaryRateLimitMessage,
		DocumentationURL: SecondaryRateLimitDocs,
		Header:           http.Header{"Retry-After": {seconds(retryAfter)}},
	})
}

// PrimaryRateLimitNext makes the next n record requests answer 403 with x-ratelimit-remaining 0 and
// x-ratelimit-reset at reset (UTC epoch seconds), as GitHub does when the primary rate limit is exhausted.
func (s *Server) PrimaryRateLimitNext(n int, reset time.Time) {
	s.InjectNext(n, Fault{
		Status:           http.StatusForbidden,
		Message:          PrimaryRateLimitMessage,
		DocumentationURL: PrimaryRateLimitDocs,
		Header: http.Header{
			"X-Ratelimit-Limit":     {"5000"},
			"X-Ratelimit-Remaining": {"0"},
			"X-Ratelimit-Used":      {"5000"},
			"X-Ratelimit-Reset":     {strconv.FormatInt(reset.Unix(), 10)},
			"X-Ratelimit-Resource":  {"core"},
		},
	})
}

// SecondaryRateLimitNext makes the next n record requests answer 403 with GitHub's secondary rate limit
// message. With retryAfter > 0 the response carries Retry-After; with 0 it carries no rate limit header at all,
// and the documentation tells clients to wait at least a minute.
func (s *Server) SecondaryRateLimitNext(n int, retryAfter time.Duration) {
	f := Fault{
		Status:           http.StatusForbidden,
		Message:          SecondaryRateLimitMessage,
		DocumentationURL: SecondaryRateLimitDocs,
	}
	if retryAfter > 0 {
		f.Header = http.Header{"Retry-After": {seconds(retryAfter)}}
	}
	s.InjectNext(n, f)
}

// DelayNext delays the next n record requests by d; they are then processed normally.
func (s *Server) DelayNext(n int, d time.Duration) { s.InjectNext(n, Fault{Delay: d}) }

// SetDelay delays every request to the record endpoint by d until changed (0 turns it off).
func (s *Server) SetDelay(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.delay = d
}

// UnknownArtifact makes valid records of this artifact answer 404 UnknownArtifactMessage, as for an image that
// has no provenance attestation, until ClearUnknownArtifacts. An empty name or digest matches any.
func (s *Server) UnknownArtifact(name, digest string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.unknown = append(s.unknown, artifact{name: name, digest: digest})
}

// ClearUnknownArtifacts forgets every UnknownArtifact.
func (s *Server) ClearUnknownArtifacts() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.unknown = nil
}

// Reset removes every programmed failure: queued faults (InjectRepoNext's too), the delay and the unknown
// artifacts. The records, deployments and counters are kept.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults, s.tokenFaults, s.delay, s.unknown = nil, nil, 0, nil
	s.repos.faults = nil
}

// popLocked takes the next fault of q, if any; s.mu must be held.
func popLocked(q *[]pending) (Fault, bool) {
	if len(*q) == 0 {
		return Fault{}, false
	}
	p := &(*q)[0]
	f := p.fault
	if p.left--; p.left == 0 {
		*q = (*q)[1:]
	}
	return f, true
}

// serveFault writes f; it reports false when the client gave up during the delay and nothing was written.
// A Fault without a status writes nothing and reports true.
func serveFault(w http.ResponseWriter, r *http.Request, f Fault) bool {
	if !sleep(r.Context(), f.Delay) {
		return false
	}
	if f.Status == 0 {
		return true
	}
	for k, vs := range f.Header {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	msg := f.Message
	if msg == "" {
		msg = http.StatusText(f.Status)
	}
	docs := f.DocumentationURL
	if docs == "" {
		docs = "https://docs.github.com/rest"
	}
	writeError(w, f.Status, msg, docs)
	return true
}

// seconds formats d as a Retry-After value: whole seconds, rounded up.
func seconds(d time.Duration) string {
	return strconv.FormatInt(int64(math.Ceil(d.Seconds())), 10)
}
