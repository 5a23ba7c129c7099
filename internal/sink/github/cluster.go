package github

// PostCluster uses GitHub's cluster endpoints, which set many deployment records of one cluster at once:
//
//   - POST {BaseURL}/orgs/{org}/artifacts/metadata/deployment-record/cluster/{cluster}
//     (https://docs.github.com/rest/orgs/artifact-metadata#set-cluster-deployment-records)
//   - POST .../cluster/{cluster}/jobs, then GET .../cluster/{cluster}/jobs/{job_id} until the job is done
//     (https://docs.github.com/rest/orgs/artifact-metadata#create-a-cluster-deployment-records-job and
//     #get-cluster-deployment-records-job-status)
//
// The body carries logical_environment, physical_environment and deployments ({name, digest, version, status,
// deployment_name, github_repository, tags, runtime_risks}); the cluster is in the path. The synchronous endpoint
// also takes partial_success (deployments that fail are skipped and reported in an errors array instead of
// failing the request) and return_records. What the documentation does not say, and this file assumes:
//
//   - Limits: at most MaxClusterRecords deployments per synchronous request and MaxClusterJobRecords per job.
//   - The endpoints upsert the records they name and leave the cluster's other records alone (the documentation
//     describes an upsert), so a cluster can be split into several requests.
//   - A partially successful answer is 200 or 207; each element of errors echoes the deployment (at least its
//     deployment_name, or its name) with a "cause", the shape github/deployment-tracker decodes. A job's errors
//     may carry only the artifact name: every record of that name then counts as failed, which is safe because
//     the caller posts failed records again one by one.
//   - A job answers 409 while another job of the cluster runs; its status is pending, processing, completed or
//     failed.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/deployment-tracker/deployment-tracker/internal/record"
	"github.com/deployment-tracker/deployment-tracker/internal/sink"
)

// Limits of the cluster endpoints (assumed: GitHub's documentation does not state them).
const (
	// MaxClusterRecords is the most records one synchronous cluster request carries.
	MaxClusterRecords = 1000
	// MaxClusterJobRecords is the most records one cluster job carries. Groups larger than this go through
	// jobs; smaller ones through at most MaxClusterJobRecords/MaxClusterRecords synchronous requests.
	MaxClusterJobRecords = 5000
	// MaxClusterResponseBytes bounds the successful answers of the cluster endpoints, which list failed records.
	MaxClusterResponseBytes = 8 << 20
)

// ErrNoCluster is the result of a record without a cluster: the cluster endpoints cannot carry it.
var ErrNoCluster = errors.New("record has no cluster")

// ErrDuplicateKey is the result of a record whose upsert key an earlier record of the same call has: one request
// must not name a deployment twice, and records of one key are delivered in order.
var ErrDuplicateKey = errors.New("another record of the call has the same key")

// clusterTuning holds the knobs of PostCluster; tests make the polls fast.
type clusterTuning struct {
	syncMax, jobMax int
	// pollFirst is the wait before the second poll of a job (the first is immediate); waits double up to pollMax.
	pollFirst, pollMax time.Duration
	// jobTimeout bounds the wait for one job.
	jobTimeout time.Duration
}

var defaultClusterTuning = clusterTuning{
	syncMax:    MaxClusterRecords,
	jobMax:     MaxClusterJobRecords,
	pollFirst:  time.Second,
	pollMax:    15 * time.Second,
	jobTimeout: 10 * time.Minute,
}

var _ sink.ClusterSink = (*Sink)(nil)

// PostCluster delivers recs through the cluster endpoints, as sink.ClusterSink describes. It groups the records
// by cluster and environments, in order of first appearance, and sends each group in chunks: synchronous
// requests of at most MaxClusterRecords records, with partial_success, for groups of up to
// MaxClusterJobRecords; jobs of at most MaxClusterJobRecords records, polled until done, for larger groups.
// Every request is sent once and bounded by Config.Timeout; waiting for a job is bounded by ctx and ten minutes.
//
// A record that failed alone gets an error classified like Post's (an unknown artifact is a *sink.NotFoundError,
// a refused one a *sink.PermanentError). The first bulk failure (a transport error, 5xx, rate limit, 4xx of the
// request, a failed job) stops the call: the records of that chunk, and of the chunks not sent, get results
// wrapping it, and it is returned. A 404 of a bulk request (GitHub Enterprise Server without the endpoint, or no
// record of the chunk resolvable) is a *sink.PermanentError, not a *sink.NotFoundError: it says nothing about
// any one artifact. A 409 (a job of the cluster is running) is retryable. Records without a cluster get
// ErrNoCluster, repeated keys ErrDuplicateKey; neither makes err non-nil.
func (s *Sink) PostCluster(ctx context.Context, recs []record.Record) (results []error, err error) {
	return s.postCluster(ctx, recs, defaultClusterTuning)
}

