package delivery

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/deployment-tracker/deployment-tracker/internal/extract"
	"github.com/deployment-tracker/deployment-tracker/internal/ghclient"
	"github.com/deployment-tracker/deployment-tracker/internal/metrics"
	"github.com/deployment-tracker/deployment-tracker/internal/rollout"
	"github.com/deployment-tracker/deployment-tracker/internal/sink"
	"github.com/deployment-tracker/deployment-tracker/internal/sink/githubdeploy"
)

// commit is what the sink found of a rollout's commit.
type commit struct {
	// SHA is the commit, or the ref when it was not resolved; "" when nothing names one.
	SHA string
	// Time is the commit time; zero when unknown, and Reason says why (a metrics.WithoutCommit* value).
	Time   time.Time
	Reason string
}

// commitOfState is the commit st keeps; false when it keeps none (the commit was not looked for yet).
func commitOfState(st map[string]string) (commit, bool) {
	if v := st[StateCommitTime]; v != "" {
		if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
			return commit{SHA: st[StateCommit], Time: t}, true
		}
	}
	if reason := st[StateWithoutCommit]; reason != "" {
		return commit{SHA: st[StateCommit], Reason: reason}, true
	}
	return commit{}, false
}

// into writes c into the state st.
func (c commit) into(st map[string]string) {
	if c.SHA != "" {
		st[StateCommit] = truncate(c.SHA, maxCommit)
	}
	if !c.Time.IsZero() {
		st[StateCommitTime] = c.Time.UTC().Format(time.RFC3339Nano)
		return
	}
	st[StateWithoutCommit] = c.Reason
}

// invalidError is a configuration that names no commit: an annotation that does not parse, a rule that
// extracts nothing. It is not retried; the rollout has no lead time.
type invalidError struct{ err error }

func (e *invalidError) Error() string { return e.err.Error() }
func (e *invalidError) Unwrap() error { return e.err }

func invalid(format string, a ...any) error { return &invalidError{err: fmt.Errorf(format, a...)} }

// resolve finds the commit of r, as the package describes. Its errors are failures to read (the cache, the
// API server) or GitHub's, classified; a configuration that names no commit is a commit with a Reason.
func (s *Sink) resolve(ctx context.Context, r rollout.Rollout) (commit, error) {
	var a Annotations
	if s.cfg.Workloads != nil {
		var err error
		if a, _, err = s.cfg.Workloads.Annotations(ctx, r.Workload); err != nil {
			return commit{}, fmt.Errorf("annotations of %s: %w", r.Workload, err)
		}
	}
	sha := a.first(AnnotationCommit, AnnotationImageRevision)
	if v := a.first(AnnotationCommitTime); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			return commit{SHA: sha, Reason: metrics.WithoutCommitInvalid}, nil
		}
		return commit{SHA: sha, Time: t}, nil
	}
	c, err := s.lookupRollout(ctx, r, a.Workload, sha)
	var ie *invalidError
	if errors.As(err, &ie) {
		return commit{SHA: sha, Reason: metrics.WithoutCommitInvalid}, nil
	}
	return c, err
}

// lookupRollout finds the repository of r and looks the commit up there: sha, or the ref r's rule extracts.
func (s *Sink) lookupRollout(ctx context.Context, r rollout.Rollout, ann map[string]string, sha string) (commit, error) {
	ownerName, repo, rule, found, err := s.source(ctx, r, ann)
	switch {
	case err != nil:
		return commit{}, err
	case !found && sha != "":
		return commit{SHA: sha, Reason: metrics.WithoutCommitNoRepository}, nil
	case !found:
		return commit{Reason: metrics.WithoutCommitNone}, nil
	}
	ref := sha
	if ref == "" {
		if ref, err = s.ref(ctx, r, rule); err != nil {
			return commit{}, err
		}
	}
	if s.cfg.Client == nil {
		return commit{SHA: ref, Reason: metrics.WithoutCommitLookupDisabled}, nil
	}
	return s.lookup(ctx, ownerName, repo, ref)
}

// repositoryName is what GitHub accepts as [OWNER/]NAME.
var repositoryName = regexp.MustCompile(`^([A-Za-z0-9-]+/)?[A-Za-z0-9._-]+$`)

// source is the repository of r's workload and the rule of its ref: its GitHub Deployments configuration, else
// its delivery.deployment-tracker.io/ annotations; found is false when neither names a repository.
func (s *Sink) source(ctx context.Context, r rollout.Rollout, ann map[string]string) (ownerName, repo string, rule extract.Rule, found bool, err error) {
	var name string
	switch {
	case strings.TrimSpace(ann[githubdeploy.AnnotationRepository]) != "":
		t, _, err := githubdeploy.TargetFromAnnotations(ann)
		if err != nil {
			return "", "", rule, false, &invalidError{err: err}
		}
		name, rule = t.Repository, t.Extract
	case strings.TrimSpace(ann[AnnotationRepository]) != "":
		if name, rule, err = sourceFromAnnotations(ann); err != nil {
			return "", "", rule, false, err
		}
	case s.cfg.Targets != nil:
		// A GitHubDeployment naming the workload (its github.deployment-tracker.io/ annotations were read above).
		t, ok, err := s.cfg.Targets.Target(ctx, r.Workload)
		if err != nil || !ok {
			return "", "", rule, false, err
		}
		name, rule = t.Repository, t.Extract
	default:
		return "", "", rule, false, nil
	}
	ownerName, repo, ok := strings.Cut(name, "/")
	if !ok {
		ownerName, repo = s.cfg.Org, name
	}
	if ownerName == "" {
		return "", "", rule, false, invalid("repository %q names no owner, and no organization is configured", name)
	}
	return ownerName, repo, rule, true, nil
}

