package githubtest

// The repository endpoints (deployments.go, commits.go) serve the repositories of Options.Org that
// Options.Repos describes. What they share lives here: the repositories and how a ref resolves to a commit,
// the checks before the body, fault injection, counting, pagination and the users that create things.
//
// What the documentation says, and what the fake assumes where it says nothing (each assumption is marked):
//
//   - The owner is the organization and, like the repository name, compared case-insensitively
//     (https://docs.github.com/rest/deployments/deployments#create-a-deployment: "The name is not case
//     sensitive"); an unknown owner or repository is 404 Not Found.
//   - A ref is a branch, a tag or a SHA. The fake resolves, in this order: "refs/heads/<b>" and "heads/<b>",
//     "refs/tags/<t>" and "tags/<t>", a branch name, a tag name, a full SHA of a known commit, and a unique
//     prefix of at least MinSHAPrefix hex digits (an assumption: git takes shorter ones, GitHub documents none).
//   - The checks before the body are the record endpoint's: User-Agent, Accept, X-GitHub-Api-Version and
//     credentials (a token of Options.Tokens or an installation token the server issued; 401 Bad credentials
//     otherwise), then owner and repository. Deployments and statuses are created by UserLogin for a token and
//     by AppLogin for an installation token (an assumption: GitHub names the App's bot after its slug).
//   - Faults come from their own queue, InjectRepoNext, so that a test of the record sink and one of the
//     deployment sink do not take each other's; SetDelay applies to the record endpoint only.
//   - Lists are paginated as GitHub paginates: per_page (default 30, at most 100) and page (default 1), a Link
//     header with rel="next", "last", "first" and "prev" where they apply
//     (https://docs.github.com/rest/using-the-rest-api/using-pagination-in-the-rest-api).

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Repo is a repository of the organization: its commits and the refs that point at them.
type Repo struct {
	// Branches maps branch names to the SHA of their head, which must be one of Commits.
	Branches map[string]string
	// Tags maps tag names to the SHA of the commit they point at, which must be one of Commits.
	Tags map[string]string
	// Commits maps full SHAs (40 lowercase hex digits) to the commits.
	Commits map[string]Commit
}

// Commit is a commit of a Repo, with what GET /repos/{owner}/{repo}/commits/{ref} tells about it.
type Commit struct {
	// Message is the commit message.
	Message string
	// AuthorName and AuthorEmail are the git author (default DefaultAuthorName and DefaultAuthorEmail), who is
	// also the committer.
	AuthorName, AuthorEmail string
	// AuthorDate is when the change was authored; default the server's clock when the commit was added.
	AuthorDate time.Time
	// CommitterDate is when it was committed; default AuthorDate.
	CommitterDate time.Time
	// Parents are the SHAs of the parent commits (40 hex digits each); they need not be in the Repo.
	Parents []string
}

// Defaults of Commit.
const (
	DefaultAuthorName  = "Monalisa Octocat"
	DefaultAuthorEmail = "octocat@github.com"
)

// MinSHAPrefix is the shortest abbreviated SHA a ref may be.
const MinSHAPrefix = 7

// The users that create deployments and statuses: UserLogin with a personal access token, AppLogin (the
// App's bot) with an installation token.
const (
	UserLogin = "octocat"
	AppLogin  = "octo-app[bot]"
)

// RepoEndpoint names a repository endpoint, after the operationId of GitHub's OpenAPI description; it targets
// faults (InjectRepoNext) and keys RepoStats.
type RepoEndpoint string

// The repository endpoints.
const (
	// AnyRepoEndpoint, given to InjectRepoNext, matches every repository endpoint.
	AnyRepoEndpoint                RepoEndpoint = ""
	EndpointCreateDeployment       RepoEndpoint = "repos/create-deployment"
	EndpointListDeployments        RepoEndpoint = "repos/list-deployments"
	EndpointGetDeployment          RepoEndpoint = "repos/get-deployment"
	EndpointCreateDeploymentStatus RepoEndpoint = "repos/create-deployment-status"
	EndpointListDeploymentStatuses RepoEndpoint = "repos/list-deployment-statuses"
	EndpointGetDeploymentStatus    RepoEndpoint = "repos/get-deployment-status"
	EndpointGetCommit              RepoEndpoint = "repos/get-commit"
)

