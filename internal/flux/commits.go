package flux

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/google/go-github/v88/github"

	"github.com/deployment-tracker/deployment-tracker/internal/ghclient"
	"github.com/deployment-tracker/deployment-tracker/internal/sink"
)

// CommitTimes looks up when a commit was made.
type CommitTimes interface {
	// CommitTime returns the committer date of commit sha of owner/repo. An error wrapping ErrCommitNotFound
	// means the repository does not have it (retrying will not help); other errors are classified as sink
	// errors (sink.RetryAfterError for rate limits) and may be retried.
	CommitTime(ctx context.Context, owner, repo, sha string) (time.Time, error)
}

// ErrCommitNotFound is a commit GitHub does not know, or a repository the credentials cannot see.
var ErrCommitNotFound = errors.New("commit not found")

// DefaultCommitCacheSize is how many commit times GitHubCommits keeps by default.
const DefaultCommitCacheSize = 1024

// GitHubCommitsConfig configures GitHubCommits.
type GitHubCommitsConfig struct {
	// Client is the tracker's GitHub client (required).
	Client *ghclient.Client
	// CacheSize bounds the commit times kept (default DefaultCommitCacheSize); the oldest go first.
	CacheSize int
}

// GitHubCommits reads commit times from GitHub's commits API (GET /repos/{owner}/{repo}/commits/{ref},
// https://docs.github.com/rest/commits/commits#get-a-commit), which needs read access to the repository's
// contents, and keeps them by SHA: a commit's time never changes, and several Kustomizations (or clusters'
// revisions) often apply the same commit.
type GitHubCommits struct {
	client *ghclient.Client
	size   int

	mu    sync.Mutex
	times map[string]time.Time
	order []string // keys of times, oldest first
}

var _ CommitTimes = (*GitHubCommits)(nil)

// NewGitHubCommits validates cfg and fills its defaults.
func NewGitHubCommits(cfg GitHubCommitsConfig) (*GitHubCommits, error) {
	var errs []error
	if cfg.Client == nil {
		errs = append(errs, errors.New("Client is required"))
	}
	if cfg.CacheSize < 0 {
		errs = append(errs, errors.New("CacheSize must not be negative"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if cfg.CacheSize == 0 {
		cfg.CacheSize = DefaultCommitCacheSize
	}
	return &GitHubCommits{client: cfg.Client, size: cfg.CacheSize, times: map[string]time.Time{}}, nil
}

// CommitTime implements CommitTimes: the committer date (when the commit was made where it is now, after a
// rebase or a squash merge), else the author date.
func (g *GitHubCommits) CommitTime(ctx context.Context, owner, repo, sha string) (time.Time, error) {
	key := strings.ToLower(owner + "/" + repo + "@" + sha)
	g.mu.Lock()
	t, ok := g.times[key]
	g.mu.Unlock()
	if ok {
		return t, nil
	}
	// One file per page: the answer lists the commit's files (300 a page by default, with their patches), of
	// which nothing is used.
	rc, _, err := g.client.GitHub.Repositories.GetCommit(ctx, owner, repo, sha, &github.ListOptions{PerPage: 1})
	if err = g.client.Classify(err); err != nil {
		var nf *sink.NotFoundError
		var pe *sink.PermanentError
		// 404: no such repository (or no access to it); 422: "No commit found for SHA".
		if errors.As(err, &nf) || errors.As(err, &pe) && pe.StatusCode == http.StatusUnprocessableEntity {
			return time.Time{}, fmt.Errorf("get commit %s of %s/%s: %w: %w", sha, owner, repo, ErrCommitNotFound, err)
		}
		return time.Time{}, fmt.Errorf("get commit %s of %s/%s: %w", sha, owner, repo, err)
	}
	c := rc.GetCommit()
	t = c.GetCommitter().GetDate().Time
	if t.IsZero() {
		t = c.GetAuthor().GetDate().Time
	}
	if t.IsZero() {
		return time.Time{}, fmt.Errorf("get commit %s of %s/%s: %w", sha, owner, repo, &sink.PermanentError{StatusCode: http.StatusOK, Message: "the commit has no date"})
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if _, ok := g.times[key]; !ok {
		if len(g.order) >= g.size {
			delete(g.times, g.order[0])
			g.order = g.order[1:]
		}
		g.order = append(g.order, key)
	}
	g.times[key] = t
	return t, nil
}
