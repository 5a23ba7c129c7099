package githubtest

// GET /repos/{owner}/{repo}/commits/{ref} (https://docs.github.com/rest/commits/commits#get-a-commit) answers a
// commit of a Repo. {ref} is a SHA, an abbreviated SHA, a branch or a tag (which may contain slashes); one that
// does not resolve is 422 "No commit found for SHA: <ref>", GitHub's wording. With the media type
// application/vnd.github.sha (or .v3.sha, which go-github's GetCommitSHA1 sends) the body is the bare SHA and
// an If-None-Match naming it gets 304 Not Modified. The diff and patch media types are not served (415).
//
// Assumed: GitHub users behind the git author and committer are unknown (author and committer are null), the
// commit is unsigned, and stats and files are empty.

import (
	"crypto/sha1"
	"encoding/hex"
	"net/http"
	"slices"
	"strings"
)

const getCommitDocs = "https://docs.github.com/rest/commits/commits#get-a-commit"

// The media types that ask for a commit's bare SHA.
var shaMediaTypes = []string{"application/vnd.github.sha", "application/vnd.github.v3.sha"}

// acceptsCommit reports whether an Accept header is acceptable for the commit endpoint: JSON or a bare SHA.
func acceptsCommit(accept []string) bool { return acceptsGitHubJSON(accept) || wantsSHA(accept) }

func wantsSHA(accept []string) bool {
	for _, h := range accept {
		for part := range strings.SplitSeq(h, ",") {
			mt, _, _ := strings.Cut(part, ";")
			if slices.Contains(shaMediaTypes, strings.ToLower(strings.TrimSpace(mt))) {
				return true
			}
		}
	}
	return false
}

// commitBody is components/schemas/commit.
type commitBody struct {
	URL         string        `json:"url"`
	SHA         string        `json:"sha"`
	NodeID      string        `json:"node_id"`
	HTMLURL     string        `json:"html_url"`
	CommentsURL string        `json:"comments_url"`
	Commit      gitCommitBody `json:"commit"`
	Author      *userBody     `json:"author"`
	Committer   *userBody     `json:"committer"`
	Parents     []parentBody  `json:"parents"`
	Stats       statsBody     `json:"stats"`
	Files       []struct{}    `json:"files"`
}

type gitCommitBody struct {
	URL          string           `json:"url"`
	Author       gitUserBody      `json:"author"`
	Committer    gitUserBody      `json:"committer"`
	Message      string           `json:"message"`
	CommentCount int              `json:"comment_count"`
	Tree         treeBody         `json:"tree"`
	Verification verificationBody `json:"verification"`
}

type gitUserBody struct {
	Name  string `json:"name"`
	Email string `json:"email"`
	Date  string `json:"date"`
}

type treeBody struct {
	SHA string `json:"sha"`
	URL string `json:"url"`
}

type parentBody struct {
	SHA     string `json:"sha"`
	URL     string `json:"url"`
	HTMLURL string `json:"html_url"`
}

type statsBody struct {
	Additions int `json:"additions"`
	Deletions int `json:"deletions"`
	Total     int `json:"total"`
}

type verificationBody struct {
	Verified   bool    `json:"verified"`
	Reason     string  `json:"reason"`
	Signature  *string `json:"signature"`
	Payload    *string `json:"payload"`
	VerifiedAt *string `json:"verified_at"`
}

// serveGetCommit answers GET /repos/{owner}/{repo}/commits/{ref}; s.mu is held.
func (s *Server) serveGetCommit(w http.ResponseWriter, r *http.Request, c *repoCall) {
	ref := r.PathValue("ref")
	sha, ok := c.repo.resolve(ref)
	if !ok {
		writeError(w, http.StatusUnprocessableEntity, "No commit found for SHA: "+ref, getCommitDocs)
		return
	}
	if wantsSHA(r.Header.Values("Accept")) {
		etag := `"` + sha + `"`
		w.Header().Set("ETag", etag)
		w.Header().Set("X-GitHub-Media-Type", "github.v3; param=sha")
		if inm := r.Header.Get("If-None-Match"); inm != "" && (inm == "*" || strings.Contains(inm, etag)) {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("Content-Type", "application/vnd.github.sha; charset=utf-8")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte(sha))
		return
	}
	cm := c.repo.commits[sha]
	repoURL := s.repoURL(c.repo)
	html := "https://github.com/" + s.opts.Org + "/" + c.repo.name
	tree := sha1.Sum([]byte("tree " + sha)) // stands in for the tree, which the fake does not model
	parents := make([]parentBody, len(cm.Parents))
	for i, p := range cm.Parents {
		parents[i] = parentBody{SHA: p, URL: repoURL + "/commits/" + p, HTMLURL: html + "/commit/" + p}
	}
	who := func(date string) gitUserBody {
		return gitUserBody{Name: cm.AuthorName, Email: cm.AuthorEmail, Date: date}
	}
	writeJSON(w, http.StatusOK, commitBody{
		URL:         repoURL + "/commits/" + sha,
		SHA:         sha,
		NodeID:      "C_kwDO" + sha[:20],
		HTMLURL:     html + "/commit/" + sha,
		CommentsURL: repoURL + "/commits/" + sha + "/comments",
		Commit: gitCommitBody{
			URL:          repoURL + "/git/commits/" + sha,
			Author:       who(timestamp(cm.AuthorDate)),
			Committer:    who(timestamp(cm.CommitterDate)),
			Message:      cm.Message,
			Tree:         treeBody{SHA: hex.EncodeToString(tree[:]), URL: repoURL + "/git/trees/" + hex.EncodeToString(tree[:])},
			Verification: verificationBody{Reason: "unsigned"},
		},
		Parents: parents,
		Files:   []struct{}{},
	})
}
