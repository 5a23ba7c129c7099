package githubtest

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/deployment-tracker/deployment-tracker/internal/record"
)

// The API version and media type a client must send, as documented in
// https://docs.github.com/rest/about-the-rest-api/api-versions and
// https://docs.github.com/rest/using-the-rest-api/getting-started-with-the-rest-api#headers.
const (
	APIVersion = "2022-11-28"
	MediaType  = "application/vnd.github+json"
	// MediaTypeV3 is the older name of the same media type, which go-github sends; the server accepts both,
	// and the preview media types ("application/vnd.github.<name>-preview+json") that go-github still sends
	// on some endpoints (the deployment endpoints among them).
	MediaTypeV3 = "application/vnd.github.v3+json"
)

// Defaults of Options.
const (
	DefaultOrg          = "octo-org"
	DefaultTokenTTL     = time.Hour // installation tokens expire after one hour
	DefaultMaxBodyBytes = 1 << 20
)

// docsURL is the documentation_url of the record endpoint's error bodies.
const docsURL = "https://docs.github.com/rest/orgs/artifact-metadata#create-an-artifact-deployment-record"

// Options configures a Server. The zero value serves DefaultOrg over plain HTTP and refuses every request for
// lack of credentials.
type Options struct {
	// Org is the only organization the server knows; GitHub compares organization names case-insensitively.
	// Default DefaultOrg.
	Org string
	// Tokens are the personal access tokens accepted as "Authorization: Bearer <t>" or "token <t>".
	Tokens []string
	// App enables GitHub App authentication: POST /app/installations/{id}/access_tokens exchanges a JWT signed
	// by the App's key for an installation token, which the record endpoint then accepts until it expires.
	App *AppAuth
	// TLS serves HTTPS with a self-signed certificate; Client returns an *http.Client that trusts it.
	TLS bool
	// Addr is the listen address; default a free port on 127.0.0.1.
	Addr string
	// PathPrefix is prepended to every API path, for example "/api/v3" to look like GitHub Enterprise Server.
	PathPrefix string
	// TokenTTL is the lifetime of the installation tokens the server issues (default DefaultTokenTTL).
	TokenTTL time.Duration
	// MaxBodyBytes bounds request bodies (default DefaultMaxBodyBytes); larger bodies get 413.
	MaxBodyBytes int64
	// OnAccept, if set, is called with every accepted record, in order, after it has been stored. It runs on the
	// request's goroutine: the response is sent when it returns.
	OnAccept func(record.Record)
	// Now is the clock used for token expiry, JWT checks and timestamps (default time.Now).
	Now func() time.Time
	// Repos are the repositories of Org, keyed by name (compared case-insensitively, as GitHub compares
	// them), for the deployment and commit endpoints (repos.go). New validates and copies them; AddRepo,
	// AddCommit, SetBranch and SetTag change them later.
	Repos map[string]Repo
}

// Server is a running fake GitHub API. Its methods are safe for concurrent use.
type Server struct {
	opts Options
	srv  *httptest.Server

	mu          sync.Mutex
	accepted    []record.Record
	current     map[record.Key]*stored
	nextID      int64
	calls       int
	finished    int // record requests completed
	statuses    map[int]int
	tokenCalls  int
	tokens      map[string]time.Time // installation token → expiry
	faults      []pending            // for the record endpoint
	tokenFaults []pending            // for the access token endpoint
	delay       time.Duration
	unknown     []artifact
	cluster     clusterState  // the cluster endpoints (cluster.go)
	repos       repoState     // the repository endpoints (repos.go)
	changed     chan struct{} // closed and replaced whenever the record, cluster or repository endpoints answer
	closed      chan struct{}
	closeOnce   sync.Once
}

type stored struct {
	id      int64
	rec     record.Record
	created time.Time
	updated time.Time
}

