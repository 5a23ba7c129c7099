package ghclient

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/google/go-github/v88/github"

	"github.com/deployment-tracker/deployment-tracker/internal/sink"
)

// ErrNoCommit wraps the answer for a commit GitHub does not have: a 404 (no such repository, or no access to
// it) or a 422 ("No commit found for SHA").
var ErrNoCommit = errors.New("no such commit")

// Commit is the SHA and the date of the commit ref (a SHA, branch or tag) names in owner/repo, from
// GET /repos/{owner}/{repo}/commits/{ref} (https://docs.github.com/rest/commits/commits#get-a-commit): the
// committer date (when the commit was made where it is now, after a rebase or a squash merge), else the author
// date. A commit GitHub does not have is an error wrapping ErrNoCommit; a commit without a date a
// *sink.PermanentError; other errors are classified (Classify). It does not cache.
func (c *Client) Commit(ctx context.Context, owner, repo, ref string) (sha string, when time.Time, err error) {
	// One file per page: the answer lists the commit's files (300 a page by default, with their patches), of
	// which nothing is used.
	rc, _, err := c.GitHub.Repositories.GetCommit(ctx, owner, repo, ref, &github.ListOptions{PerPage: 1})
	if err = c.Classify(err); err != nil {
		var pe *sink.PermanentError
		if sink.Classify(err) == sink.ClassNotFound || errors.As(err, &pe) && pe.StatusCode == http.StatusUnprocessableEntity {
			return "", time.Time{}, fmt.Errorf("get commit %s of %s/%s: %w: %w", ref, owner, repo, ErrNoCommit, err)
		}
		return "", time.Time{}, fmt.Errorf("get commit %s of %s/%s: %w", ref, owner, repo, err)
	}
	gc := rc.GetCommit()
	when = gc.GetCommitter().GetDate().Time
	if when.IsZero() {
		when = gc.GetAuthor().GetDate().Time
	}
	if when.IsZero() {
		return "", time.Time{}, fmt.Errorf("get commit %s of %s/%s: %w", ref, owner, repo,
			&sink.PermanentError{StatusCode: http.StatusOK, Message: "the commit has no date"})
	}
	return rc.GetSHA(), when, nil
}
