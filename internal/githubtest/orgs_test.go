package githubtest

import (
	"encoding/json"
	"io"
	"net/http"
	"testing"
)

func TestOrgEndpoint(t *testing.T) {
	s := newServer(t, Options{Org: "octo-org", PathPrefix: "/api/v3"})
	tests := []struct {
		name       string
		method     string
		org        string
		auth       string
		noAgent    bool
		wantStatus int
	}{
		{name: "token", method: http.MethodGet, org: "octo-org", auth: "Bearer " + testPAT, wantStatus: http.StatusOK},
		{name: "org case-insensitive", method: http.MethodGet, org: "Octo-Org", auth: "token " + testPAT, wantStatus: http.StatusOK},
		{name: "unknown org", method: http.MethodGet, org: "other-org", auth: "Bearer " + testPAT, wantStatus: http.StatusNotFound},
		{name: "bad token", method: http.MethodGet, org: "octo-org", auth: "Bearer nope", wantStatus: http.StatusUnauthorized},
		{name: "bad token, unknown org", method: http.MethodGet, org: "other-org", auth: "Bearer nope", wantStatus: http.StatusUnauthorized},
		{name: "no credentials", method: http.MethodGet, org: "octo-org", wantStatus: http.StatusUnauthorized},
		{name: "no user agent", method: http.MethodGet, org: "octo-org", auth: "Bearer " + testPAT, noAgent: true, wantStatus: http.StatusForbidden},
		{name: "not read-only", method: http.MethodPost, org: "octo-org", auth: "Bearer " + testPAT, wantStatus: http.StatusNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequestWithContext(t.Context(), tt.method, s.URL()+"/orgs/"+tt.org, nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Accept", MediaType)
			req.Header.Set("User-Agent", "test")
			if tt.noAgent {
				req.Header.Set("User-Agent", "") // an empty value stops net/http from sending its own
			}
			if tt.auth != "" {
				req.Header.Set("Authorization", tt.auth)
			}
			resp, err := s.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.wantStatus, body)
			}
			if tt.wantStatus != http.StatusOK {
				return
			}
			var org struct {
				Login string `json:"login"`
				Type  string `json:"type"`
			}
			if err := json.Unmarshal(body, &org); err != nil {
				t.Fatalf("decode %s: %v", body, err)
			}
			if org.Login != "octo-org" || org.Type != "Organization" {
				t.Errorf("got %+v, want login octo-org of type Organization", org)
			}
		})
	}
}