// sourceFromAnnotations reads AnnotationRepository and the ref rule; errors name the annotation.
func sourceFromAnnotations(ann map[string]string) (string, extract.Rule, error) {
	name := strings.TrimSpace(ann[AnnotationRepository])
	if !repositoryName.MatchString(name) {
		return "", extract.Rule{}, invalid("%s: %q is not a repository name (NAME or OWNER/NAME)", AnnotationRepository, name)
	}
	rule, err := extract.ParseFrom(ann[AnnotationRefFrom])
	if err != nil {
		return "", rule, invalid("%s: %w", AnnotationRefFrom, err)
	}
	rule.Regexp, rule.Template = ann[AnnotationRefRegexp], ann[AnnotationRefTemplate]
	if _, err := extract.Compile(rule); err != nil {
		return "", rule, &invalidError{err: err}
	}
	return name, rule, nil
}

// ref extracts the ref of r by rule, as the GitHub Deployments sink does: from the non-init containers' images
// unless the rule names a container, or from the workload object for a JSONPath.
func (s *Sink) ref(ctx context.Context, r rollout.Rollout, rule extract.Rule) (string, error) {
	ex, err := extract.Compile(rule)
	if err != nil {
		return "", &invalidError{err: err}
	}
	var containers []extract.Container
	for _, c := range r.Containers {
		if !c.Init || rule.ContainerName != "" {
			containers = append(containers, extract.Container{Name: c.Name, Image: c.Image})
		}
	}
	var obj map[string]any
	if ex.UsesObject() {
		if s.cfg.Objects == nil {
			return "", invalid("a JSONPath rule needs the workload object, which this install does not read")
		}
		var found bool
		if obj, found, err = s.cfg.Objects.Object(ctx, r.Workload); err != nil {
			return "", err
		} else if !found {
			return "", invalid("%s not found", r.Workload)
		}
	}
	ref, err := ex.Ref(obj, containers)
	if err != nil {
		return "", &invalidError{err: err}
	}
	return ref, nil
}

// cachedCommit is a commit of the cache; a zero expires never expires (a lookup by SHA).
type cachedCommit struct {
	c       commit
	expires time.Time
}

// lookup is the commit ref names in ownerName/repo, from the cache or from GitHub.
func (s *Sink) lookup(ctx context.Context, ownerName, repo, ref string) (commit, error) {
	key := strings.ToLower(ownerName+"/"+repo) + "@" + ref
	if v, ok := s.commits.Get(key); ok {
		if e := v.(cachedCommit); e.expires.IsZero() || s.cfg.Now().Before(e.expires) {
			return e.c, nil
		}
		s.commits.Remove(key)
	}
	sha, t, err := s.cfg.Client.Commit(ctx, ownerName, repo, ref)
	switch {
	case errors.Is(err, ghclient.ErrNoCommit):
		return commit{SHA: ref, Reason: metrics.WithoutCommitNotFound}, nil
	case sink.Classify(err) == sink.ClassPermanent: // a refusal, or a commit without dates
		return commit{SHA: ref, Reason: metrics.WithoutCommitRejected}, nil
	case err != nil:
		return commit{}, err
	}
	c := commit{SHA: sha, Time: t}
	if c.SHA == "" {
		c.SHA = ref
	}
	expires := time.Time{}
	if !isSHA(ref) {
		expires = s.cfg.Now().Add(s.cfg.RefTTL)
	}
	s.commits.Add(key, cachedCommit{c: c, expires: expires})
	if isSHA(c.SHA) && c.SHA != ref {
		s.commits.Add(strings.ToLower(ownerName+"/"+repo)+"@"+c.SHA, cachedCommit{c: c})
	}
	return c, nil
}

// first is the first of keys set on the workload, else on its pod template, trimmed; "" when none is.
func (a Annotations) first(keys ...string) string {
	for _, m := range []map[string]string{a.Workload, a.Template} {
		for _, k := range keys {
			if v := strings.TrimSpace(m[k]); v != "" {
				return v
			}
		}
	}
	return ""
}

// isSHA reports whether ref is a full commit SHA (40 hex digits), which never names another commit.
func isSHA(ref string) bool {
	return len(ref) == 40 && strings.Trim(strings.ToLower(ref), "0123456789abcdef") == ""
}

// truncate bounds s to n bytes, at a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "")
}