// RepoStats counts the requests to the repository endpoints.
type RepoStats struct {
	// Requests counts the requests per endpoint, failed and injected ones included.
	Requests map[RepoEndpoint]int
	// Statuses counts the responses per endpoint and HTTP status. A request whose client gave up during an
	// injected delay got no response and counts in Requests only.
	Statuses map[RepoEndpoint]map[int]int
}

// repoState is the state of the repository endpoints; Server.mu guards it.
type repoState struct {
	repos            map[string]*repoData // lowercase name →
	nextDeploymentID int64
	nextStatusID     int64
	faults           []repoFault
	stats            RepoStats
}

type repoData struct {
	name        string // as configured
	branches    map[string]string
	tags        map[string]string
	commits     map[string]Commit
	deployments []*Deployment // in creation order
}

type repoFault struct {
	endpoint RepoEndpoint
	pending
}

// newRepoState validates and copies the configured repositories.
func newRepoState(repos map[string]Repo, now time.Time) (repoState, error) {
	st := repoState{
		repos: map[string]*repoData{},
		stats: RepoStats{Requests: map[RepoEndpoint]int{}, Statuses: map[RepoEndpoint]map[int]int{}},
	}
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(repos)) {
		if err := st.add(name, repos[name], now); err != nil {
			errs = append(errs, err)
		}
	}
	return st, errors.Join(errs...)
}

// add validates r and adds it as name.
func (st *repoState) add(name string, r Repo, now time.Time) error {
	if name == "" || len(name) > maxRepositoryLength || !repositoryPattern.MatchString(name) {
		return fmt.Errorf("githubtest: repository name %q must match %s and have at most %d characters", name, repositoryPattern, maxRepositoryLength)
	}
	if other, dup := st.repos[strings.ToLower(name)]; dup {
		return fmt.Errorf("githubtest: repository %q: %q exists already (names are case-insensitive)", name, other.name)
	}
	d := &repoData{name: name, branches: map[string]string{}, tags: map[string]string{}, commits: map[string]Commit{}}
	var errs []error
	for _, sha := range slices.Sorted(maps.Keys(r.Commits)) {
		if err := d.addCommit(sha, r.Commits[sha], now); err != nil {
			errs = append(errs, err)
		}
	}
	for _, b := range slices.Sorted(maps.Keys(r.Branches)) {
		errs = append(errs, d.setRef("branch", d.branches, b, r.Branches[b]))
	}
	for _, t := range slices.Sorted(maps.Keys(r.Tags)) {
		errs = append(errs, d.setRef("tag", d.tags, t, r.Tags[t]))
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	st.repos[strings.ToLower(name)] = d
	return nil
}

func (d *repoData) addCommit(sha string, c Commit, now time.Time) error {
	if !isSHA(sha) {
		return fmt.Errorf("githubtest: repository %s: commit %q is not a SHA of 40 lowercase hex digits", d.name, sha)
	}
	for _, p := range c.Parents {
		if !isSHA(p) {
			return fmt.Errorf("githubtest: repository %s: commit %s: parent %q is not a SHA of 40 lowercase hex digits", d.name, sha, p)
		}
	}
	if c.AuthorName == "" {
		c.AuthorName = DefaultAuthorName
	}
	if c.AuthorEmail == "" {
		c.AuthorEmail = DefaultAuthorEmail
	}
	if c.AuthorDate.IsZero() {
		c.AuthorDate = now
	}
	if c.CommitterDate.IsZero() {
		c.CommitterDate = c.AuthorDate
	}
	c.Parents = slices.Clone(c.Parents)
	d.commits[sha] = c
	return nil
}

func (d *repoData) setRef(kind string, refs map[string]string, name, sha string) error {
	if name == "" || strings.HasPrefix(name, "refs/") || strings.ContainsAny(name, " ~^:?*[\\") {
		return fmt.Errorf("githubtest: repository %s: %q is not a valid %s name", d.name, name, kind)
	}
	if _, ok := d.commits[sha]; !ok {
		return fmt.Errorf("githubtest: repository %s: %s %q points at %q, which is not a commit of the repository", d.name, kind, name, sha)
	}
	refs[name] = sha
	return nil
}

// resolve returns the SHA of the commit ref names, or false.
func (d *repoData) resolve(ref string) (string, bool) {
	for _, p := range []struct {
		prefix string
		refs   map[string]string
	}{{"refs/heads/", d.branches}, {"heads/", d.branches}, {"refs/tags/", d.tags}, {"tags/", d.tags}} {
		if name, ok := strings.CutPrefix(ref, p.prefix); ok {
			sha, found := p.refs[name]
			return sha, found
		}
	}
	if sha, ok := d.branches[ref]; ok {
		return sha, true
	}
	if sha, ok := d.tags[ref]; ok {
		return sha, true
	}
	if len(ref) < MinSHAPrefix || len(ref) > 40 || strings.Trim(strings.ToLower(ref), "0123456789abcdef") != "" {
		return "", false
	}
	prefix := strings.ToLower(ref)
	if _, ok := d.commits[prefix]; ok {
		return prefix, true
	}
	found := ""
	for sha := range d.commits {
		if strings.HasPrefix(sha, prefix) {
			if found != "" {
				return "", false // ambiguous
			}
			found = sha
		}
	}
	return found, found != ""
}

func isSHA(s string) bool {
	return len(s) == 40 && strings.Trim(s, "0123456789abcdef") == ""
}

// AddRepo adds a repository to the organization, validated as New validates Options.Repos.
func (s *Server) AddRepo(name string, r Repo) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.repos.add(name, r, s.opts.Now())
}

