// Package githubdeploy is the GitHub Deployments rollout sink: for every rollout of a configured workload, a
// deployment of the rollout's git ref in a repository and environment, and deployment statuses that follow the
// rollout (https://docs.github.com/rest/deployments/deployments, https://docs.github.com/rest/deployments/statuses):
//
//	InProgress → in_progress
//	Current    → success (with environment_url, auto_inactive)
//	Failed     → failure
//	RolledBack → failure (the restored revision is a rollout of its own, and gets its success)
//	Superseded → inactive, when it never completed
//	Deleted    → inactive
//
// A workload is configured by its github.deployment-tracker.io/ annotations or by a GitHubDeployment object
// (internal/apis/github/v1alpha1) naming it; see Target. The git ref comes from internal/extract.
//
// The deployment's id, ref and the last state sent are the state the sink returns, which the ledger keeps
// across restarts and leader changes: each status is sent once. A deployment of the same ref and environment
// that already exists is reused (so a retry after a failed status never creates a second one).
package githubdeploy

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/go-github/v88/github"

	ghv1 "github.com/deployment-tracker/deployment-tracker/internal/apis/github/v1alpha1"
	"github.com/deployment-tracker/deployment-tracker/internal/extract"
	"github.com/deployment-tracker/deployment-tracker/internal/ghclient"
	"github.com/deployment-tracker/deployment-tracker/internal/owner"
	"github.com/deployment-tracker/deployment-tracker/internal/rollout"
	"github.com/deployment-tracker/deployment-tracker/internal/sink"
)

// The state keys the sink returns.
const (
	StateRepository  = "repository"  // owner/repo of the deployment
	StateEnvironment = "environment" // its environment
	StateRef         = "ref"         // the git ref deployed
	StateDeployment  = "deployment"  // the deployment's id
	StateSent        = "sent"        // the state of the deployment status last accepted
)

// The deployment status states the sink sends
// (https://docs.github.com/rest/deployments/statuses#create-a-deployment-status).
const (
	StatusInProgress = "in_progress"
	StatusSuccess    = "success"
	StatusFailure    = "failure"
	StatusInactive   = "inactive"
)

// Bounds of GitHub's fields.
const (
	// maxDescription is the documented limit of a deployment's and a status's description.
	maxDescription = 140
	// DefaultTimeout bounds one Notify (a list, a create and a status at most).
	DefaultTimeout = 20 * time.Second
)

// TargetReader finds how a workload is configured; found is false for a workload without configuration.
type TargetReader interface {
	Target(ctx context.Context, w owner.Workload) (t Target, found bool, err error)
}

// ObjectReader reads the whole workload object, for a JSONPath rule and the payload annotations; found is false
// when it no longer exists.
type ObjectReader interface {
	Object(ctx context.Context, w owner.Workload) (obj map[string]any, found bool, err error)
}

// Reporter is told the outcome of each Notify that acted, to show it on the workload or its GitHubDeployment
// (conditions, Events). It must not block for long; errors are its own to log.
type Reporter interface {
	Report(ctx context.Context, w owner.Workload, t Target, rep Report)
}

// Report is the outcome of one notification.
type Report struct {
	Phase        rollout.Phase
	Ref          string
	DeploymentID int64
	// State is the deployment status sent ("" when none was).
	State string
	// Reason is a GitHubDeployment condition reason (v1alpha1.Reason*); Err the failure, nil on success.
	Reason string
	Err    error
}

// Config configures the sink.
type Config struct {
	// Client is the GitHub client. Required.
	Client *ghclient.Client
	// Org is the owner of repositories named without one.
	Org string
	// LogicalEnvironment is the environment of targets that name none. Required.
	LogicalEnvironment string
	// Cluster is named in the default descriptions.
	Cluster string
	// Targets finds each workload's configuration. Required.
	Targets TargetReader
	// Objects reads workload objects for JSONPath rules and payloads; nil: such rules fail with a clear error.
	Objects ObjectReader
	// Reporter shows outcomes; nil: none.
	Reporter Reporter
	// Timeout bounds one Notify (default DefaultTimeout).
	Timeout time.Duration
}

// Sink creates GitHub deployments and deployment statuses. It is safe for concurrent use.
type Sink struct {
	cfg Config
}

var _ sink.RolloutSink = (*Sink)(nil)

