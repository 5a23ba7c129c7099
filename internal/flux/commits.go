package flux

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/deployment-tracker/deployment-tracker/internal/ghclient"
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
	_, t, err := g.client.Commit(ctx, owner, repo, sha)
	if errors.Is(err, ghclient.ErrNoCommit) {
		return time.Time{}, fmt.Errorf("%w: %w", ErrCommitNotFound, err)
	}
	if err != nil {
		return time.Time{}, err
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