// clusterGroup is one cluster and pair of environments.
type clusterGroup struct {
	cluster, logical, physical string
}

// clusterChunk is the records (indexes into recs) of one request.
type clusterChunk struct {
	group clusterGroup
	idx   []int
	job   bool
}

func (s *Sink) postCluster(ctx context.Context, recs []record.Record, tune clusterTuning) ([]error, error) {
	results := make([]error, len(recs))
	var groups []clusterGroup
	members := map[clusterGroup][]int{}
	keys := map[record.Key]bool{}
	for i := range recs {
		r := &recs[i]
		if r.Cluster == "" {
			results[i] = fmt.Errorf("%s: %w", s.recordWhat(r), ErrNoCluster)
			continue
		}
		if keys[r.Key()] {
			results[i] = fmt.Errorf("%s: %w", s.recordWhat(r), ErrDuplicateKey)
			continue
		}
		keys[r.Key()] = true
		g := clusterGroup{cluster: r.Cluster, logical: r.LogicalEnvironment, physical: r.PhysicalEnvironment}
		if _, ok := members[g]; !ok {
			groups = append(groups, g)
		}
		members[g] = append(members[g], i)
	}

	var chunks []clusterChunk
	for _, g := range groups {
		idx := members[g]
		size, job := tune.syncMax, false
		if len(idx) > tune.jobMax {
			// Balanced jobs: 5,001 records make two jobs of about 2,500, not one of 5,000 and one of 1.
			n := (len(idx) + tune.jobMax - 1) / tune.jobMax
			size, job = (len(idx)+n-1)/n, true
		}
		for start := 0; start < len(idx); start += size {
			chunks = append(chunks, clusterChunk{group: g, idx: idx[start:min(start+size, len(idx))], job: job})
		}
	}

	var bulk error
	for n, c := range chunks {
		if bulk != nil {
			for _, i := range c.idx {
				results[i] = fmt.Errorf("%s: not sent after an earlier failure: %w", s.recordWhat(&recs[i]), bulk)
			}
			continue
		}
		var err error
		if c.job {
			err = s.clusterJob(ctx, c, recs, results, tune)
		} else {
			err = s.clusterSet(ctx, c, recs, results)
		}
		if err == nil {
			continue
		}
		kind := "request"
		if c.job {
			kind = "job"
		}
		bulk = fmt.Errorf("set %d deployment records of cluster %s in org %s (%s %d of %d): %w",
			len(c.idx), c.group.cluster, s.org, kind, n+1, len(chunks), err)
		for _, i := range c.idx {
			if results[i] == nil {
				results[i] = bulk
			}
		}
	}
	return results, bulk
}

// recordWhat names a record in errors.
func (s *Sink) recordWhat(r *record.Record) string {
	return fmt.Sprintf("set deployment record %s@%s of cluster %s in org %s", r.Name, r.Digest, r.Cluster, s.org)
}

// clusterBody is the request body of the cluster endpoints.
type clusterBody struct {
	LogicalEnvironment  string              `json:"logical_environment"`
	PhysicalEnvironment string              `json:"physical_environment,omitempty"`
	Deployments         []clusterDeployment `json:"deployments"`
	// PartialSuccess and ReturnRecords are documented for the synchronous endpoint only.
	PartialSuccess *bool `json:"partial_success,omitempty"`
	ReturnRecords  *bool `json:"return_records,omitempty"`
}