// New validates cfg and returns a Sink.
func New(cfg Config) (*Sink, error) {
	var errs []error
	if cfg.Client == nil {
		errs = append(errs, errors.New("githubdeploy: Client is required"))
	}
	if cfg.Targets == nil {
		errs = append(errs, errors.New("githubdeploy: Targets is required"))
	}
	if cfg.LogicalEnvironment == "" {
		errs = append(errs, errors.New("githubdeploy: LogicalEnvironment is required"))
	}
	if cfg.Timeout < 0 {
		errs = append(errs, errors.New("githubdeploy: Timeout must not be negative"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	return &Sink{cfg: cfg}, nil
}

// Notify brings the rollout's deployment status to what its phase says, as the package describes.
func (s *Sink) Notify(ctx context.Context, n rollout.Notification) (map[string]string, error) {
	r := n.Rollout
	st := maps.Clone(n.State)
	if st == nil {
		st = map[string]string{}
	}
	want := wantState(r.Phase, st)
	if want == "" || st[StateSent] == want {
		return st, nil
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()

	t, found, err := s.cfg.Targets.Target(ctx, r.Workload)
	var ce *ConfigError
	if errors.As(err, &ce) {
		// Annotations that do not parse: said on the workload, and not retried until they change (a new
		// rollout, or a notification of this one, reads them again).
		err = &sink.PermanentError{StatusCode: http.StatusUnprocessableEntity, Message: ce.Error()}
		if s.cfg.Reporter != nil {
			s.cfg.Reporter.Report(ctx, r.Workload, t, Report{Phase: r.Phase, Reason: ghv1.ReasonRejected, Err: err})
		}
		return nil, fmt.Errorf("configuration of %s: %w", r.Workload, err)
	}
	if err != nil {
		return nil, fmt.Errorf("configuration of %s: %w", r.Workload, err)
	}
	if !found {
		if st[StateDeployment] == "" {
			return st, nil // not configured: nothing to do
		}
		// The workload (and with it its annotations or GitHubDeployment) is gone, but its deployment is not:
		// the state says where it is.
		if t, err = targetOfState(st); err != nil {
			return st, nil //nolint:nilerr // a state this sink did not write has nothing to finish
		}
	}
	rep := Report{Phase: r.Phase, State: want}
	err = s.deliver(ctx, r, t, st, want, &rep)
	if err != nil {
		rep.State = ""
		rep.Err = err
		if rep.Reason == "" {
			rep.Reason = reasonOf(err)
		}
	} else {
		rep.Reason = ghv1.ReasonSynced
	}
	if s.cfg.Reporter != nil {
		s.cfg.Reporter.Report(ctx, r.Workload, t, rep)
	}
	if err != nil {
		return nil, err
	}
	return st, nil
}

// deliver finds or creates the deployment (unless the state has it) and sends the status want, updating st.
func (s *Sink) deliver(ctx context.Context, r rollout.Rollout, t Target, st map[string]string, want string, rep *Report) error {
	ownerName, repo := s.repository(t)
	id, _ := strconv.ParseInt(st[StateDeployment], 10, 64)
	if id == 0 {
		ref, err := s.ref(ctx, r, t)
		if err != nil {
			rep.Reason = ghv1.ReasonExtractFailed
			return &sink.PermanentError{StatusCode: http.StatusUnprocessableEntity, Message: fmt.Sprintf("git ref of %s revision %d: %s", r.Workload, r.Revision, err)}
		}
		rep.Ref = ref
		dep, err := s.deployment(ctx, r, t, ownerName, repo, ref)
		if err != nil {
			return err
		}
		id = dep.GetID()
		st[StateRepository] = ownerName + "/" + repo
		st[StateEnvironment] = environmentOf(t, s.cfg.LogicalEnvironment)
		st[StateRef] = ref
		st[StateDeployment] = strconv.FormatInt(id, 10)
	}
	rep.Ref, rep.DeploymentID = st[StateRef], id
	req := &github.DeploymentStatusRequest{
		State:       github.Ptr(want),
		Description: github.Ptr(truncate(statusDescription(r), maxDescription)),
	}
	if want == StatusSuccess {
		req.AutoInactive = github.Ptr(true)
		if t.EnvironmentURL != "" {
			req.EnvironmentURL = github.Ptr(t.EnvironmentURL)
		}
	}
	if _, _, err := s.cfg.Client.GitHub.Repositories.CreateDeploymentStatus(ctx, ownerName, repo, id, req); err != nil {
		err = s.cfg.Client.Classify(err)
		if sink.Classify(err) == sink.ClassNotFound {
			// The deployment was deleted at GitHub (or the repository): start over with a new one next time.
			delete(st, StateDeployment)
		}
		return fmt.Errorf("create deployment status %s of deployment %d in %s/%s: %w", want, id, ownerName, repo, err)
	}
	st[StateSent] = want
	return nil
}

// deployment is the deployment of ref in t's environment: the newest existing one, or a new one
// (https://docs.github.com/rest/deployments/deployments#create-a-deployment).
func (s *Sink) deployment(ctx context.Context, r rollout.Rollout, t Target, ownerName, repo, ref string) (*github.Deployment, error) {
	env := environmentOf(t, s.cfg.LogicalEnvironment)
	gh := s.cfg.Client
	list, _, err := gh.GitHub.Repositories.ListDeployments(ctx, ownerName, repo, &github.DeploymentsListOptions{
		Ref: ref, Environment: env, ListOptions: github.ListOptions{PerPage: 1},
	})
	if err != nil {
		return nil, fmt.Errorf("list deployments of %s in %s/%s: %w", ref, ownerName, repo, gh.Classify(err))
	}
	if len(list) > 0 {
		return list[0], nil
	}
	payload, err := s.payload(ctx, r.Workload, t)
	if err != nil {
		return nil, err
	}
	req := &github.DeploymentRequest{
		Ref:                   github.Ptr(ref),
		Task:                  github.Ptr("deploy"),
		AutoMerge:             github.Ptr(false),
		RequiredContexts:      &[]string{},
		Environment:           github.Ptr(env),
		Description:           github.Ptr(truncate(s.description(r, t), maxDescription)),
		ProductionEnvironment: t.Production,
		TransientEnvironment:  t.Transient,
	}
	if len(payload) > 0 {
		req.Payload = payload
	}
	dep, _, err := gh.GitHub.Repositories.CreateDeployment(ctx, ownerName, repo, req)
	if err != nil {
		return nil, fmt.Errorf("create deployment of %s in %s/%s: %w", ref, ownerName, repo, gh.Classify(err))
	}
	return dep, nil
}

// ref extracts the rollout's git ref by t's rule.
func (s *Sink) ref(ctx context.Context, r rollout.Rollout, t Target) (string, error) {
	ex, err := extract.Compile(t.Extract)
	if err != nil {
		return "", err
	}
	var containers []extract.Container
	for _, c := range r.Containers {
		if !c.Init || t.Extract.ContainerName != "" {
			containers = append(containers, extract.Container{Name: c.Name, Image: c.Image})
		}
	}
	var obj map[string]any
	if ex.UsesObject() {
		if s.cfg.Objects == nil {
			return "", errors.New("a JSONPath rule needs the workload object, which this install does not read")
		}
		var found bool
		if obj, found, err = s.cfg.Objects.Object(ctx, r.Workload); err != nil {
			return "", err
		} else if !found {
			return "", fmt.Errorf("%s not found", r.Workload)
		}
	}
	return ex.Ref(obj, containers)
}

// payload is the workload's annotations with t's prefix, the prefix removed.
func (s *Sink) payload(ctx context.Context, w owner.Workload, t Target) (map[string]string, error) {
	if t.PayloadPrefix == "" || s.cfg.Objects == nil {
		return nil, nil
	}
	obj, found, err := s.cfg.Objects.Object(ctx, w)
	if err != nil || !found {
		return nil, err
	}
	md, _ := obj["metadata"].(map[string]any)
	ann, _ := md["annotations"].(map[string]any)
	out := map[string]string{}
	for k, v := range ann {
		if rest, ok := strings.CutPrefix(k, t.PayloadPrefix); ok && rest != "" {
			if str, ok := v.(string); ok {
				out[rest] = str
			}
		}
	}
	return out, nil
}

// repository is t's owner and repository, the owner defaulting to the organization.
func (s *Sink) repository(t Target) (string, string) {
	if o, r, ok := strings.Cut(t.Repository, "/"); ok {
		return o, r
	}
	return s.cfg.Org, t.Repository
}

func (s *Sink) description(r rollout.Rollout, t Target) string {
	if t.Description != "" {
		return t.Description
	}
	d := fmt.Sprintf("%s %s/%s revision %d", r.Workload.Kind, r.Workload.Namespace, r.Workload.Name, r.Revision)
	if s.cfg.Cluster != "" {
		d += " in " + s.cfg.Cluster
	}
	return d
}

// wantState is the deployment status the phase calls for, "" for none.
func wantState(p rollout.Phase, st map[string]string) string {
	switch p {
	case rollout.PhaseInProgress:
		return StatusInProgress
	case rollout.PhaseCurrent:
		return StatusSuccess
	case rollout.PhaseFailed, rollout.PhaseRolledBack:
		return StatusFailure
	case rollout.PhaseDeleted:
		if st[StateDeployment] != "" {
			return StatusInactive
		}
	case rollout.PhaseSuperseded:
		// A completed rollout's success is made inactive by GitHub when the next success comes
		// (auto_inactive); one that never completed would stay in progress forever.
		if st[StateDeployment] != "" && st[StateSent] == StatusInProgress {
			return StatusInactive
		}
	}
	return ""
}

// statusDescription says what the rollout is at.
func statusDescription(r rollout.Rollout) string {
	d := fmt.Sprintf("Revision %d %s", r.Revision, r.Phase)
	if r.Desired > 0 {
		d += fmt.Sprintf(", %d/%d ready", r.Ready, r.Desired)
	}
	if r.Message != "" {
		d += ": " + r.Message
	}
	return d
}

// reasonOf is the condition reason of a failure.
func reasonOf(err error) string {
	switch sink.Classify(err) {
	case sink.ClassCredentials:
		return ghv1.ReasonCredentialsRefused
	case sink.ClassNotFound:
		return ghv1.ReasonRepositoryNotFound
	case sink.ClassPermanent:
		if strings.Contains(strings.ToLower(ghclient.Message(err)), "ref") {
			return ghv1.ReasonRefNotFound
		}
		return ghv1.ReasonRejected
	}
	return "DeliveryFailed" // retryable: not shown
}

// truncate bounds s to n runes, marking the cut.
func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n-1]) + "…"
}
