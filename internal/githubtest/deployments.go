package githubtest

// The deployment endpoints:
//
//   - POST /repos/{owner}/{repo}/deployments (https://docs.github.com/rest/deployments/deployments#create-a-deployment)
//   - GET  /repos/{owner}/{repo}/deployments (https://docs.github.com/rest/deployments/deployments#list-deployments)
//   - GET  /repos/{owner}/{repo}/deployments/{deployment_id} (https://docs.github.com/rest/deployments/deployments#get-a-deployment)
//   - POST /repos/{owner}/{repo}/deployments/{deployment_id}/statuses
//     (https://docs.github.com/rest/deployments/statuses#create-a-deployment-status)
//   - GET  /repos/{owner}/{repo}/deployments/{deployment_id}/statuses
//     (https://docs.github.com/rest/deployments/statuses#list-deployment-statuses)
//   - GET  /repos/{owner}/{repo}/deployments/{deployment_id}/statuses/{status_id}
//     (https://docs.github.com/rest/deployments/statuses#get-a-deployment-status)
//
// What the documentation says, and what the fake assumes where it says nothing (each assumption is marked):
//
//   - A deployment is {ref (required), task (default "deploy"), auto_merge (default true), required_contexts,
//     payload (an object, or a string of JSON), environment (default "production"), description (default ""),
//     transient_environment (default false), production_environment (default: environment is "production")}.
//     Properties the schema does not name are ignored, as GitHub ignores them; a documented property of the
//     wrong type is 422 "Invalid request.". A ref that does not resolve is 422 "No ref found for: <ref>".
//   - Assumed: a description is at most 140 characters (the limit GitHub documents for statuses), an
//     environment is not empty.
//   - auto_merge is recorded, never acted on (the fake has no default branch to merge); required_contexts is
//     recorded and always satisfied (the fake has no commit statuses).
//   - A string payload that holds a JSON object is answered as that object, as the documentation's example
//     shows; any other string is answered as the string; no payload is {}.
//   - A status is {state (required: error, failure, inactive, in_progress, queued, pending or success),
//     target_url, log_url, description (at most 140 characters), environment (changes the deployment's),
//     environment_url, auto_inactive (default true)}. "Setting log_url will automatically set target_url to
//     the same value."
//   - auto_inactive: a success status adds an inactive status to every prior (older) non-transient,
//     non-production deployment of the repository with the same environment whose latest status is success
//     ("An inactive status is only added to deployments that had a success state").
//   - Lists are newest first. Creating a status updates the deployment's updated_at.

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"
)

const (
	createDeploymentDocs = "https://docs.github.com/rest/deployments/deployments#create-a-deployment"
	listDeploymentsDocs  = "https://docs.github.com/rest/deployments/deployments#list-deployments"
	getDeploymentDocs    = "https://docs.github.com/rest/deployments/deployments#get-a-deployment"
	createStatusDocs     = "https://docs.github.com/rest/deployments/statuses#create-a-deployment-status"
	listStatusesDocs     = "https://docs.github.com/rest/deployments/statuses#list-deployment-statuses"
	getStatusDocs        = "https://docs.github.com/rest/deployments/statuses#get-a-deployment-status"
)

// maxDescription is the longest description of a status (documented) and of a deployment (assumed).
const maxDescription = 140

// deploymentStates are the states of a deployment status.
var deploymentStates = []string{"error", "failure", "inactive", "in_progress", "queued", "pending", "success"}

