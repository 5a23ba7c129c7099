package githubtest

// The cluster endpoints set many deployment records of one cluster in one request:
//
//   - POST /orgs/{org}/artifacts/metadata/deployment-record/cluster/{cluster}
//     (https://docs.github.com/rest/orgs/artifact-metadata#set-cluster-deployment-records)
//   - POST /orgs/{org}/artifacts/metadata/deployment-record/cluster/{cluster}/jobs
//     (https://docs.github.com/rest/orgs/artifact-metadata#create-a-cluster-deployment-records-job)
//   - GET  /orgs/{org}/artifacts/metadata/deployment-record/cluster/{cluster}/jobs/{job_id}
//     (https://docs.github.com/rest/orgs/artifact-metadata#get-cluster-deployment-records-job-status)
//
// What the documentation says, and what the fake assumes where it says nothing (each assumption is marked):
//
//   - The body is {logical_environment (required), physical_environment, deployments (required),
//     partial_success (default false), return_records (default true)}; the job variant documents only the first
//     three, so the fake refuses the other two there (it refuses every undocumented property, as the record
//     endpoint does). Each deployment is {name, digest, version, status (default deployed), deployment_name,
//     github_repository, tags, runtime_risks}, validated with the record endpoint's own rules; deployment_name
//     must be unique in the array. The cluster comes from the path, the environments from the body.
//   - Records are upserted by logical environment, physical environment, cluster and deployment name; records
//     of the cluster that the request does not name are left alone (the documentation describes an upsert, not a
//     replacement), so a client may split a cluster into several requests.
//   - partial_success: "deployments associated with repositories that cannot be resolved or written to by the
//     actor are skipped and reported in the errors array"; without it such a request fails as a whole. The
//     fake reports deployments of an UnknownArtifact that way, and also (an assumption) deployments that break
//     the schema. Its answer is then 207 Multi-Status (an assumption: the documentation lists 200, 403 and 404)
//     with {total_count, deployment_records, errors}; each error echoes the deployment with the request's
//     logical_environment, physical_environment and cluster, plus a "cause", the shape github/deployment-tracker
//     decodes. Without partial_success the request fails: 422 for schema violations, 404
//     UnknownArtifactMessage for unknown artifacts.
//   - Limits (an assumption, the documentation states none): at most MaxClusterRecords deployments per
//     synchronous request and MaxClusterJobRecords per job; more is 422.
//   - A job validates synchronously and answers 202 {job_id, errors}, the errors ({name, cause}) being the
//     deployments it rejected; the others are applied by the job. GET .../jobs/{job_id} answers {job_id, status
//     (pending, processing, completed, failed), started_at, total_count, errors}. While a job of a cluster is
//     unfinished, creating another for that cluster answers 409. The fake applies a job's records when it is
//     polled (after SetJobPolls polls answered "processing"), not in the background: a job nobody polls never
//     finishes.
//
// The checks before the body (method, User-Agent, Accept, API version, credentials, organization), the injected
// faults (one queue shared with the record endpoint, in arrival order) and SetDelay apply to these endpoints as to
// the record endpoint. Accepted records join Accepted, Current, OnAccept and WaitFor like single posts; Calls,
// StatusCounts and WaitForCalls still count the record endpoint only, ClusterStats counts these.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/deployment-tracker/deployment-tracker/internal/record"
)

// Limits of the cluster endpoints (assumed: the documentation does not state them).
const (
	// MaxClusterRecords is the most deployments one synchronous cluster request may carry.
	MaxClusterRecords = 1000
	// MaxClusterJobRecords is the most deployments one cluster job may carry.
	MaxClusterJobRecords = 5000
	// DefaultMaxClusterBodyBytes bounds cluster request bodies when Options.MaxBodyBytes is smaller: a full job
	// is a few megabytes.
	DefaultMaxClusterBodyBytes = 16 << 20
)

// The statuses of a cluster job.
const (
	JobPending    = "pending"
	JobProcessing = "processing"
	JobCompleted  = "completed"
	JobFailed     = "failed"
)

// JobFailedMessage is the cause a job programmed with FailJobs reports.
const JobFailedMessage = "the job failed while processing deployment records"