// AddCommit adds (or replaces) a commit of repo, as after a push; SetBranch then moves a branch to it.
func (s *Server) AddCommit(repo, sha string, c Commit) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, err := s.repoLocked(repo)
	if err != nil {
		return err
	}
	return d.addCommit(sha, c, s.opts.Now())
}

// SetBranch creates or moves a branch of repo to sha, a commit of the repository.
func (s *Server) SetBranch(repo, branch, sha string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, err := s.repoLocked(repo)
	if err != nil {
		return err
	}
	return d.setRef("branch", d.branches, branch, sha)
}

// SetTag creates or moves a tag of repo to sha, a commit of the repository.
func (s *Server) SetTag(repo, tag, sha string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, err := s.repoLocked(repo)
	if err != nil {
		return err
	}
	return d.setRef("tag", d.tags, tag, sha)
}

// repoLocked finds a repository by its case-insensitive name; s.mu must be held.
func (s *Server) repoLocked(name string) (*repoData, error) {
	d, ok := s.repos.repos[strings.ToLower(name)]
	if !ok {
		return nil, fmt.Errorf("githubtest: no repository %q", name)
	}
	return d, nil
}

// InjectRepoNext makes the next n requests to endpoint (AnyRepoEndpoint: to any repository endpoint), those
// past the authentication and repository checks, answer with f instead of being processed. Faults queue up in
// the order they were injected; a request takes the first that matches its endpoint.
func (s *Server) InjectRepoNext(n int, endpoint RepoEndpoint, f Fault) {
	if n <= 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.repos.faults = append(s.repos.faults, repoFault{endpoint: endpoint, pending: pending{fault: f, left: n}})
}

// popRepoFaultLocked takes the first fault for endpoint, if any; s.mu must be held.
func (s *Server) popRepoFaultLocked(endpoint RepoEndpoint) (Fault, bool) {
	q := s.repos.faults
	for i := range q {
		if q[i].endpoint != AnyRepoEndpoint && q[i].endpoint != endpoint {
			continue
		}
		f := q[i].fault
		if q[i].left--; q[i].left == 0 {
			s.repos.faults = slices.Delete(q, i, i+1)
		}
		return f, true
	}
	return Fault{}, false
}

// RepoStats returns the request counts of the repository endpoints.
func (s *Server) RepoStats() RepoStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := RepoStats{Requests: maps.Clone(s.repos.stats.Requests), Statuses: map[RepoEndpoint]map[int]int{}}
	for ep, m := range s.repos.stats.Statuses {
		out.Statuses[ep] = maps.Clone(m)
	}
	return out
}