// Deployment is a deployment the server created, as a test sees it.
type Deployment struct {
	ID     int64
	NodeID string
	// Repo is the repository's name as configured.
	Repo string
	// Ref is the ref as the client sent it; SHA is the commit it resolved to.
	Ref, SHA string
	Task     string
	// Payload is the payload as the server answers it: a JSON object, or a JSON string.
	Payload json.RawMessage
	// OriginalEnvironment is the environment the deployment was created for; Environment is the current one,
	// which a status may have changed.
	OriginalEnvironment, Environment string
	Description                      string
	AutoMerge                        bool
	// RequiredContexts is nil when the client did not send it, empty when it sent [].
	RequiredContexts      []string
	TransientEnvironment  bool
	ProductionEnvironment bool
	// Creator is the login of the user that created it (UserLogin or AppLogin).
	Creator              string
	CreatedAt, UpdatedAt time.Time
	// Statuses are the deployment's statuses, oldest first.
	Statuses []DeploymentStatus
}

// DeploymentStatus is a status of a Deployment.
type DeploymentStatus struct {
	ID     int64
	NodeID string
	State  string
	// Description, TargetURL, LogURL and EnvironmentURL are as answered (target_url follows log_url).
	Description, TargetURL, LogURL, EnvironmentURL string
	// Environment is the deployment's environment once the status was applied.
	Environment string
	// AutoInactive is the auto_inactive the status was created with (default true).
	AutoInactive bool
	// Automatic marks an inactive status that the server added because of a later success (auto_inactive).
	Automatic bool
	// Creator is the login of the user that created the status.
	Creator              string
	CreatedAt, UpdatedAt time.Time
}

func (d *Deployment) clone() Deployment {
	out := *d
	out.Payload = slices.Clone(d.Payload)
	if d.RequiredContexts != nil {
		out.RequiredContexts = slices.Clone(d.RequiredContexts)
	}
	out.Statuses = slices.Clone(d.Statuses)
	return out
}

// Deployments returns the deployments of repo (case-insensitive), oldest first, each with its statuses; nil for
// an unknown repository.
func (s *Server) Deployments(repo string) []Deployment {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, err := s.repoLocked(repo)
	if err != nil {
		return nil
	}
	out := make([]Deployment, len(d.deployments))
	for i, dep := range d.deployments {
		out[i] = dep.clone()
	}
	return out
}

// WaitForDeployments blocks until cond, called with Deployments(repo), returns true, ctx is done or the server
// is closed. cond is evaluated at once and again after every answer of a repository endpoint.
func (s *Server) WaitForDeployments(ctx context.Context, repo string, cond func([]Deployment) bool) error {
	for {
		s.mu.Lock()
		ch := s.changed
		s.mu.Unlock()
		if cond(s.Deployments(repo)) {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("githubtest: wait for deployments of %s: %w", repo, ctx.Err())
		case <-s.closed:
			return errors.New("githubtest: wait for deployments: server closed")
		}
	}
}

// deploymentFields are the documented properties of a deployment request and their JSON types.
var deploymentFields = map[string]string{
	"ref":                    "string",
	"task":                   "string",
	"auto_merge":             "boolean",
	"required_contexts":      "array",
	"payload":                "object|string",
	"environment":            "string",
	"description":            "string|null",
	"transient_environment":  "boolean",
	"production_environment": "boolean",
}

// deploymentRequest is a decoded deployment request.
type deploymentRequest struct {
	Ref                   string          `json:"ref"`
	Task                  *string         `json:"task"`
	AutoMerge             *bool           `json:"auto_merge"`
	RequiredContexts      *[]string       `json:"required_contexts"`
	Payload               json.RawMessage `json:"-"`
	Environment           *string         `json:"environment"`
	Description           *string         `json:"description"`
	TransientEnvironment  *bool           `json:"transient_environment"`
	ProductionEnvironment *bool           `json:"production_environment"`
}

