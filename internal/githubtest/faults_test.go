package githubtest

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"testing"
	"time"

	jwt "github.com/golang-jwt/jwt/v4"
	"github.com/google/go-cmp/cmp"
)

func TestFaults(t *testing.T) {
	reset := time.Unix(1900000000, 0)
	type answer struct {
		Status  int
		Message string
		Header  map[string]string // selected headers; "" means absent
	}
	rateHeaders := []string{"Retry-After", "X-Ratelimit-Remaining", "X-Ratelimit-Reset"}
	tests := []struct {
		name   string
		inject func(s *Server)
		body   func() map[string]any
		want   []answer // the answers to consecutive valid requests
	}{
		{
			name:   "next two fail with 503",
			inject: func(s *Server) { s.FailNext(2, http.StatusServiceUnavailable) },
			want: []answer{
				{Status: 503, Message: "Service Unavailable"},
				{Status: 503, Message: "Service Unavailable"},
				{Status: 200},
			},
		},
		{
			name:   "faults queue in order",
			inject: func(s *Server) { s.FailNext(1, 500); s.FailNext(1, 502) },
			want:   []answer{{Status: 500, Message: "Internal Server Error"}, {Status: 502, Message: "Bad Gateway"}, {Status: 200}},
		},
		{
			name:   "429 with Retry-After",
			inject: func(s *Server) { s.TooManyRequestsNext(1, 1500*time.Millisecond) },
			want: []answer{
				{Status: 429, Message: SecondaryRateLimitMessage, Header: map[string]string{"Retry-After": "2", "X-Ratelimit-Remaining": "", "X-Ratelimit-Reset": ""}},
				{Status: 200},
			},
		},
		{
			name:   "primary rate limit",
			inject: func(s *Server) { s.PrimaryRateLimitNext(1, reset) },
			want: []answer{
				{Status: 403, Message: PrimaryRateLimitMessage, Header: map[string]string{"Retry-After": "", "X-Ratelimit-Remaining": "0", "X-Ratelimit-Reset": "1900000000"}},
				{Status: 200},
			},
		},
		{
			name:   "secondary rate limit with Retry-After",
			inject: func(s *Server) { s.SecondaryRateLimitNext(1, 30*time.Second) },
			want: []answer{
				{Status: 403, Message: SecondaryRateLimitMessage, Header: map[string]string{"Retry-After": "30", "X-Ratelimit-Remaining": "", "X-Ratelimit-Reset": ""}},
				{Status: 200},
			},
		},
		{
			name:   "secondary rate limit without headers",
			inject: func(s *Server) { s.SecondaryRateLimitNext(1, 0) },
			want: []answer{
				{Status: 403, Message: SecondaryRateLimitMessage, Header: map[string]string{"Retry-After": "", "X-Ratelimit-Remaining": "", "X-Ratelimit-Reset": ""}},
				{Status: 200},
			},
		},
		{
			name: "custom fault",
			inject: func(s *Server) {
				s.InjectNext(1, Fault{Status: 403, Message: "Resource not accessible by integration"})
			},
			want: []answer{{Status: 403, Message: "Resource not accessible by integration"}, {Status: 200}},
		},
		{
			name:   "unknown artifact by digest",
			inject: func(s *Server) { s.UnknownArtifact("", testDigest) },
			want:   []answer{{Status: 404, Message: UnknownArtifactMessage}, {Status: 404, Message: UnknownArtifactMessage}},
		},
		{
			name:   "unknown artifact by name and digest, other digest",
			inject: func(s *Server) { s.UnknownArtifact("ghcr.io/octo-org/app", testDigest2) },
			want:   []answer{{Status: 200}},
		},
		{
			name:   "unknown artifact cleared",
			inject: func(s *Server) { s.UnknownArtifact("ghcr.io/octo-org/app", ""); s.ClearUnknownArtifacts() },
			want:   []answer{{Status: 200}},
		},
		{
			name:   "reset",
			inject: func(s *Server) { s.FailNext(5, 500); s.SetDelay(time.Hour); s.UnknownArtifact("", ""); s.Reset() },
			want:   []answer{{Status: 200}},
		},
		{
			name:   "slow but successful",
			inject: func(s *Server) { s.DelayNext(1, 10*time.Millisecond) },
			want:   []answer{{Status: 200}},
		},
		{
			name:   "invalid record still fails after a delay-only fault",
			inject: func(s *Server) { s.DelayNext(1, time.Millisecond) },
			body:   func() map[string]any { b := validBody(); delete(b, "digest"); return b },
			want:   []answer{{Status: 422, Message: "Invalid request.\n\n\"digest\" wasn't supplied."}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newServer(t, Options{})
			tt.inject(s)
			var got []answer
			wantOK := 0
			for _, w := range tt.want {
				body := validBody()
				if tt.body != nil {
					body = tt.body()
				}
				r := post(t, s, body, nil)
				a := answer{Status: r.status}
				if r.status != http.StatusOK {
					a.Message = decodeError(t, r.body).Message
				} else {
					wantOK++
				}
				if w.Header != nil {
					a.Header = map[string]string{}
					for _, h := range rateHeaders {
						a.Header[h] = r.header.Get(h)
					}
				}
				got = append(got, a)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("answers (-want +got):\n%s", diff)
			}
			if n := len(s.Accepted()); n != wantOK {
				t.Errorf("accepted %d records, want %d", n, wantOK)
			}
			if s.Calls() != len(tt.want) {
				t.Errorf("Calls = %d, want %d", s.Calls(), len(tt.want))
			}
			wantCounts := map[int]int{}
			for _, w := range tt.want {
				wantCounts[w.Status]++
			}
			if diff := cmp.Diff(wantCounts, s.StatusCounts()); diff != "" {
				t.Errorf("StatusCounts (-want +got):\n%s", diff)
			}
		})
	}
}