// repoOp is one endpoint on a path: how it is counted, documented and served.
type repoOp struct {
	endpoint RepoEndpoint
	docs     string
	// accepts reports whether the Accept header is acceptable; default acceptsGitHubJSON.
	accepts func(accept []string) bool
	// serve answers under s.mu, into a recorder.
	serve func(w http.ResponseWriter, r *http.Request, c *repoCall)
}

// repoCall is what serve gets: the checked request.
type repoCall struct {
	repo  *repoData
	body  []byte
	actor string // login of the authenticated user
	now   time.Time
}

// routeRepos registers the repository endpoints on mux. Each path dispatches on the method itself: GitHub
// answers 404 Not Found (not 405) to a method a path does not have.
func (s *Server) routeRepos(mux *http.ServeMux) {
	p := s.opts.PathPrefix + "/repos/{owner}/{repo}"
	s.handleRepo(mux, p+"/deployments", map[string]repoOp{
		http.MethodGet:  {endpoint: EndpointListDeployments, docs: listDeploymentsDocs, serve: s.serveListDeployments},
		http.MethodPost: {endpoint: EndpointCreateDeployment, docs: createDeploymentDocs, serve: s.serveCreateDeployment},
	})
	s.handleRepo(mux, p+"/deployments/{deployment_id}", map[string]repoOp{
		http.MethodGet: {endpoint: EndpointGetDeployment, docs: getDeploymentDocs, serve: s.serveGetDeployment},
	})
	s.handleRepo(mux, p+"/deployments/{deployment_id}/statuses", map[string]repoOp{
		http.MethodGet:  {endpoint: EndpointListDeploymentStatuses, docs: listStatusesDocs, serve: s.serveListStatuses},
		http.MethodPost: {endpoint: EndpointCreateDeploymentStatus, docs: createStatusDocs, serve: s.serveCreateStatus},
	})
	s.handleRepo(mux, p+"/deployments/{deployment_id}/statuses/{status_id}", map[string]repoOp{
		http.MethodGet: {endpoint: EndpointGetDeploymentStatus, docs: getStatusDocs, serve: s.serveGetStatus},
	})
	s.handleRepo(mux, p+"/commits/{ref...}", map[string]repoOp{
		http.MethodGet: {endpoint: EndpointGetCommit, docs: getCommitDocs, accepts: acceptsCommit, serve: s.serveGetCommit},
	})
}

func (s *Server) handleRepo(mux *http.ServeMux, pattern string, ops map[string]repoOp) {
	mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		method := r.Method
		if method == http.MethodHead {
			method = http.MethodGet
		}
		op, ok := ops[method]
		if !ok {
			writeError(w, http.StatusNotFound, "Not Found", "https://docs.github.com/rest")
			return
		}
		s.serveRepo(w, r, op)
	})
}