// decodeDeployment parses and validates a deployment request. A non-nil error means 400; violations mean 422.
func decodeDeployment(body []byte) (req deploymentRequest, violations []string, err error) {
	raw, err := decodeObject(body)
	if err != nil {
		return req, nil, err
	}
	violations = checkTypes(raw, deploymentFields)
	if _, ok := raw["ref"]; !ok {
		violations = append(violations, `"ref" wasn't supplied.`)
	}
	if rc, ok := raw["required_contexts"]; ok && jsonType(rc) == "array" {
		var items []json.RawMessage
		if err := json.Unmarshal(rc, &items); err == nil {
			for i, it := range items {
				if jsonType(it) != "string" {
					violations = append(violations, fmt.Sprintf("For 'properties/required_contexts', item %d, %s, is not a string.", i, truncate(string(it))))
				}
			}
		}
	}
	if len(violations) > 0 {
		return req, violations, nil
	}
	// The types are right, so decoding the documented properties cannot fail.
	known := map[string]json.RawMessage{}
	for k := range deploymentFields {
		if v, ok := raw[k]; ok && k != "payload" {
			known[k] = v
		}
	}
	b, _ := json.Marshal(known)
	if err := json.Unmarshal(b, &req); err != nil {
		return req, []string{"Invalid request body: " + err.Error()}, nil
	}
	req.Payload = payloadOf(raw["payload"])
	if req.Environment != nil && *req.Environment == "" {
		violations = append(violations, `For 'properties/environment', "" is too short (minimum is 1 character).`)
	}
	if req.Description != nil {
		violations = append(violations, tooLong("description", *req.Description, maxDescription)...)
	}
	return req, violations, nil
}

// payloadOf is the payload as answered: an object as is, a string holding a JSON object as that object, any
// other string as the string, none as {}.
func payloadOf(raw json.RawMessage) json.RawMessage {
	switch jsonType(raw) {
	case "object":
		return compact(raw)
	case "string":
		var s string
		if err := json.Unmarshal(raw, &s); err == nil {
			if inner := json.RawMessage(s); json.Valid(inner) && jsonType(inner) == "object" {
				return compact(inner)
			}
		}
		return compact(raw)
	}
	return json.RawMessage("{}")
}

func compact(raw json.RawMessage) json.RawMessage {
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return slices.Clone(raw)
	}
	return buf.Bytes()
}

func tooLong(field, s string, maxLen int) []string {
	if utf8.RuneCountInString(s) <= maxLen {
		return nil
	}
	return []string{fmt.Sprintf("For 'properties/%s', %q is too long (maximum is %d characters).", field, truncate(s), maxLen)}
}

// deploymentBody is components/schemas/deployment.
type deploymentBody struct {
	URL                   string          `json:"url"`
	ID                    int64           `json:"id"`
	NodeID                string          `json:"node_id"`
	SHA                   string          `json:"sha"`
	Ref                   string          `json:"ref"`
	Task                  string          `json:"task"`
	Payload               json.RawMessage `json:"payload"`
	OriginalEnvironment   string          `json:"original_environment"`
	Environment           string          `json:"environment"`
	Description           string          `json:"description"`
	Creator               userBody        `json:"creator"`
	CreatedAt             string          `json:"created_at"`
	UpdatedAt             string          `json:"updated_at"`
	StatusesURL           string          `json:"statuses_url"`
	RepositoryURL         string          `json:"repository_url"`
	TransientEnvironment  bool            `json:"transient_environment"`
	ProductionEnvironment bool            `json:"production_environment"`
	PerformedViaGitHubApp *appBody        `json:"performed_via_github_app"`
}

// statusBody is components/schemas/deployment-status.
type statusBody struct {
	URL                   string   `json:"url"`
	ID                    int64    `json:"id"`
	NodeID                string   `json:"node_id"`
	State                 string   `json:"state"`
	Creator               userBody `json:"creator"`
	Description           string   `json:"description"`
	Environment           string   `json:"environment"`
	TargetURL             string   `json:"target_url"`
	CreatedAt             string   `json:"created_at"`
	UpdatedAt             string   `json:"updated_at"`
	DeploymentURL         string   `json:"deployment_url"`
	RepositoryURL         string   `json:"repository_url"`
	EnvironmentURL        string   `json:"environment_url"`
	LogURL                string   `json:"log_url"`
	PerformedViaGitHubApp *appBody `json:"performed_via_github_app"`
}

func timestamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func (s *Server) deploymentURL(repo *repoData, d *Deployment) string {
	return s.repoURL(repo) + "/deployments/" + strconv.FormatInt(d.ID, 10)
}

func (s *Server) deploymentBody(repo *repoData, d *Deployment) deploymentBody {
	u := s.deploymentURL(repo, d)
	return deploymentBody{
		URL:                   u,
		ID:                    d.ID,
		NodeID:                d.NodeID,
		SHA:                   d.SHA,
		Ref:                   d.Ref,
		Task:                  d.Task,
		Payload:               d.Payload,
		OriginalEnvironment:   d.OriginalEnvironment,
		Environment:           d.Environment,
		Description:           d.Description,
		Creator:               s.user(d.Creator),
		CreatedAt:             timestamp(d.CreatedAt),
		UpdatedAt:             timestamp(d.UpdatedAt),
		StatusesURL:           u + "/statuses",
		RepositoryURL:         s.repoURL(repo),
		TransientEnvironment:  d.TransientEnvironment,
		ProductionEnvironment: d.ProductionEnvironment,
		PerformedViaGitHubApp: s.viaApp(d.Creator),
	}
}

func (s *Server) statusBody(repo *repoData, d *Deployment, st *DeploymentStatus) statusBody {
	du := s.deploymentURL(repo, d)
	return statusBody{
		URL:                   du + "/statuses/" + strconv.FormatInt(st.ID, 10),
		ID:                    st.ID,
		NodeID:                st.NodeID,
		State:                 st.State,
		Creator:               s.user(st.Creator),
		Description:           st.Description,
		Environment:           st.Environment,
		TargetURL:             st.TargetURL,
		CreatedAt:             timestamp(st.CreatedAt),
		UpdatedAt:             timestamp(st.UpdatedAt),
		DeploymentURL:         du,
		RepositoryURL:         s.repoURL(repo),
		EnvironmentURL:        st.EnvironmentURL,
		LogURL:                st.LogURL,
		PerformedViaGitHubApp: s.viaApp(st.Creator),
	}
}

// serveCreateDeployment answers POST /repos/{owner}/{repo}/deployments; s.mu is held.
func (s *Server) serveCreateDeployment(w http.ResponseWriter, _ *http.Request, c *repoCall) {
	req, violations, err := decodeDeployment(c.body)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error(), createDeploymentDocs)
		return
	}
	if len(violations) > 0 {
		writeInvalid(w, createDeploymentDocs, violations)
		return
	}
	sha, ok := c.repo.resolve(req.Ref)
	if !ok {
		writeError(w, http.StatusUnprocessableEntity, "No ref found for: "+req.Ref, createDeploymentDocs)
		return
	}
	s.repos.nextDeploymentID++
	d := &Deployment{
		ID:                  s.repos.nextDeploymentID,
		Repo:                c.repo.name,
		Ref:                 req.Ref,
		SHA:                 sha,
		Task:                "deploy",
		Payload:             req.Payload,
		OriginalEnvironment: "production",
		AutoMerge:           true,
		Creator:             c.actor,
		CreatedAt:           c.now,
		UpdatedAt:           c.now,
	}
	d.NodeID = nodeID("DE_", d.ID)
	if req.Task != nil {
		d.Task = *req.Task
	}
	if req.AutoMerge != nil {
		d.AutoMerge = *req.AutoMerge
	}
	if req.RequiredContexts != nil {
		d.RequiredContexts = append([]string{}, *req.RequiredContexts...)
	}
	if req.Environment != nil {
		d.OriginalEnvironment = *req.Environment
	}
	d.Environment = d.OriginalEnvironment
	if req.Description != nil {
		d.Description = *req.Description
	}
	if req.TransientEnvironment != nil {
		d.TransientEnvironment = *req.TransientEnvironment
	}
	d.ProductionEnvironment = d.Environment == "production"
	if req.ProductionEnvironment != nil {
		d.ProductionEnvironment = *req.ProductionEnvironment
	}
	c.repo.deployments = append(c.repo.deployments, d)
	w.Header().Set("Location", s.deploymentURL(c.repo, d))
	writeJSON(w, http.StatusCreated, s.deploymentBody(c.repo, d))
}