const (
	clusterDocsURL   = "https://docs.github.com/rest/orgs/artifact-metadata#set-cluster-deployment-records"
	jobDocsURL       = "https://docs.github.com/rest/orgs/artifact-metadata#create-a-cluster-deployment-records-job"
	jobStatusDocsURL = "https://docs.github.com/rest/orgs/artifact-metadata#get-cluster-deployment-records-job-status"
)

// ClusterStats counts the requests to the cluster endpoints.
type ClusterStats struct {
	Sets     int         // POST .../cluster/{cluster}
	Jobs     int         // POST .../cluster/{cluster}/jobs
	Polls    int         // GET .../cluster/{cluster}/jobs/{job_id}
	Statuses map[int]int // responses sent by the three, per HTTP status
}

// clusterState is the state of the cluster endpoints; Server.mu guards it.
type clusterState struct {
	stats     ClusterStats
	jobs      map[int64]*clusterJob
	nextJobID int64
	running   map[string]int64 // cluster → its unfinished job
	jobPolls  int              // polls a job answers "processing" before it completes
	failJobs  int              // how many of the next jobs fail
}

type clusterJob struct {
	id      int64
	cluster string
	recs    []record.Record
	status  string
	polls   int
	fail    bool
	started time.Time
	total   int
}

// ClusterStats returns the request counts of the cluster endpoints.
func (s *Server) ClusterStats() ClusterStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.cluster.stats
	st.Statuses = maps.Clone(st.Statuses)
	if st.Statuses == nil {
		st.Statuses = map[int]int{}
	}
	return st
}

// SetJobPolls makes every job created from now on answer "processing" to its first n polls; the next poll
// completes it. The default, 0, completes a job at its first poll.
func (s *Server) SetJobPolls(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cluster.jobPolls = max(n, 0)
}

// FailJobs makes the next n jobs end "failed" without applying their records.
func (s *Server) FailJobs(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cluster.failJobs = max(n, 0)
}

// clusterRequest is a decoded cluster request body.
type clusterRequest struct {
	logical, physical string
	hasPhysical       bool
	partial           bool
	returnRecords     bool
	entries           []clusterEntry
}

// clusterEntry is one element of deployments.
type clusterEntry struct {
	raw        map[string]json.RawMessage // nil when the element is not an object
	rec        record.Record
	violations []string
}

// The documented properties of the cluster request bodies and their JSON types.
var (
	clusterFields = map[string]string{
		"logical_environment":  "string",
		"physical_environment": "string",
		"deployments":          "array",
		"partial_success":      "boolean",
		"return_records":       "boolean",
	}
	jobFields = map[string]string{
		"logical_environment":  "string",
		"physical_environment": "string",
		"deployments":          "array",
	}
	clusterRequired = []string{"logical_environment", "deployments"}
	// entryFields are the properties of a deployments element: those of a record, without the environments.
	entryFields = map[string]bool{
		"name": true, "digest": true, "version": true, "status": true, "deployment_name": true,
		"tags": true, "runtime_risks": true, "github_repository": true,
	}
)

