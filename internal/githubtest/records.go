package githubtest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/deployment-tracker/deployment-tracker/internal/record"
)

// The request body schema of POST /orgs/{org}/artifacts/metadata/deployment-record, transcribed from the
// OpenAPI description (github/rest-api-description, descriptions/api.github.com/api.github.com.2022-11-28.yaml,
// operationId orgs/create-artifact-deployment-record) and https://docs.github.com/rest/orgs/artifact-metadata.
var (
	digestPattern     = regexp.MustCompile(`^sha256:[a-f0-9]{64}$`)
	repositoryPattern = regexp.MustCompile(`^[A-Za-z0-9.\-_]+$`)
	statuses          = []string{"deployed", "decommissioned"}
	runtimeRisks      = []string{"critical-resource", "internet-exposed", "lateral-movement", "sensitive-data"}
	requiredFields    = []string{"name", "digest", "status", "logical_environment", "deployment_name"}
	// fieldTypes are the documented properties and their JSON types.
	fieldTypes = map[string]string{
		"name":                 "string",
		"digest":               "string",
		"version":              "string",
		"status":               "string",
		"logical_environment":  "string",
		"physical_environment": "string",
		"cluster":              "string",
		"deployment_name":      "string",
		"tags":                 "object",
		"runtime_risks":        "array",
		"github_repository":    "string",
		"return_records":       "boolean",
	}
)

// Documented limits of the request body.
const (
	maxNameLength        = 256
	digestLength         = 71
	maxVersionLength     = 100
	maxEnvironmentLength = 128 // logical_environment, physical_environment, cluster
	maxDeploymentName    = 256
	maxTags              = 5
	maxRuntimeRisks      = 4
	maxRepositoryLength  = 100
)

// recordRequest is the request body, decoded independently of record.Record.
type recordRequest struct {
	Name                string            `json:"name"`
	Digest              string            `json:"digest"`
	Version             *string           `json:"version"`
	Status              string            `json:"status"`
	LogicalEnvironment  string            `json:"logical_environment"`
	PhysicalEnvironment *string           `json:"physical_environment"`
	Cluster             *string           `json:"cluster"`
	DeploymentName      string            `json:"deployment_name"`
	Tags                map[string]string `json:"tags"`
	RuntimeRisks        []string          `json:"runtime_risks"`
	GitHubRepository    *string           `json:"github_repository"`
	ReturnRecords       *bool             `json:"return_records"`
}

func (q *recordRequest) record() record.Record {
	deref := func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	}
	// An empty object or array means the same as an absent one, which is how record.Record says it.
	tags, risks := q.Tags, q.RuntimeRisks
	if len(tags) == 0 {
		tags = nil
	}
	if len(risks) == 0 {
		risks = nil
	}
	return record.Record{
		Name:                q.Name,
		Digest:              q.Digest,
		Version:             deref(q.Version),
		Status:              record.Status(q.Status),
		LogicalEnvironment:  q.LogicalEnvironment,
		PhysicalEnvironment: deref(q.PhysicalEnvironment),
		Cluster:             deref(q.Cluster),
		DeploymentName:      q.DeploymentName,
		Tags:                tags,
		RuntimeRisks:        risks,
		GitHubRepository:    deref(q.GitHubRepository),
	}
}

// deploymentRecord is components/schemas/artifact-deployment-record of the response.
type deploymentRecord struct {
	ID                  int64             `json:"id"`
	Digest              string            `json:"digest"`
	LogicalEnvironment  string            `json:"logical_environment"`
	PhysicalEnvironment string            `json:"physical_environment"`
	Cluster             string            `json:"cluster"`
	DeploymentName      string            `json:"deployment_name"`
	Tags                map[string]string `json:"tags"`
	RuntimeRisks        []string          `json:"runtime_risks"`
	CreatedAt           string            `json:"created_at"`
	UpdatedAt           string            `json:"updated_at"`
	AttestationID       *int64            `json:"attestation_id"`
}