// serveListDeployments answers GET /repos/{owner}/{repo}/deployments; s.mu is held.
func (s *Server) serveListDeployments(w http.ResponseWriter, r *http.Request, c *repoCall) {
	q := r.URL.Query()
	match := func(param, v string) bool { return !q.Has(param) || q.Get(param) == v }
	found := []deploymentBody{}
	for _, d := range slices.Backward(c.repo.deployments) {
		if match("sha", d.SHA) && match("ref", d.Ref) && match("task", d.Task) && match("environment", d.Environment) {
			found = append(found, s.deploymentBody(c.repo, d))
		}
	}
	writeJSON(w, http.StatusOK, paginate(s, w, r, found))
}

// deploymentLocked finds the deployment of the path in repo; s.mu must be held.
func deploymentLocked(r *http.Request, repo *repoData) *Deployment {
	id, err := strconv.ParseInt(r.PathValue("deployment_id"), 10, 64)
	if err != nil {
		return nil
	}
	// IDs grow with every deployment, so each repository's are sorted.
	i, found := slices.BinarySearchFunc(repo.deployments, id, func(d *Deployment, id int64) int { return cmp.Compare(d.ID, id) })
	if !found {
		return nil
	}
	return repo.deployments[i]
}

// serveGetDeployment answers GET /repos/{owner}/{repo}/deployments/{deployment_id}; s.mu is held.
func (s *Server) serveGetDeployment(w http.ResponseWriter, r *http.Request, c *repoCall) {
	d := deploymentLocked(r, c.repo)
	if d == nil {
		writeError(w, http.StatusNotFound, "Not Found", getDeploymentDocs)
		return
	}
	writeJSON(w, http.StatusOK, s.deploymentBody(c.repo, d))
}

// statusFields are the documented properties of a deployment status request and their JSON types.
var statusFields = map[string]string{
	"state":           "string",
	"target_url":      "string",
	"log_url":         "string",
	"description":     "string",
	"environment":     "string",
	"environment_url": "string",
	"auto_inactive":   "boolean",
}

type statusRequest struct {
	State          string  `json:"state"`
	TargetURL      string  `json:"target_url"`
	LogURL         string  `json:"log_url"`
	Description    string  `json:"description"`
	Environment    *string `json:"environment"`
	EnvironmentURL string  `json:"environment_url"`
	AutoInactive   *bool   `json:"auto_inactive"`
}

// decodeStatus parses and validates a deployment status request. A non-nil error means 400; violations mean
// 422.
func decodeStatus(body []byte) (req statusRequest, violations []string, err error) {
	raw, err := decodeObject(body)
	if err != nil {
		return req, nil, err
	}
	violations = checkTypes(raw, statusFields)
	if _, ok := raw["state"]; !ok {
		violations = append(violations, `"state" wasn't supplied.`)
	}
	if len(violations) > 0 {
		return req, violations, nil
	}
	known := map[string]json.RawMessage{}
	for k := range statusFields {
		if v, ok := raw[k]; ok {
			known[k] = v
		}
	}
	b, _ := json.Marshal(known)
	if err := json.Unmarshal(b, &req); err != nil {
		return req, []string{"Invalid request body: " + err.Error()}, nil
	}
	if !slices.Contains(deploymentStates, req.State) {
		violations = append(violations, fmt.Sprintf("For 'properties/state', %q is not a member of %q.", truncate(req.State), deploymentStates))
	}
	violations = append(violations, tooLong("description", req.Description, maxDescription)...)
	if req.Environment != nil && *req.Environment == "" {
		violations = append(violations, `For 'properties/environment', "" is too short (minimum is 1 character).`)
	}
	return req, violations, nil
}