// decodeCluster parses and validates a cluster request body for cluster. A non-nil error means 400; violations
// of the request as a whole mean 422; violations of single deployments are in their entries.
func decodeCluster(body []byte, cluster string, job bool) (req clusterRequest, violations []string, err error) {
	var raw map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&raw); err != nil || raw == nil || dec.More() {
		return req, nil, errBadJSON
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return req, nil, errBadJSON
	}
	fields := clusterFields
	if job {
		fields = jobFields
	}
	for _, k := range slices.Sorted(mapKeys(raw)) {
		typ, known := fields[k]
		if !known {
			violations = append(violations, fmt.Sprintf("For 'properties/%s', the property is not in the schema.", k))
			continue
		}
		if got := jsonType(raw[k]); got != typ {
			violations = append(violations, fmt.Sprintf("For 'properties/%s', %s is not %s %s.", k, truncate(string(raw[k])), article(typ), typ))
		}
	}
	for _, k := range clusterRequired {
		if _, ok := raw[k]; !ok {
			violations = append(violations, fmt.Sprintf("%q wasn't supplied.", k))
		}
	}
	if len(violations) > 0 {
		return req, violations, nil
	}

	// The environments and the cluster follow the record endpoint's rules for the same properties.
	var probe recordRequest
	_ = json.Unmarshal(raw["logical_environment"], &probe.LogicalEnvironment)
	req.logical = probe.LogicalEnvironment
	if v, ok := raw["physical_environment"]; ok {
		_ = json.Unmarshal(v, &req.physical)
		req.hasPhysical = true
		probe.PhysicalEnvironment = &req.physical
	}
	probe.Cluster = &cluster
	violations = validate(&probe, map[string]json.RawMessage{"logical_environment": raw["logical_environment"]})
	req.returnRecords = true
	if v, ok := raw["partial_success"]; ok {
		_ = json.Unmarshal(v, &req.partial)
	}
	if v, ok := raw["return_records"]; ok {
		_ = json.Unmarshal(v, &req.returnRecords)
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw["deployments"], &items); err != nil {
		return req, nil, errBadJSON
	}
	limit := MaxClusterRecords
	if job {
		limit = MaxClusterJobRecords
	}
	if len(items) > limit {
		violations = append(violations, fmt.Sprintf("For 'properties/deployments', %d items is more than the maximum of %d.", len(items), limit))
	}
	if len(violations) > 0 {
		return req, violations, nil
	}

	clusterJSON, _ := json.Marshal(cluster)
	seen := make(map[string]int, len(items))
	req.entries = make([]clusterEntry, len(items))
	for i, it := range items {
		e := &req.entries[i]
		bad := func(msg string) { e.violations = append(e.violations, fmt.Sprintf("deployments[%d]: %s", i, msg)) }
		if jsonType(it) != "object" {
			bad(fmt.Sprintf("%s is not an object.", truncate(string(it))))
			continue
		}
		if err := json.Unmarshal(it, &e.raw); err != nil {
			bad("Problems parsing JSON.")
			continue
		}
		// A deployment is validated as the record it becomes, by the record endpoint's own code.
		merged := make(map[string]json.RawMessage, len(e.raw)+4)
		for _, k := range slices.Sorted(mapKeys(e.raw)) {
			if !entryFields[k] {
				bad(fmt.Sprintf("For 'properties/%s', the property is not in the schema.", k))
				continue
			}
			merged[k] = e.raw[k]
		}
		if _, ok := merged["status"]; !ok {
			merged["status"] = json.RawMessage(`"deployed"`) // the documented default
		}
		merged["logical_environment"] = raw["logical_environment"]
		if v, ok := raw["physical_environment"]; ok {
			merged["physical_environment"] = v
		}
		merged["cluster"] = clusterJSON
		body, _ := json.Marshal(merged)
		q, v, err := decodeRecord(body)
		if err != nil {
			bad(err.Error())
			continue
		}
		for _, msg := range v {
			bad(msg)
		}
		if len(e.violations) > 0 {
			continue
		}
		if j, dup := seen[q.DeploymentName]; dup {
			bad(fmt.Sprintf("For 'properties/deployment_name', %q is also the deployment_name of deployments[%d]; it must be unique.", truncate(q.DeploymentName), j))
			continue
		}
		seen[q.DeploymentName] = i
		e.rec = q.record()
	}
	return req, nil, nil
}

// clusterRecordError is an element of the errors array of the synchronous endpoint: the deployment as sent,
// with the request's environments and cluster, and the cause.
type clusterRecordError map[string]json.RawMessage

func newClusterRecordError(req *clusterRequest, cluster string, e *clusterEntry, cause string) clusterRecordError {
	out := clusterRecordError{}
	for k, v := range e.raw {
		out[k] = v
	}
	str := func(s string) json.RawMessage { b, _ := json.Marshal(s); return b }
	out["logical_environment"] = str(req.logical)
	out["physical_environment"] = str(req.physical)
	out["cluster"] = str(cluster)
	out["cause"] = str(cause)
	return out
}

// clusterResponse is the body of the synchronous endpoint's 200 and 207.
type clusterResponse struct {
	TotalCount        int                  `json:"total_count"`
	DeploymentRecords []deploymentRecord   `json:"deployment_records,omitempty"`
	Errors            []clusterRecordError `json:"errors,omitempty"`
}

// jobError is an element of the errors of a job: the artifact name and the cause, as github/deployment-tracker
// decodes them.
type jobError struct {
	Name  string `json:"name,omitempty"`
	Cause string `json:"cause"`
}

// jobCreated is the 202 body of the job endpoint.
type jobCreated struct {
	JobID  int64      `json:"job_id"`
	Errors []jobError `json:"errors,omitempty"`
}