// recordResponse is the documented 200 body.
type recordResponse struct {
	TotalCount        int                `json:"total_count"`
	DeploymentRecords []deploymentRecord `json:"deployment_records,omitempty"`
}

// errBadJSON is a body that is not one JSON object: GitHub answers 400 "Problems parsing JSON".
var errBadJSON = errors.New("Problems parsing JSON")

// decodeRecord parses and validates a request body. A non-nil error means 400; violations mean 422.
func decodeRecord(body []byte) (req recordRequest, violations []string, err error) {
	var raw map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&raw); err != nil || raw == nil || dec.More() {
		return req, nil, errBadJSON
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return req, nil, errBadJSON
	}

	for _, k := range slices.Sorted(mapKeys(raw)) {
		typ, known := fieldTypes[k]
		if !known {
			// Stricter than GitHub, which ignores unknown properties: a typo in a field name must fail tests.
			violations = append(violations, fmt.Sprintf("For 'properties/%s', the property is not in the schema.", k))
			continue
		}
		if got := jsonType(raw[k]); got != typ {
			violations = append(violations, fmt.Sprintf("For 'properties/%s', %s is not %s %s.", k, raw[k], article(typ), typ))
		}
	}
	for _, k := range requiredFields {
		if _, ok := raw[k]; !ok {
			violations = append(violations, fmt.Sprintf("%q wasn't supplied.", k))
		}
	}
	if tags, ok := raw["tags"]; ok && jsonType(tags) == "object" {
		var m map[string]json.RawMessage
		if err := json.Unmarshal(tags, &m); err == nil {
			for _, k := range slices.Sorted(mapKeys(m)) {
				if jsonType(m[k]) != "string" {
					violations = append(violations, fmt.Sprintf("For 'properties/tags', the value of %q, %s, is not a string.", k, m[k]))
				}
			}
		}
	}
	if risks, ok := raw["runtime_risks"]; ok && jsonType(risks) == "array" {
		var items []json.RawMessage
		if err := json.Unmarshal(risks, &items); err == nil {
			for i, it := range items {
				if jsonType(it) != "string" {
					violations = append(violations, fmt.Sprintf("For 'properties/runtime_risks', item %d, %s, is not a string.", i, it))
				}
			}
		}
	}
	if len(violations) > 0 {
		return req, violations, nil
	}

	strict := json.NewDecoder(bytes.NewReader(body))
	strict.DisallowUnknownFields()
	if err := strict.Decode(&req); err != nil {
		return req, []string{"Invalid request body: " + err.Error()}, nil
	}
	return req, validate(&req, raw), nil
}