// serveCreateStatus answers POST /repos/{owner}/{repo}/deployments/{deployment_id}/statuses; s.mu is held.
func (s *Server) serveCreateStatus(w http.ResponseWriter, r *http.Request, c *repoCall) {
	d := deploymentLocked(r, c.repo)
	if d == nil {
		writeError(w, http.StatusNotFound, "Not Found", createStatusDocs)
		return
	}
	req, violations, err := decodeStatus(c.body)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error(), createStatusDocs)
		return
	}
	if len(violations) > 0 {
		writeInvalid(w, createStatusDocs, violations)
		return
	}
	if req.Environment != nil {
		d.Environment = *req.Environment
	}
	st := DeploymentStatus{
		State:          req.State,
		Description:    req.Description,
		TargetURL:      req.TargetURL,
		LogURL:         req.LogURL,
		EnvironmentURL: req.EnvironmentURL,
		AutoInactive:   req.AutoInactive == nil || *req.AutoInactive,
		Creator:        c.actor,
	}
	if st.LogURL != "" {
		st.TargetURL = st.LogURL // "Setting log_url will automatically set target_url to the same value."
	}
	created := s.addStatusLocked(d, st, c.now)
	if st.State == "success" && st.AutoInactive {
		for _, prior := range c.repo.deployments {
			if prior.ID >= d.ID {
				break
			}
			n := len(prior.Statuses)
			if prior.TransientEnvironment || prior.ProductionEnvironment || prior.Environment != d.Environment || n == 0 || prior.Statuses[n-1].State != "success" {
				continue
			}
			s.addStatusLocked(prior, DeploymentStatus{State: "inactive", Automatic: true, AutoInactive: true, Creator: c.actor}, c.now)
		}
	}
	w.Header().Set("Location", s.statusBody(c.repo, d, &created).URL)
	writeJSON(w, http.StatusCreated, s.statusBody(c.repo, d, &created))
}

// addStatusLocked appends st to d, numbering and dating it; s.mu must be held.
func (s *Server) addStatusLocked(d *Deployment, st DeploymentStatus, now time.Time) DeploymentStatus {
	s.repos.nextStatusID++
	st.ID = s.repos.nextStatusID
	st.NodeID = nodeID("DES_", st.ID)
	st.Environment = d.Environment
	st.CreatedAt, st.UpdatedAt = now, now
	d.Statuses = append(d.Statuses, st)
	d.UpdatedAt = now
	return st
}

// serveListStatuses answers GET /repos/{owner}/{repo}/deployments/{deployment_id}/statuses; s.mu is held.
func (s *Server) serveListStatuses(w http.ResponseWriter, r *http.Request, c *repoCall) {
	d := deploymentLocked(r, c.repo)
	if d == nil {
		writeError(w, http.StatusNotFound, "Not Found", listStatusesDocs)
		return
	}
	out := make([]statusBody, 0, len(d.Statuses))
	for i := len(d.Statuses) - 1; i >= 0; i-- {
		out = append(out, s.statusBody(c.repo, d, &d.Statuses[i]))
	}
	writeJSON(w, http.StatusOK, paginate(s, w, r, out))
}

// serveGetStatus answers GET /repos/{owner}/{repo}/deployments/{deployment_id}/statuses/{status_id}; s.mu is
// held.
func (s *Server) serveGetStatus(w http.ResponseWriter, r *http.Request, c *repoCall) {
	d := deploymentLocked(r, c.repo)
	id, err := strconv.ParseInt(r.PathValue("status_id"), 10, 64)
	if d != nil && err == nil {
		for i := range d.Statuses {
			if d.Statuses[i].ID == id {
				writeJSON(w, http.StatusOK, s.statusBody(c.repo, d, &d.Statuses[i]))
				return
			}
		}
	}
	writeError(w, http.StatusNotFound, "Not Found", getStatusDocs)
}