// jobStatus is the body of the job status endpoint.
type jobStatus struct {
	JobID      int64      `json:"job_id"`
	Status     string     `json:"status"`
	StartedAt  string     `json:"started_at,omitempty"`
	TotalCount *int       `json:"total_count,omitempty"`
	Errors     []jobError `json:"errors,omitempty"`
}

// handleClusterSet serves POST /orgs/{org}/artifacts/metadata/deployment-record/cluster/{cluster}.
func (s *Server) handleClusterSet(w http.ResponseWriter, r *http.Request) {
	s.serveCluster(w, r, func(s *ClusterStats) { s.Sets++ }, func(w http.ResponseWriter, r *http.Request, body []byte) []record.Record {
		return s.serveClusterSet(w, r, body)
	})
}

// handleClusterJobs serves POST /orgs/{org}/artifacts/metadata/deployment-record/cluster/{cluster}/jobs.
func (s *Server) handleClusterJobs(w http.ResponseWriter, r *http.Request) {
	s.serveCluster(w, r, func(s *ClusterStats) { s.Jobs++ }, func(w http.ResponseWriter, r *http.Request, body []byte) []record.Record {
		s.serveJobCreate(w, r, body)
		return nil
	})
}

// handleClusterJob serves GET /orgs/{org}/artifacts/metadata/deployment-record/cluster/{cluster}/jobs/{job_id}.
func (s *Server) handleClusterJob(w http.ResponseWriter, r *http.Request) {
	s.serveCluster(w, r, func(s *ClusterStats) { s.Polls++ }, func(w http.ResponseWriter, r *http.Request, _ []byte) []record.Record {
		return s.serveJobStatus(w, r)
	})
}

// serveCluster runs the checks every cluster endpoint shares, then serve; it counts the request and its answer,
// calls OnAccept with the records serve accepted and wakes the waiters.
func (s *Server) serveCluster(w http.ResponseWriter, r *http.Request, count func(*ClusterStats), serve func(http.ResponseWriter, *http.Request, []byte) []record.Record) {
	rec := &statusRecorder{ResponseWriter: w}
	s.mu.Lock()
	count(&s.cluster.stats)
	delay := s.delay
	s.mu.Unlock()
	var accepted []record.Record
	defer func() {
		s.mu.Lock()
		if rec.status != 0 {
			if s.cluster.stats.Statuses == nil {
				s.cluster.stats.Statuses = map[int]int{}
			}
			s.cluster.stats.Statuses[rec.status]++
		}
		s.notifyLocked()
		s.mu.Unlock()
	}()

	method, docs := http.MethodPost, clusterDocsURL
	if r.PathValue("job_id") != "" {
		method, docs = http.MethodGet, jobStatusDocsURL
	} else if strings.HasSuffix(r.URL.Path, "/jobs") {
		docs = jobDocsURL
	}
	limit := max(s.opts.MaxBodyBytes, DefaultMaxClusterBodyBytes)
	body, bodyErr := io.ReadAll(http.MaxBytesReader(rec, r.Body, limit))
	if !sleep(r.Context(), delay) || !s.checkRequest(rec, r, method, docs) {
		return
	}
	s.mu.Lock()
	f, injected := popLocked(&s.faults)
	s.mu.Unlock()
	if injected && (!serveFault(rec, r, f) || f.Status != 0) {
		return
	}
	rec.Header().Set("X-Ratelimit-Limit", "5000")
	rec.Header().Set("X-Ratelimit-Remaining", "4999")
	rec.Header().Set("X-Ratelimit-Used", "1")
	rec.Header().Set("X-Ratelimit-Reset", strconv.FormatInt(s.opts.Now().Add(time.Hour).Unix(), 10))
	rec.Header().Set("X-Ratelimit-Resource", "core")
	if bodyErr != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(bodyErr, &tooLarge) {
			writeError(rec, http.StatusRequestEntityTooLarge, "Payload Too Large", docs)
		} else {
			writeError(rec, http.StatusBadRequest, "Problems reading the request body", docs)
		}
		return
	}
	// serve decides under s.mu; the answer goes out once the lock is released, as the record endpoint's does.
	buf := httptest.NewRecorder()
	accepted = serve(buf, r, body)
	maps.Copy(rec.Header(), buf.Header())
	rec.WriteHeader(buf.Code)
	_, _ = rec.Write(buf.Body.Bytes())
	if s.opts.OnAccept != nil {
		for _, a := range accepted {
			s.opts.OnAccept(cloneRecord(a))
		}
	}
}