// New starts a Server. Close it when done.
func New(opts Options) (*Server, error) {
	if opts.Org == "" {
		opts.Org = DefaultOrg
	}
	if opts.TokenTTL <= 0 {
		opts.TokenTTL = DefaultTokenTTL
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	opts.PathPrefix = strings.TrimRight(opts.PathPrefix, "/")
	if opts.PathPrefix != "" && !strings.HasPrefix(opts.PathPrefix, "/") {
		return nil, fmt.Errorf("githubtest: path prefix %q must start with /", opts.PathPrefix)
	}
	if opts.App != nil {
		if opts.App.PublicKey == nil {
			return nil, errors.New("githubtest: App.PublicKey is required")
		}
		if opts.App.AppID <= 0 || opts.App.InstallationID <= 0 {
			return nil, errors.New("githubtest: App.AppID and App.InstallationID must be positive")
		}
	}
	repos, err := newRepoState(opts.Repos, opts.Now())
	if err != nil {
		return nil, err
	}
	opts.Repos = nil // copied into repos
	s := &Server{
		opts:     opts,
		repos:    repos,
		current:  map[record.Key]*stored{},
		statuses: map[int]int{},
		tokens:   map[string]time.Time{},
		changed:  make(chan struct{}),
		closed:   make(chan struct{}),
	}

	mux := http.NewServeMux()
	mux.HandleFunc(opts.PathPrefix+"/orgs/{org}", s.handleOrg)
	mux.HandleFunc(opts.PathPrefix+"/orgs/{org}/artifacts/metadata/deployment-record", s.handleRecord)
	mux.HandleFunc(opts.PathPrefix+"/orgs/{org}/artifacts/metadata/deployment-record/cluster/{cluster}", s.handleClusterSet)
	mux.HandleFunc(opts.PathPrefix+"/orgs/{org}/artifacts/metadata/deployment-record/cluster/{cluster}/jobs", s.handleClusterJobs)
	mux.HandleFunc(opts.PathPrefix+"/orgs/{org}/artifacts/metadata/deployment-record/cluster/{cluster}/jobs/{job_id}", s.handleClusterJob)
	mux.HandleFunc(opts.PathPrefix+"/app/installations/{installation_id}/access_tokens", s.handleAccessToken)
	s.routeRepos(mux)
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		writeError(w, http.StatusNotFound, "Not Found", "https://docs.github.com/rest")
	})

	s.srv = httptest.NewUnstartedServer(mux)
	s.srv.Config.ReadHeaderTimeout = 10 * time.Second
	if opts.Addr != "" {
		l, err := net.Listen("tcp", opts.Addr)
		if err != nil {
			s.srv.Close()
			return nil, fmt.Errorf("githubtest: listen on %s: %w", opts.Addr, err)
		}
		_ = s.srv.Listener.Close()
		s.srv.Listener = l
	}
	if opts.TLS {
		s.srv.StartTLS()
	} else {
		s.srv.Start()
	}
	return s, nil
}

// URL is the API base URL to configure in a client (BASE_URL): the server's root followed by PathPrefix.
func (s *Server) URL() string { return s.srv.URL + s.opts.PathPrefix }

// Org is the organization the server accepts records for.
func (s *Server) Org() string { return s.opts.Org }

// Client returns an *http.Client for the server; with TLS it trusts the server's certificate.
func (s *Server) Client() *http.Client { return s.srv.Client() }

// Close shuts the server down, waiting for requests in flight. Pending WaitFor calls return an error.
func (s *Server) Close() {
	s.closeOnce.Do(func() { close(s.closed) })
	s.srv.Close()
}

// Accepted returns every accepted record in the order the server accepted them.
func (s *Server) Accepted() []record.Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]record.Record, len(s.accepted))
	for i, r := range s.accepted {
		out[i] = cloneRecord(r)
	}
	return out
}

// Current returns the current state at "GitHub": the last accepted record of each upsert key.
func (s *Server) Current() map[record.Key]record.Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[record.Key]record.Record, len(s.current))
	for k, st := range s.current {
		out[k] = cloneRecord(st.rec)
	}
	return out
}

// Calls returns the number of requests to the record endpoint, failed and injected ones included.
func (s *Server) Calls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

// StatusCounts returns, per HTTP status, how many responses the record endpoint sent. A request whose client
// gave up during an injected delay got no response and counts in Calls only.
func (s *Server) StatusCounts() map[int]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.statuses)
}

