package flux

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/deployment-tracker/deployment-tracker/internal/ghclient"
	"github.com/deployment-tracker/deployment-tracker/internal/githubtest"
	"github.com/deployment-tracker/deployment-tracker/internal/sink"
)

const token = "ghp_test"

func newCommits(t *testing.T) (*githubtest.Server, *GitHubCommits) {
	t.Helper()
	committed := time.Date(2025, 6, 1, 9, 30, 0, 0, time.UTC)
	gh, err := githubtest.New(githubtest.Options{
		Tokens: []string{token},
		Repos: map[string]githubtest.Repo{"fleet": {
			Branches: map[string]string{"main": sha1A},
			Commits: map[string]githubtest.Commit{
				sha1A: {Message: "ship it", AuthorDate: committed.Add(-time.Hour), CommitterDate: committed},
			},
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(gh.Close)
	c, err := ghclient.New(ghclient.Config{BaseURL: gh.URL(), Token: token})
	if err != nil {
		t.Fatal(err)
	}
	g, err := NewGitHubCommits(GitHubCommitsConfig{Client: c, CacheSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	return gh, g
}

func TestGitHubCommits(t *testing.T) {
	gh, g := newCommits(t)
	org := gh.Org()
	got, err := g.CommitTime(t.Context(), org, "fleet", sha1A)
	if want := time.Date(2025, 6, 1, 9, 30, 0, 0, time.UTC); err != nil || !got.Equal(want) {
		t.Fatalf("CommitTime = %v, %v; want the committer date %v", got, err, want)
	}
	if _, err := g.CommitTime(t.Context(), org, "Fleet", sha1A); err != nil {
		t.Fatal(err)
	}
	if n := gh.RepoStats().Requests[githubtest.EndpointGetCommit]; n != 1 {
		t.Errorf("%d requests for one commit, want 1 (cached by SHA)", n)
	}

	t.Run("errors", func(t *testing.T) {
		tests := []struct {
			name        string
			repo, sha   string
			fault       *githubtest.Fault
			notFound    bool
			wantAs      any
			wantRetried bool
		}{
			{name: "unknown commit (422)", repo: "fleet", sha: sha1B, notFound: true},
			{name: "unknown repository (404)", repo: "nope", sha: sha1A, notFound: true},
			{name: "server error", repo: "fleet", sha: sha1B, fault: &githubtest.Fault{Status: http.StatusBadGateway}, wantRetried: true},
			{name: "rate limit", repo: "fleet", sha: sha1B, fault: &githubtest.Fault{Status: http.StatusTooManyRequests, Header: http.Header{"Retry-After": {"30"}}},
				wantAs: new(*sink.RetryAfterError)},
			{name: "credentials", repo: "fleet", sha: sha1B, fault: &githubtest.Fault{Status: http.StatusUnauthorized, Message: "Bad credentials"},
				wantAs: new(*sink.CredentialsError)},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				if tt.fault != nil {
					gh.InjectRepoNext(1, githubtest.EndpointGetCommit, *tt.fault)
				}
				_, err := g.CommitTime(t.Context(), org, tt.repo, tt.sha)
				if err == nil {
					t.Fatal("no error")
				}
				if got := errors.Is(err, ErrCommitNotFound); got != tt.notFound {
					t.Errorf("errors.Is(%v, ErrCommitNotFound) = %t, want %t", err, got, tt.notFound)
				}
				if tt.wantAs != nil && !errors.As(err, tt.wantAs) {
					t.Errorf("error %v is not a %T", err, tt.wantAs)
				}
				var pe *sink.PermanentError
				if tt.wantRetried && errors.As(err, &pe) {
					t.Errorf("error %v is permanent, want retryable", err)
				}
			})
		}
	})
}

func TestGitHubCommitsCacheBound(t *testing.T) {
	gh, g := newCommits(t)
	for _, sha := range []string{sha1B, "fedcba9876543210fedcba9876543210fedcba98"} {
		if err := gh.AddCommit("fleet", sha, githubtest.Commit{CommitterDate: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	for _, sha := range []string{sha1A, sha1B, "fedcba9876543210fedcba9876543210fedcba98", sha1A} {
		if _, err := g.CommitTime(t.Context(), gh.Org(), "fleet", sha); err != nil {
			t.Fatal(err)
		}
	}
	// Size 2: the third commit evicts the first, which is read again.
	if n := gh.RepoStats().Requests[githubtest.EndpointGetCommit]; n != 4 {
		t.Errorf("%d requests, want 4", n)
	}
	if len(g.times) != 2 || len(g.order) != 2 {
		t.Errorf("cache holds %d (%d in order), want 2", len(g.times), len(g.order))
	}
}

func TestNewGitHubCommits(t *testing.T) {
	if _, err := NewGitHubCommits(GitHubCommitsConfig{CacheSize: -1}); err == nil {
		t.Error("no error without a client and with a negative size")
	}
}
