package githubtest

import (
	"net/http"
	"strings"
)

// orgDocsURL documents GET /orgs/{org}.
const orgDocsURL = "https://docs.github.com/rest/orgs/orgs#get-an-organization"

// organization is the part of components/schemas/organization-full a client may read.
type organization struct {
	Login       string `json:"login"`
	ID          int64  `json:"id"`
	NodeID      string `json:"node_id"`
	URL         string `json:"url"`
	HTMLURL     string `json:"html_url"`
	Description string `json:"description"`
	Type        string `json:"type"`
}

// handleOrg serves GET /orgs/{org} (https://docs.github.com/rest/orgs/orgs#get-an-organization), the
// read-only call with which a client checks its credentials and organization before posting anything.
//
// GitHub serves an organization's public profile without credentials too; this fake requires them, as its
// other endpoints do, so that a client which forgot to send them is caught. Bad credentials get 401, like
// GitHub (which never falls back to anonymous access for a request that carries an Authorization header).
func (s *Server) handleOrg(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		writeError(w, http.StatusNotFound, "Not Found", orgDocsURL)
		return
	}
	if r.Header.Get("User-Agent") == "" {
		writeError(w, http.StatusForbidden, "Request forbidden by administrative rules. Please make sure your request has a User-Agent header.",
			"https://docs.github.com/rest/using-the-rest-api/getting-started-with-the-rest-api#user-agent")
		return
	}
	if ok, msg := s.authenticate(r); !ok {
		writeError(w, http.StatusUnauthorized, msg, "https://docs.github.com/rest")
		return
	}
	if !strings.EqualFold(r.PathValue("org"), s.opts.Org) {
		writeError(w, http.StatusNotFound, "Not Found", orgDocsURL)
		return
	}
	base := strings.TrimSuffix(s.URL(), "/")
	writeJSON(w, http.StatusOK, organization{
		Login:   s.opts.Org,
		ID:      1,
		NodeID:  "O_kgDOAAAAAQ",
		URL:     base + "/orgs/" + s.opts.Org,
		HTMLURL: "https://github.com/" + s.opts.Org,
		Type:    "Organization",
	})
}