// checkRequest applies the record endpoint's checks before the body; it answers and reports false on failure.
func (s *Server) checkRequest(w http.ResponseWriter, r *http.Request, method, docs string) bool {
	switch {
	case r.Method != method:
		writeError(w, http.StatusNotFound, "Not Found", docs)
	case r.Header.Get("User-Agent") == "":
		writeError(w, http.StatusForbidden, "Request forbidden by administrative rules. Please make sure your request has a User-Agent header.",
			"https://docs.github.com/rest/using-the-rest-api/getting-started-with-the-rest-api#user-agent")
	case !acceptsGitHubJSON(r.Header.Values("Accept")):
		writeError(w, http.StatusUnsupportedMediaType, fmt.Sprintf("Unsupported 'Accept' header: %q. Must accept '%s'.", r.Header.Get("Accept"), MediaType),
			"https://docs.github.com/rest/using-the-rest-api/getting-started-with-the-rest-api#accept")
	case r.Header.Get("X-GitHub-Api-Version") != APIVersion:
		writeError(w, http.StatusBadRequest, fmt.Sprintf("API version %q is not supported; send X-GitHub-Api-Version: %s.", r.Header.Get("X-GitHub-Api-Version"), APIVersion),
			"https://docs.github.com/rest/about-the-rest-api/api-versions")
	default:
		if ok, msg := s.authenticate(r); !ok {
			writeError(w, http.StatusUnauthorized, msg, "https://docs.github.com/rest")
			return false
		}
		if !strings.EqualFold(r.PathValue("org"), s.opts.Org) {
			writeError(w, http.StatusNotFound, "Not Found", docs)
			return false
		}
		return true
	}
	return false
}

// serveClusterSet answers the synchronous endpoint and returns the records it accepted.
func (s *Server) serveClusterSet(w http.ResponseWriter, r *http.Request, body []byte) []record.Record {
	cluster := r.PathValue("cluster")
	req, violations, err := decodeCluster(body, cluster, false)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error(), clusterDocsURL)
		return nil
	}
	if len(violations) > 0 {
		writeError(w, http.StatusUnprocessableEntity, "Invalid request.\n\n"+strings.Join(violations, "\n"), clusterDocsURL, violations...)
		return nil
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	causes := s.entryCausesLocked(req.entries)
	if !req.partial {
		var all []string
		unknown := false
		for i, e := range req.entries {
			all = append(all, e.violations...)
			unknown = unknown || (len(e.violations) == 0 && causes[i] != "")
		}
		if len(all) > 0 {
			writeError(w, http.StatusUnprocessableEntity, "Invalid request.\n\n"+strings.Join(all, "\n"), clusterDocsURL, all...)
			return nil
		}
		if unknown {
			writeError(w, http.StatusNotFound, UnknownArtifactMessage, clusterDocsURL)
			return nil
		}
	}
	now := s.opts.Now()
	resp := clusterResponse{}
	var accepted []record.Record
	for i := range req.entries {
		e := &req.entries[i]
		if cause := causes[i]; cause != "" {
			resp.Errors = append(resp.Errors, newClusterRecordError(&req, cluster, e, cause))
			continue
		}
		st := s.storeLocked(e.rec, now)
		accepted = append(accepted, e.rec)
		if req.returnRecords {
			resp.DeploymentRecords = append(resp.DeploymentRecords, deploymentRecord{
				ID:                  st.id,
				Digest:              e.rec.Digest,
				LogicalEnvironment:  e.rec.LogicalEnvironment,
				PhysicalEnvironment: e.rec.PhysicalEnvironment,
				Cluster:             e.rec.Cluster,
				DeploymentName:      e.rec.DeploymentName,
				Tags:                cloneRecord(e.rec).Tags,
				RuntimeRisks:        cloneRecord(e.rec).RuntimeRisks,
				CreatedAt:           st.created.UTC().Format(time.RFC3339),
				UpdatedAt:           st.updated.UTC().Format(time.RFC3339),
			})
		}
	}
	resp.TotalCount = len(accepted)
	status := http.StatusOK
	if len(resp.Errors) > 0 {
		status = http.StatusMultiStatus
	}
	writeJSON(w, status, resp)
	return accepted
}