// validate applies the documented constraints of each property; raw tells which properties were sent.
func validate(q *recordRequest, raw map[string]json.RawMessage) []string {
	var v []string
	bad := func(field, format string, a ...any) {
		v = append(v, fmt.Sprintf("For 'properties/%s', ", field)+fmt.Sprintf(format, a...)+".")
	}
	length := func(field, s string, minLen, maxLen int) {
		// JSON Schema lengths count characters (code points), not bytes.
		n := utf8.RuneCountInString(s)
		if n < minLen {
			bad(field, "%q is too short (minimum is %d characters)", s, minLen)
		}
		if maxLen > 0 && n > maxLen {
			bad(field, "%q is too long (maximum is %d characters)", truncate(s), maxLen)
		}
	}
	present := func(k string) bool { _, ok := raw[k]; return ok }

	if present("name") {
		length("name", q.Name, 1, maxNameLength)
	}
	if present("digest") {
		length("digest", q.Digest, digestLength, digestLength)
		if !digestPattern.MatchString(q.Digest) {
			bad("digest", "%q does not match %q", truncate(q.Digest), digestPattern.String())
		}
	}
	if q.Version != nil {
		length("version", *q.Version, 1, maxVersionLength)
	}
	if present("status") && !slices.Contains(statuses, q.Status) {
		bad("status", "%q is not a member of %q", truncate(q.Status), statuses)
	}
	if present("logical_environment") {
		length("logical_environment", q.LogicalEnvironment, 1, maxEnvironmentLength)
	}
	if q.PhysicalEnvironment != nil {
		length("physical_environment", *q.PhysicalEnvironment, 0, maxEnvironmentLength)
	}
	if q.Cluster != nil {
		length("cluster", *q.Cluster, 0, maxEnvironmentLength)
	}
	if present("deployment_name") {
		length("deployment_name", q.DeploymentName, 0, maxDeploymentName)
	}
	if len(q.Tags) > maxTags {
		bad("tags", "%d properties is more than the maximum of %d", len(q.Tags), maxTags)
	}
	if len(q.RuntimeRisks) > maxRuntimeRisks {
		bad("runtime_risks", "%d items is more than the maximum of %d", len(q.RuntimeRisks), maxRuntimeRisks)
	}
	seen := map[string]bool{}
	for _, r := range q.RuntimeRisks {
		if !slices.Contains(runtimeRisks, r) {
			bad("runtime_risks", "%q is not a member of %q", truncate(r), runtimeRisks)
		}
		if seen[r] {
			bad("runtime_risks", "%q appears more than once; items must be unique", truncate(r))
		}
		seen[r] = true
	}
	if q.GitHubRepository != nil {
		length("github_repository", *q.GitHubRepository, 1, maxRepositoryLength)
		if !repositoryPattern.MatchString(*q.GitHubRepository) {
			bad("github_repository", "%q does not match %q", truncate(*q.GitHubRepository), repositoryPattern.String())
		}
	}
	return v
}

// handleRecord serves POST /orgs/{org}/artifacts/metadata/deployment-record.
func (s *Server) handleRecord(w http.ResponseWriter, r *http.Request) {
	rec := &statusRecorder{ResponseWriter: w}
	s.mu.Lock()
	s.calls++
	delay := s.delay
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.finished++
		if rec.status != 0 {
			s.statuses[rec.status]++
		}
		s.notifyLocked()
		s.mu.Unlock()
	}()
	accepted, ok := s.serveRecord(rec, r, delay)
	if ok && s.opts.OnAccept != nil {
		s.opts.OnAccept(cloneRecord(accepted))
	}
}