// clusterDeployment is an element of deployments: a record without its environments and cluster.
type clusterDeployment struct {
	Name             string            `json:"name"`
	Digest           string            `json:"digest"`
	Version          string            `json:"version,omitempty"`
	Status           record.Status     `json:"status"`
	DeploymentName   string            `json:"deployment_name"`
	GitHubRepository string            `json:"github_repository,omitempty"`
	Tags             map[string]string `json:"tags,omitempty"`
	RuntimeRisks     []string          `json:"runtime_risks,omitempty"`
}

// clusterFailure is an element of the errors of an answer: the failed deployment, or at least its name, and why.
type clusterFailure struct {
	Name           string  `json:"name"`
	Digest         string  `json:"digest"`
	DeploymentName *string `json:"deployment_name"`
	Cause          string  `json:"cause"`
}

// clusterAnswer is the 200/207 body of the synchronous endpoint and, with JobID and Status, of the job endpoints.
type clusterAnswer struct {
	TotalCount *int             `json:"total_count"`
	Errors     []clusterFailure `json:"errors"`
	JobID      int64            `json:"job_id"`
	Status     string           `json:"status"`
}

func (s *Sink) clusterURL(cluster string) string {
	return s.endpoint + "/cluster/" + url.PathEscape(cluster)
}

func (s *Sink) clusterBody(c clusterChunk, recs []record.Record, sync bool) ([]byte, error) {
	body := clusterBody{
		LogicalEnvironment:  c.group.logical,
		PhysicalEnvironment: c.group.physical,
		Deployments:         make([]clusterDeployment, len(c.idx)),
	}
	if sync {
		yes, no := true, false
		// Records that fail alone must not fail the others; the accepted records are not needed back.
		body.PartialSuccess, body.ReturnRecords = &yes, &no
	}
	for k, i := range c.idx {
		r := &recs[i]
		body.Deployments[k] = clusterDeployment{
			Name: r.Name, Digest: r.Digest, Version: r.Version, Status: r.Status, DeploymentName: r.DeploymentName,
			GitHubRepository: r.GitHubRepository, Tags: r.Tags, RuntimeRisks: r.RuntimeRisks,
		}
	}
	return json.Marshal(body)
}

// clusterSet sends one chunk to the synchronous endpoint and records the per-record failures in results.
func (s *Sink) clusterSet(ctx context.Context, c clusterChunk, recs []record.Record, results []error) error {
	body, err := s.clusterBody(c, recs, true)
	if err != nil {
		return fmt.Errorf("encode: %w", err)
	}
	answer, err := s.clusterDo(ctx, http.MethodPost, s.clusterURL(c.group.cluster), body)
	if err != nil {
		return err
	}
	s.recordFailures(c, recs, results, answer.Errors)
	return nil
}

// clusterJob sends one chunk as a job, waits for it and records the per-record failures in results.
func (s *Sink) clusterJob(ctx context.Context, c clusterChunk, recs []record.Record, results []error, tune clusterTuning) error {
	body, err := s.clusterBody(c, recs, false)
	if err != nil {
		return fmt.Errorf("encode: %w", err)
	}
	jobs := s.clusterURL(c.group.cluster) + "/jobs"
	created, err := s.clusterDo(ctx, http.MethodPost, jobs, body)
	if err != nil {
		return fmt.Errorf("create job: %w", err)
	}
	if created.JobID <= 0 {
		return errors.New("create job: the answer has no job_id")
	}
	// The deployments rejected before the job started.
	s.recordFailures(c, recs, results, created.Errors)

	ctx, cancel := context.WithTimeout(ctx, tune.jobTimeout)
	defer cancel()
	status := jobs + "/" + strconv.FormatInt(created.JobID, 10)
	wait := time.Duration(0)
	for {
		if wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return fmt.Errorf("wait for job %d: %w", created.JobID, ctx.Err())
			case <-t.C:
			}
		}
		answer, err := s.clusterDo(ctx, http.MethodGet, status, nil)
		if err != nil {
			return fmt.Errorf("poll job %d: %w", created.JobID, err)
		}
		switch answer.Status {
		case "completed":
			s.recordFailures(c, recs, results, answer.Errors)
			return nil
		case "failed":
			causes := make([]string, 0, len(answer.Errors))
			for _, f := range answer.Errors {
				msg := s.gh.BodyMessage([]byte(f.Cause), http.StatusInternalServerError)
				causes = append(causes, msg)
			}
			return fmt.Errorf("job %d failed: %s", created.JobID, strings.Join(causes, "; "))
		}
		// pending, processing, or a status this client does not know yet: keep waiting.
		wait = min(max(2*wait, tune.pollFirst), tune.pollMax)
	}
}