func TestFaultsComeAfterAuthentication(t *testing.T) {
	s := newServer(t, Options{})
	s.FailNext(1, 500)
	if got := post(t, s, validBody(), func(r *http.Request) { r.Header.Del("Authorization") }); got.status != http.StatusUnauthorized {
		t.Fatalf("unauthenticated: status %d, want 401", got.status)
	}
	if got := post(t, s, validBody(), nil); got.status != http.StatusInternalServerError {
		t.Fatalf("authenticated: status %d, want the injected 500", got.status)
	}
}

func TestDelayAbandonedByClient(t *testing.T) {
	s := newServer(t, Options{})
	s.SetDelay(time.Hour)
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.URL()+"/orgs/octo-org/artifacts/metadata/deployment-record", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Client().Do(req); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Do = %v, want a deadline error", err)
	}
	wait, cancelWait := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancelWait()
	if err := s.WaitForCalls(wait, 1); err != nil {
		t.Fatal(err)
	}
	if s.Calls() != 1 || len(s.StatusCounts()) != 0 || len(s.Accepted()) != 0 {
		t.Errorf("Calls %d, StatusCounts %v, Accepted %v: want 1, none, none", s.Calls(), s.StatusCounts(), s.Accepted())
	}
}

func TestTokenFaults(t *testing.T) {
	key, _, err := GenerateAppKey()
	if err != nil {
		t.Fatal(err)
	}
	s := newServer(t, Options{App: &AppAuth{AppID: appID, InstallationID: installID, PublicKey: &key.PublicKey}})
	s.InjectTokenNext(1, Fault{Status: http.StatusServiceUnavailable})
	now := time.Now()
	auth := "Bearer " + signJWT(t, key, jwt.SigningMethodRS256, strconv.Itoa(appID), now.Add(-30*time.Second), now.Add(time.Minute))
	if status, _, _ := requestToken(t, s, installID, auth); status != http.StatusServiceUnavailable {
		t.Fatalf("first token request: status %d, want 503", status)
	}
	if status, _, _ := requestToken(t, s, installID, auth); status != http.StatusCreated {
		t.Fatalf("second token request: status %d, want 201", status)
	}
	if s.Calls() != 0 {
		t.Errorf("record endpoint Calls = %d, want 0", s.Calls())
	}
}