// serveRecord answers one record request; it returns the record and true when it was accepted.
func (s *Server) serveRecord(w http.ResponseWriter, r *http.Request, delay time.Duration) (record.Record, bool) {
	// Read the (bounded) body first: only then does the server notice a client that gives up during a delay.
	body, bodyErr := io.ReadAll(http.MaxBytesReader(w, r.Body, s.opts.MaxBodyBytes))
	if !sleep(r.Context(), delay) {
		return record.Record{}, false
	}
	if r.Method != http.MethodPost {
		writeError(w, http.StatusNotFound, "Not Found", docsURL)
		return record.Record{}, false
	}
	if r.Header.Get("User-Agent") == "" {
		writeError(w, http.StatusForbidden, "Request forbidden by administrative rules. Please make sure your request has a User-Agent header.",
			"https://docs.github.com/rest/using-the-rest-api/getting-started-with-the-rest-api#user-agent")
		return record.Record{}, false
	}
	if !acceptsGitHubJSON(r.Header.Values("Accept")) {
		writeError(w, http.StatusUnsupportedMediaType, fmt.Sprintf("Unsupported 'Accept' header: %q. Must accept '%s'.", r.Header.Get("Accept"), MediaType),
			"https://docs.github.com/rest/using-the-rest-api/getting-started-with-the-rest-api#accept")
		return record.Record{}, false
	}
	if v := r.Header.Get("X-GitHub-Api-Version"); v != APIVersion {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("API version %q is not supported; send X-GitHub-Api-Version: %s.", v, APIVersion),
			"https://docs.github.com/rest/about-the-rest-api/api-versions")
		return record.Record{}, false
	}
	if ok, msg := s.authenticate(r); !ok {
		writeError(w, http.StatusUnauthorized, msg, "https://docs.github.com/rest")
		return record.Record{}, false
	}
	if !strings.EqualFold(r.PathValue("org"), s.opts.Org) {
		writeError(w, http.StatusNotFound, "Not Found", docsURL)
		return record.Record{}, false
	}
	s.mu.Lock()
	f, injected := popLocked(&s.faults)
	s.mu.Unlock()
	if injected {
		// An injected failure carries only its own headers, so that a secondary rate limit can come without any.
		if !serveFault(w, r, f) || f.Status != 0 {
			return record.Record{}, false
		}
	}
	// The routine rate limit headers of an authenticated request: a client must not mistake them for a limit.
	now := s.opts.Now()
	w.Header().Set("X-Ratelimit-Limit", "5000")
	w.Header().Set("X-Ratelimit-Remaining", "4999")
	w.Header().Set("X-Ratelimit-Used", "1")
	w.Header().Set("X-Ratelimit-Reset", strconv.FormatInt(now.Add(time.Hour).Unix(), 10))
	w.Header().Set("X-Ratelimit-Resource", "core")

	if bodyErr != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(bodyErr, &tooLarge) {
			writeError(w, http.StatusRequestEntityTooLarge, "Payload Too Large", docsURL)
		} else {
			writeError(w, http.StatusBadRequest, "Problems reading the request body", docsURL)
		}
		return record.Record{}, false
	}
	req, violations, err := decodeRecord(body)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error(), docsURL)
		return record.Record{}, false
	}
	if len(violations) > 0 {
		writeError(w, http.StatusUnprocessableEntity, "Invalid request.\n\n"+strings.Join(violations, "\n"), docsURL, violations...)
		return record.Record{}, false
	}

	rec := req.record()
	s.mu.Lock()
	for _, a := range s.unknown {
		if a.matches(rec.Name, rec.Digest) {
			s.mu.Unlock()
			writeError(w, http.StatusNotFound, UnknownArtifactMessage, docsURL)
			return record.Record{}, false
		}
	}
	st := s.storeLocked(rec, now)
	resp := recordResponse{TotalCount: 1}
	if req.ReturnRecords == nil || *req.ReturnRecords {
		resp.DeploymentRecords = []deploymentRecord{{
			ID:                  st.id,
			Digest:              rec.Digest,
			LogicalEnvironment:  rec.LogicalEnvironment,
			PhysicalEnvironment: rec.PhysicalEnvironment,
			Cluster:             rec.Cluster,
			DeploymentName:      rec.DeploymentName,
			Tags:                cloneRecord(rec).Tags,
			RuntimeRisks:        cloneRecord(rec).RuntimeRisks,
			CreatedAt:           st.created.UTC().Format(time.RFC3339),
			UpdatedAt:           st.updated.UTC().Format(time.RFC3339),
		}}
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, resp)
	return rec, true
}

// jsonType names the JSON type of a raw value as JSON Schema does.
func jsonType(v json.RawMessage) string {
	v = bytes.TrimSpace(v)
	if len(v) == 0 {
		return ""
	}
	switch v[0] {
	case '"':
		return "string"
	case '{':
		return "object"
	case '[':
		return "array"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	default:
		return "number"
	}
}

func article(typ string) string {
	if strings.IndexByte("aeiou", typ[0]) >= 0 {
		return "an"
	}
	return "a"
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// truncate keeps error messages bounded whatever the client sent.
func truncate(s string) string {
	const limit = 80
	if utf8.RuneCountInString(s) <= limit {
		return s
	}
	return string([]rune(s)[:limit]) + "…"
}