// recordFailures gives the records of c named in failures their classified errors. A failure that names no
// record of the chunk fails every record of the chunk not yet failed: the caller posts them again one by one.
func (s *Sink) recordFailures(c clusterChunk, recs []record.Record, results []error, failures []clusterFailure) {
	for _, f := range failures {
		cause := s.causeError(f.Cause)
		matched := false
		for _, i := range c.idx {
			r := &recs[i]
			var hit bool
			switch {
			case f.DeploymentName != nil:
				hit = r.DeploymentName == *f.DeploymentName && (f.Digest == "" || f.Digest == r.Digest)
			case f.Name != "":
				hit = r.Name == f.Name && (f.Digest == "" || f.Digest == r.Digest)
			}
			if hit {
				matched = true
				results[i] = fmt.Errorf("%s: %w", s.recordWhat(r), cause)
			}
		}
		if matched {
			continue
		}
		for _, i := range c.idx {
			if results[i] == nil {
				results[i] = fmt.Errorf("%s: a failure the answer does not attribute: %w", s.recordWhat(&recs[i]), cause)
			}
		}
	}
}

// causeError classifies the cause of one failed record the way Post classifies the answer to that record alone:
// an artifact or repository GitHub cannot find is a *sink.NotFoundError, a refusal a *sink.PermanentError.
func (s *Sink) causeError(cause string) error {
	msg := s.gh.BodyMessage([]byte(cause), http.StatusUnprocessableEntity)
	lc := strings.ToLower(msg)
	has := func(subs ...string) bool {
		for _, sub := range subs {
			if strings.Contains(lc, sub) {
				return true
			}
		}
		return false
	}
	switch {
	case has("no artifacts found", "not found", "no matching attestation", "no attestation", "cannot be resolved", "could not be resolved", "no repositories found"):
		return &sink.NotFoundError{Message: msg}
	case has("write access", "permission", "not accessible", "forbidden"):
		return &sink.PermanentError{StatusCode: http.StatusForbidden, Message: msg}
	default:
		return &sink.PermanentError{StatusCode: http.StatusUnprocessableEntity, Message: msg}
	}
}

// clusterDo sends one request to a cluster endpoint and decodes a successful answer; other answers are
// classified like Post's, except that a 404 is permanent (it is about the request, not an artifact) and a 409 is
// retryable (a job of the cluster is running).
func (s *Sink) clusterDo(ctx context.Context, method, endpoint string, body []byte) (clusterAnswer, error) {
	var answer clusterAnswer
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, endpoint, rd)
	if err != nil {
		return answer, err
	}
	resp, err := s.gh.Do(req)
	if err != nil {
		return answer, s.gh.Classify(err)
	}
	if err := s.gh.ClassifyResponse(resp); err != nil {
		var nf *sink.NotFoundError
		var pe *sink.PermanentError
		switch {
		case errors.As(err, &nf):
			return answer, &sink.PermanentError{StatusCode: http.StatusNotFound, Message: nf.Message}
		case errors.As(err, &pe) && pe.StatusCode == http.StatusConflict:
			return answer, fmt.Errorf("status %d: %s", pe.StatusCode, pe.Message)
		}
		return answer, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxClusterResponseBytes+1))
	if err != nil {
		return answer, fmt.Errorf("read answer: %w", err)
	}
	_, _ = io.CopyN(io.Discard, resp.Body, MaxResponseBytes)
	if len(data) > MaxClusterResponseBytes {
		return answer, fmt.Errorf("status %d: answer larger than %d bytes", resp.StatusCode, MaxClusterResponseBytes)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return answer, nil // nothing failed; a job answer without job_id is refused by the caller
	}
	if err := json.Unmarshal(data, &answer); err != nil {
		return answer, fmt.Errorf("status %d: decode answer: %w", resp.StatusCode, err)
	}
	return answer, nil
}