// serveRepo runs the checks every repository endpoint shares, then op.serve; it counts the request and its
// answer and wakes the waiters.
func (s *Server) serveRepo(w http.ResponseWriter, r *http.Request, op repoOp) {
	rec := &statusRecorder{ResponseWriter: w}
	s.mu.Lock()
	s.repos.stats.Requests[op.endpoint]++
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		if rec.status != 0 {
			m := s.repos.stats.Statuses[op.endpoint]
			if m == nil {
				m = map[int]int{}
				s.repos.stats.Statuses[op.endpoint] = m
			}
			m[rec.status]++
		}
		s.notifyLocked()
		s.mu.Unlock()
	}()

	// Read the (bounded) body first: only then does the server notice a client that gives up during a delay.
	body, bodyErr := io.ReadAll(http.MaxBytesReader(rec, r.Body, s.opts.MaxBodyBytes))
	accepts := op.accepts
	if accepts == nil {
		accepts = acceptsGitHubJSON
	}
	switch {
	case r.Header.Get("User-Agent") == "":
		writeError(rec, http.StatusForbidden, "Request forbidden by administrative rules. Please make sure your request has a User-Agent header.",
			"https://docs.github.com/rest/using-the-rest-api/getting-started-with-the-rest-api#user-agent")
		return
	case !accepts(r.Header.Values("Accept")):
		writeError(rec, http.StatusUnsupportedMediaType, fmt.Sprintf("Unsupported 'Accept' header: %q. Must accept '%s'.", r.Header.Get("Accept"), MediaType),
			"https://docs.github.com/rest/using-the-rest-api/getting-started-with-the-rest-api#accept")
		return
	case r.Header.Get("X-GitHub-Api-Version") != APIVersion:
		writeError(rec, http.StatusBadRequest, fmt.Sprintf("API version %q is not supported; send X-GitHub-Api-Version: %s.", r.Header.Get("X-GitHub-Api-Version"), APIVersion),
			"https://docs.github.com/rest/about-the-rest-api/api-versions")
		return
	}
	if ok, msg := s.authenticate(r); !ok {
		writeError(rec, http.StatusUnauthorized, msg, "https://docs.github.com/rest")
		return
	}
	s.mu.Lock()
	repo := s.repos.repos[strings.ToLower(r.PathValue("repo"))]
	actor := s.actorLocked(r)
	s.mu.Unlock()
	if !strings.EqualFold(r.PathValue("owner"), s.opts.Org) || repo == nil {
		writeError(rec, http.StatusNotFound, "Not Found", op.docs)
		return
	}
	s.mu.Lock()
	f, injected := s.popRepoFaultLocked(op.endpoint)
	s.mu.Unlock()
	if injected && (!serveFault(rec, r, f) || f.Status != 0) {
		return
	}
	now := s.opts.Now()
	setRateLimitHeaders(rec.Header(), now)
	if bodyErr != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(bodyErr, &tooLarge) {
			writeError(rec, http.StatusRequestEntityTooLarge, "Payload Too Large", op.docs)
		} else {
			writeError(rec, http.StatusBadRequest, "Problems reading the request body", op.docs)
		}
		return
	}
	// serve decides under s.mu; the answer goes out once the lock is released.
	buf := httptest.NewRecorder()
	s.mu.Lock()
	op.serve(buf, r, &repoCall{repo: repo, body: body, actor: actor, now: now})
	s.mu.Unlock()
	maps.Copy(rec.Header(), buf.Header())
	rec.WriteHeader(buf.Code)
	_, _ = rec.Write(buf.Body.Bytes())
}

// actorLocked returns the login of the authenticated request's user; s.mu must be held.
func (s *Server) actorLocked(r *http.Request) string {
	_, cred, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	if _, issued := s.tokens[strings.TrimSpace(cred)]; issued {
		return AppLogin
	}
	return UserLogin
}

// setRateLimitHeaders sets the routine rate limit headers of an authenticated request.
func setRateLimitHeaders(h http.Header, now time.Time) {
	h.Set("X-Ratelimit-Limit", "5000")
	h.Set("X-Ratelimit-Remaining", "4999")
	h.Set("X-Ratelimit-Used", "1")
	h.Set("X-Ratelimit-Reset", strconv.FormatInt(now.Add(time.Hour).Unix(), 10))
	h.Set("X-Ratelimit-Resource", "core")
}

// apiBase is the API root URLs in bodies start with.
func (s *Server) apiBase() string { return strings.TrimSuffix(s.URL(), "/") }

// repoURL is the API URL of a repository.
func (s *Server) repoURL(d *repoData) string {
	return s.apiBase() + "/repos/" + s.opts.Org + "/" + d.name
}

// userBody is components/schemas/simple-user, the part a client may read.
type userBody struct {
	Login     string `json:"login"`
	ID        int64  `json:"id"`
	NodeID    string `json:"node_id"`
	URL       string `json:"url"`
	HTMLURL   string `json:"html_url"`
	Type      string `json:"type"`
	SiteAdmin bool   `json:"site_admin"`
}

// appBody is components/schemas/integration, the part a client may read.
type appBody struct {
	ID      int64  `json:"id"`
	Slug    string `json:"slug"`
	NodeID  string `json:"node_id"`
	Name    string `json:"name"`
	HTMLURL string `json:"html_url"`
}