// TokenRequests returns the number of requests to the installation access token endpoint.
func (s *Server) TokenRequests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tokenCalls
}

// RevokeTokens invalidates every installation token issued so far, as if they had expired or been revoked:
// the record endpoint answers 401 Bad credentials to them.
func (s *Server) RevokeTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.tokens)
}

// WaitFor blocks until cond, called with the ordered log of accepted records, returns true, ctx is done or the
// server is closed. cond is evaluated at once and again after every answer of the record endpoint.
func (s *Server) WaitFor(ctx context.Context, cond func(accepted []record.Record) bool) error {
	for {
		s.mu.Lock()
		ch := s.changed
		s.mu.Unlock()
		if cond(s.Accepted()) {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("githubtest: wait for records: %w", ctx.Err())
		case <-s.closed:
			return errors.New("githubtest: wait for records: server closed")
		}
	}
}

// WaitForCalls blocks until at least n requests to the record endpoint have completed (answered, or abandoned
// by their client during a delay), ctx is done or the server is closed.
func (s *Server) WaitForCalls(ctx context.Context, n int) error {
	for {
		s.mu.Lock()
		ch, finished := s.changed, s.finished
		s.mu.Unlock()
		if finished >= n {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("githubtest: wait for %d calls: %w", n, ctx.Err())
		case <-s.closed:
			return errors.New("githubtest: wait for calls: server closed")
		}
	}
}

// notifyLocked wakes the waiters; s.mu must be held.
func (s *Server) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// authenticate checks the Authorization header against the personal access tokens and the unexpired
// installation tokens. It returns the GitHub error message when the request is not authenticated.
func (s *Server) authenticate(r *http.Request) (ok bool, message string) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return false, "Requires authentication"
	}
	scheme, cred, found := strings.Cut(h, " ")
	cred = strings.TrimSpace(cred)
	if !found || cred == "" || (!strings.EqualFold(scheme, "Bearer") && !strings.EqualFold(scheme, "token")) {
		return false, "Bad credentials"
	}
	for _, t := range s.opts.Tokens {
		if subtle.ConstantTimeCompare([]byte(t), []byte(cred)) == 1 {
			return true, ""
		}
	}
	s.mu.Lock()
	exp, issued := s.tokens[cred]
	s.mu.Unlock()
	if issued && s.opts.Now().Before(exp) {
		return true, ""
	}
	return false, "Bad credentials"
}

// sleep waits d or until the request is abandoned; it reports whether the request is still wanted.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// errorBody is GitHub's error shape (components/schemas/basic-error, plus errors for validation failures).
type errorBody struct {
	Message          string   `json:"message"`
	DocumentationURL string   `json:"documentation_url"`
	Status           string   `json:"status"`
	Errors           []string `json:"errors,omitempty"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("X-GitHub-Media-Type", "github.v3; format=json")
	w.Header().Set("X-GitHub-Api-Version-Selected", APIVersion)
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, message, docs string, errs ...string) {
	writeJSON(w, status, errorBody{Message: message, DocumentationURL: docs, Status: strconv.Itoa(status), Errors: errs})
}

// statusRecorder remembers the status a handler wrote.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

// acceptsGitHubJSON reports whether an Accept header asks for a GitHub JSON media type: MediaType, MediaTypeV3
// or a preview type (https://docs.github.com/rest/using-the-rest-api/media-types).
func acceptsGitHubJSON(accept []string) bool {
	for _, h := range accept {
		for _, part := range strings.Split(h, ",") {
			mt, _, _ := strings.Cut(part, ";")
			mt = strings.ToLower(strings.TrimSpace(mt))
			preview, isPreview := strings.CutPrefix(mt, "application/vnd.github.")
			isPreview = isPreview && (strings.HasSuffix(preview, "-preview+json") || strings.HasSuffix(preview, "-preview"))
			if mt == MediaType || mt == MediaTypeV3 || isPreview {
				return true
			}
		}
	}
	return false
}

func cloneRecord(r record.Record) record.Record {
	r.Tags = maps.Clone(r.Tags)
	r.RuntimeRisks = slices.Clone(r.RuntimeRisks)
	return r
}
