package githubtest

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestGetCommit(t *testing.T) {
	tests := []struct {
		ref     string
		wantSHA string // "" for 422
	}{
		{ref: "main", wantSHA: shaMain},
		{ref: "feature/x", wantSHA: shaFeature},
		{ref: url.PathEscape("feature/x"), wantSHA: shaFeature}, // go-github escapes each segment; an escaped slash works too
		{ref: "heads/feature/x", wantSHA: shaFeature},
		{ref: "v1.0.0", wantSHA: shaTag},
		{ref: "refs/tags/v1.0.0", wantSHA: shaTag},
		{ref: shaFeature, wantSHA: shaFeature},
		{ref: shaTag[:10], wantSHA: shaTag},
		{ref: shaMain[:7]}, // ambiguous
		{ref: "nope"},
		{ref: "0123456789012345678901234567890123456789"},
	}
	for _, tt := range tests {
		t.Run(tt.ref, func(t *testing.T) {
			s, _ := newRepoServer(t, Options{})
			got := send(t, s, http.MethodGet, "/repos/octo-org/app/commits/"+tt.ref, nil, nil)
			if tt.wantSHA == "" {
				if got.status != http.StatusUnprocessableEntity {
					t.Fatalf("status %d, want 422: %s", got.status, got.body)
				}
				if e := decodeError(t, got.body); e.Message != "No commit found for SHA: "+tt.ref || e.DocumentationURL != getCommitDocs {
					t.Errorf("error %+v", e)
				}
				return
			}
			if got.status != http.StatusOK {
				t.Fatalf("status %d: %s", got.status, got.body)
			}
			if c := decodeJSON[commitBody](t, got); c.SHA != tt.wantSHA {
				t.Errorf("sha %s, want %s", c.SHA, tt.wantSHA)
			}
		})
	}
}

func TestGetCommitBody(t *testing.T) {
	s, _ := newRepoServer(t, Options{})
	got := send(t, s, http.MethodGet, "/repos/octo-org/app/commits/main", nil, nil)
	if got.status != http.StatusOK {
		t.Fatalf("status %d: %s", got.status, got.body)
	}
	body := decodeJSON[map[string]any](t, got)
	base := s.URL() + "/repos/octo-org/app"
	commit := body["commit"].(map[string]any)
	want := map[string]any{
		"url": base + "/commits/" + shaMain, "sha": shaMain, "html_url": "https://github.com/octo-org/app/commit/" + shaMain,
		"author": nil, "committer": nil,
		"parents":        []any{map[string]any{"sha": shaTag, "url": base + "/commits/" + shaTag, "html_url": "https://github.com/octo-org/app/commit/" + shaTag}},
		"commit.message": "Fix the thing", "commit.url": base + "/git/commits/" + shaMain,
		"commit.author":    map[string]any{"name": DefaultAuthorName, "email": DefaultAuthorEmail, "date": "2026-03-01T11:00:00Z"},
		"commit.committer": map[string]any{"name": DefaultAuthorName, "email": DefaultAuthorEmail, "date": "2026-03-01T11:30:00Z"},
	}
	gotFields := map[string]any{}
	for k := range want {
		if sub, ok := strings.CutPrefix(k, "commit."); ok {
			gotFields[k] = commit[sub]
		} else {
			gotFields[k] = body[k]
		}
	}
	if diff := cmp.Diff(want, gotFields); diff != "" {
		t.Errorf("commit (-want +got):\n%s", diff)
	}
	for _, k := range []string{"node_id", "comments_url", "stats", "files"} {
		if _, ok := body[k]; !ok {
			t.Errorf("no %s", k)
		}
	}
	for _, d := range []string{"2026-03-01T11:00:00Z", "2026-03-01T11:30:00Z"} {
		if _, err := time.Parse(time.RFC3339, d); err != nil {
			t.Error(err)
		}
	}

	// A commit without dates or author gets the defaults; one without a committer date has the author's.
	other := decodeJSON[commitBody](t, send(t, s, http.MethodGet, "/repos/octo-org/app/commits/feature/x", nil, nil))
	wantOther := gitUserBody{Name: "Hubot", Email: "hubot@example.com", Date: "2026-03-01T10:00:00Z"}
	if diff := cmp.Diff([]gitUserBody{wantOther, wantOther}, []gitUserBody{other.Commit.Author, other.Commit.Committer}); diff != "" {
		t.Errorf("author and committer (-want +got):\n%s", diff)
	}
	if other.Parents == nil || len(other.Parents) != 0 {
		t.Errorf("parents %v, want []", other.Parents)
	}
}

// The media type go-github's GetCommitSHA1 asks for: the bare SHA, and 304 when it is the one the client has.
func TestGetCommitSHA(t *testing.T) {
	tests := []struct {
		name        string
		accept      string
		ifNoneMatch string
		ref         string
		wantStatus  int
		wantBody    string
	}{
		{name: "v3 sha", accept: "application/vnd.github.v3.sha", ref: "main", wantStatus: 200, wantBody: shaMain},
		{name: "sha", accept: "application/vnd.github.sha", ref: "v1.0.0", wantStatus: 200, wantBody: shaTag},
		{name: "unchanged", accept: "application/vnd.github.v3.sha", ifNoneMatch: `"` + shaMain + `"`, ref: "main", wantStatus: 304},
		{name: "changed", accept: "application/vnd.github.v3.sha", ifNoneMatch: `"` + shaTag + `"`, ref: "main", wantStatus: 200, wantBody: shaMain},
		{name: "unknown ref", accept: "application/vnd.github.v3.sha", ref: "nope", wantStatus: 422},
		{name: "diff is not served", accept: "application/vnd.github.diff", ref: "main", wantStatus: 415},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := newRepoServer(t, Options{})
			got := send(t, s, http.MethodGet, "/repos/octo-org/app/commits/"+tt.ref, nil, func(r *http.Request) {
				r.Header.Set("Accept", tt.accept)
				if tt.ifNoneMatch != "" {
					r.Header.Set("If-None-Match", tt.ifNoneMatch)
				}
			})
			if got.status != tt.wantStatus {
				t.Fatalf("status %d, want %d: %s", got.status, tt.wantStatus, got.body)
			}
			if tt.wantStatus == http.StatusOK {
				if string(got.body) != tt.wantBody {
					t.Errorf("body %q, want %q", got.body, tt.wantBody)
				}
				if etag := got.header.Get("ETag"); etag != `"`+tt.wantBody+`"` {
					t.Errorf("ETag %q", etag)
				}
			}
		})
	}
}