func (s *Server) user(login string) userBody {
	u := userBody{Login: login, ID: 2, Type: "User", URL: s.apiBase() + "/users/" + login, HTMLURL: "https://github.com/" + login}
	if login == AppLogin {
		u.ID, u.Type, u.HTMLURL = 3, "Bot", "https://github.com/apps/"+strings.TrimSuffix(login, "[bot]")
	}
	u.NodeID = nodeID("U_", u.ID)
	return u
}

// viaApp is performed_via_github_app: the App, when an installation token did it.
func (s *Server) viaApp(login string) *appBody {
	if login != AppLogin || s.opts.App == nil {
		return nil
	}
	slug := strings.TrimSuffix(AppLogin, "[bot]")
	return &appBody{ID: s.opts.App.AppID, Slug: slug, NodeID: nodeID("A_", s.opts.App.AppID), Name: slug, HTMLURL: "https://github.com/apps/" + slug}
}

// nodeID makes a GraphQL global ID shaped like GitHub's: a type prefix and an opaque base64 part.
func nodeID(prefix string, id int64) string {
	return prefix + "kwDO" + base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(id, 10)))
}

// Pagination (https://docs.github.com/rest/using-the-rest-api/using-pagination-in-the-rest-api).
const (
	defaultPerPage = 30
	maxPerPage     = 100
)

// paginate returns the page of items the request asks for and sets the Link header.
func paginate[T any](s *Server, w http.ResponseWriter, r *http.Request, items []T) []T {
	q := r.URL.Query()
	perPage := defaultPerPage
	if n, err := strconv.Atoi(q.Get("per_page")); err == nil && n > 0 {
		perPage = min(n, maxPerPage)
	}
	page := 1
	if n, err := strconv.Atoi(q.Get("page")); err == nil && n > 0 {
		page = n
	}
	last := max(1, (len(items)+perPage-1)/perPage)
	link := func(p int, rel string) string {
		v := url.Values{}
		maps.Copy(v, q)
		v.Set("page", strconv.Itoa(p))
		v.Set("per_page", strconv.Itoa(perPage))
		return fmt.Sprintf("<%s%s?%s>; rel=%q", s.srv.URL, r.URL.Path, v.Encode(), rel)
	}
	var links []string
	if page < last {
		links = append(links, link(page+1, "next"), link(last, "last"))
	}
	if page > 1 {
		links = append(links, link(1, "first"), link(min(page-1, last), "prev"))
	}
	if len(links) > 0 {
		w.Header().Set("Link", strings.Join(links, ", "))
	}
	if page > last {
		return []T{}
	}
	start := (page - 1) * perPage
	return items[start:min(start+perPage, len(items))]
}

// decodeObject parses a body that must be one JSON object; anything else is errBadJSON (400).
func decodeObject(body []byte) (map[string]json.RawMessage, error) {
	var raw map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&raw); err != nil || raw == nil || dec.More() {
		return nil, errBadJSON
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errBadJSON
	}
	return raw, nil
}

// checkTypes checks the documented properties of raw against their JSON types ("string", or alternatives
// such as "object|string"); like GitHub, it ignores properties the schema does not name.
func checkTypes(raw map[string]json.RawMessage, types map[string]string) []string {
	var v []string
	for _, k := range slices.Sorted(maps.Keys(raw)) {
		typ, known := types[k]
		if !known {
			continue
		}
		alts := strings.Split(typ, "|")
		if slices.Contains(alts, jsonType(raw[k])) {
			continue
		}
		names := make([]string, len(alts))
		for i, a := range alts {
			names[i] = article(a) + " " + a
			if a == "null" {
				names[i] = a
			}
		}
		v = append(v, fmt.Sprintf("For 'properties/%s', %s is not %s.", k, truncate(string(raw[k])), strings.Join(names, " or ")))
	}
	return v
}

// writeInvalid answers 422 with the "Invalid request." body of schema violations.
func writeInvalid(w http.ResponseWriter, docs string, violations []string) {
	writeError(w, http.StatusUnprocessableEntity, "Invalid request.\n\n"+strings.Join(violations, "\n"), docs, violations...)
}