// entryCausesLocked returns why each entry fails, "" for none: its schema violations, or
// UnknownArtifactMessage. s.mu must be held.
func (s *Server) entryCausesLocked(entries []clusterEntry) []string {
	causes := make([]string, len(entries))
	for i := range entries {
		e := &entries[i]
		if len(e.violations) > 0 {
			causes[i] = "Invalid request. " + strings.Join(e.violations, " ")
			continue
		}
		for _, a := range s.unknown {
			if a.matches(e.rec.Name, e.rec.Digest) {
				causes[i] = UnknownArtifactMessage
				break
			}
		}
	}
	return causes
}

// storeLocked upserts rec and appends it to the log, as the record endpoint does. s.mu must be held.
func (s *Server) storeLocked(rec record.Record, now time.Time) *stored {
	st, ok := s.current[rec.Key()]
	if !ok {
		s.nextID++
		st = &stored{id: s.nextID, created: now}
		s.current[rec.Key()] = st
	}
	st.rec, st.updated = cloneRecord(rec), now
	s.accepted = append(s.accepted, cloneRecord(rec))
	return st
}

// serveJobCreate answers the job endpoint.
func (s *Server) serveJobCreate(w http.ResponseWriter, r *http.Request, body []byte) {
	cluster := r.PathValue("cluster")
	req, violations, err := decodeCluster(body, cluster, true)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error(), jobDocsURL)
		return
	}
	if len(violations) > 0 {
		writeError(w, http.StatusUnprocessableEntity, "Invalid request.\n\n"+strings.Join(violations, "\n"), jobDocsURL, violations...)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cs := &s.cluster
	if id, busy := cs.running[cluster]; busy {
		writeError(w, http.StatusConflict, fmt.Sprintf("A job (%d) is already in progress for this cluster.", id), jobDocsURL)
		return
	}
	causes := s.entryCausesLocked(req.entries)
	resp := jobCreated{}
	job := &clusterJob{cluster: cluster, status: JobPending}
	for i := range req.entries {
		e := &req.entries[i]
		if cause := causes[i]; cause != "" {
			var name string
			if v, ok := e.raw["name"]; ok {
				_ = json.Unmarshal(v, &name)
			}
			resp.Errors = append(resp.Errors, jobError{Name: name, Cause: cause})
			continue
		}
		job.recs = append(job.recs, e.rec)
	}
	if cs.jobs == nil {
		cs.jobs, cs.running = map[int64]*clusterJob{}, map[string]int64{}
	}
	cs.nextJobID++
	job.id = cs.nextJobID
	if cs.failJobs > 0 {
		cs.failJobs--
		job.fail = true
	}
	cs.jobs[job.id] = job
	cs.running[cluster] = job.id
	resp.JobID = job.id
	writeJSON(w, http.StatusAccepted, resp)
}

// serveJobStatus answers the job status endpoint, advancing the job; it returns the records the job applied.
func (s *Server) serveJobStatus(w http.ResponseWriter, r *http.Request) []record.Record {
	id, err := strconv.ParseInt(r.PathValue("job_id"), 10, 64)
	s.mu.Lock()
	defer s.mu.Unlock()
	cs := &s.cluster
	job := cs.jobs[id]
	if err != nil || job == nil || job.cluster != r.PathValue("cluster") {
		writeError(w, http.StatusNotFound, "Not Found", jobStatusDocsURL)
		return nil
	}
	now := s.opts.Now()
	var applied []record.Record
	if job.status == JobPending || job.status == JobProcessing {
		job.polls++
		if job.started.IsZero() {
			job.started = now
		}
		switch {
		case job.polls <= cs.jobPolls:
			job.status = JobProcessing
		case job.fail:
			job.status = JobFailed
			delete(cs.running, job.cluster)
		default:
			for _, rec := range job.recs {
				s.storeLocked(rec, now)
			}
			applied, job.total, job.status = job.recs, len(job.recs), JobCompleted
			delete(cs.running, job.cluster)
		}
	}
	resp := jobStatus{JobID: job.id, Status: job.status, StartedAt: job.started.UTC().Format(time.RFC3339)}
	switch job.status {
	case JobCompleted:
		total := job.total
		resp.TotalCount = &total
	case JobFailed:
		resp.Errors = []jobError{{Cause: JobFailedMessage}}
	}
	writeJSON(w, http.StatusOK, resp)
	return applied
}
