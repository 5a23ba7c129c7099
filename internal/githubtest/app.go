package githubtest

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	jwt "github.com/golang-jwt/jwt/v4"
)

// AppAuth is the GitHub App the server knows.
type AppAuth struct {
	// AppID is the App's ID, expected as the JWT "iss" claim.
	AppID int64
	// ClientID, if set, is accepted as "iss" too (GitHub recommends the client ID, and accepts both).
	ClientID string
	// InstallationID is the only installation tokens can be created for.
	InstallationID int64
	// PublicKey verifies the RS256 signature of the JWTs.
	PublicKey *rsa.PublicKey
}

// JWT rules from https://docs.github.com/apps/creating-github-apps/authenticating-with-a-github-app/generating-a-json-web-token-jwt-for-a-github-app:
// signed with RS256; iat in the past (60 s back is recommended against clock drift); exp no more than 10 minutes
// into the future; iss the App's client ID or ID.
const (
	maxJWTLifetime = 10 * time.Minute
	clockSkew      = 60 * time.Second
)

const appAuthDocs = "https://docs.github.com/rest/apps/apps#create-an-installation-access-token-for-an-app"

// GenerateAppKey returns a new 2048-bit RSA key and its PKCS #1 PEM encoding, the format GitHub hands out App
// private keys in.
func GenerateAppKey() (*rsa.PrivateKey, []byte, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, nil, fmt.Errorf("githubtest: generate app key: %w", err)
	}
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	return key, pemBytes, nil
}

// installationToken is the 201 body of the access token endpoint (components/schemas/installation-token).
type installationToken struct {
	Token               string `json:"token"`
	ExpiresAt           string `json:"expires_at"`
	RepositorySelection string `json:"repository_selection"`
}

// handleAccessToken serves POST /app/installations/{installation_id}/access_tokens.
func (s *Server) handleAccessToken(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.tokenCalls++
	s.mu.Unlock()
	if r.Method != http.MethodPost || s.opts.App == nil {
		writeError(w, http.StatusNotFound, "Not Found", appAuthDocs)
		return
	}
	if r.Header.Get("User-Agent") == "" {
		writeError(w, http.StatusForbidden, "Request forbidden by administrative rules. Please make sure your request has a User-Agent header.", appAuthDocs)
		return
	}
	// The optional body (repositories, permissions) narrows the token; it is read, bounded, and ignored.
	if _, err := io.Copy(io.Discard, http.MaxBytesReader(w, r.Body, s.opts.MaxBodyBytes)); err != nil {
		writeError(w, http.StatusRequestEntityTooLarge, "Payload Too Large", appAuthDocs)
		return
	}
	if msg := s.verifyJWT(r.Header.Get("Authorization")); msg != "" {
		writeError(w, http.StatusUnauthorized, msg, appAuthDocs)
		return
	}
	s.mu.Lock()
	f, injected := popLocked(&s.tokenFaults)
	s.mu.Unlock()
	if injected && (!serveFault(w, r, f) || f.Status != 0) {
		return
	}
	if r.PathValue("installation_id") != strconv.FormatInt(s.opts.App.InstallationID, 10) {
		writeError(w, http.StatusNotFound, "Not Found", appAuthDocs)
		return
	}
	tok, err := newToken()
	if err != nil {
		writeError(w, http.StatusInternalServerError, "Internal Server Error", appAuthDocs)
		return
	}
	exp := s.opts.Now().Add(s.opts.TokenTTL).UTC().Truncate(time.Second)
	s.mu.Lock()
	s.tokens[tok] = exp
	s.mu.Unlock()
	writeJSON(w, http.StatusCreated, installationToken{Token: tok, ExpiresAt: exp.Format(time.RFC3339), RepositorySelection: "all"})
}

// verifyJWT checks an "Authorization: Bearer <jwt>" header; it returns the error message, or "" if valid.
func (s *Server) verifyJWT(header string) string {
	scheme, raw, _ := strings.Cut(header, " ")
	if !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(raw) == "" {
		return "A JSON web token could not be decoded"
	}
	app := s.opts.App
	claims := &jwt.RegisteredClaims{}
	parser := jwt.NewParser(jwt.WithValidMethods([]string{jwt.SigningMethodRS256.Alg()}), jwt.WithoutClaimsValidation())
	if _, err := parser.ParseWithClaims(strings.TrimSpace(raw), claims, func(*jwt.Token) (any, error) {
		return app.PublicKey, nil
	}); err != nil {
		return "A JSON web token could not be decoded"
	}
	if claims.Issuer != strconv.FormatInt(app.AppID, 10) && (app.ClientID == "" || claims.Issuer != app.ClientID) {
		return "'Issuer' claim ('iss') must be the ID or client ID of the App"
	}
	now := s.opts.Now()
	if claims.IssuedAt == nil || claims.IssuedAt.After(now.Add(clockSkew)) {
		return "'Issued at' claim ('iat') must be an Integer representing the time that the assertion was issued"
	}
	if claims.ExpiresAt == nil || !claims.ExpiresAt.After(now) {
		return "'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires"
	}
	if claims.ExpiresAt.After(now.Add(maxJWTLifetime + clockSkew)) {
		return "'Expiration time' claim ('exp') is too far in the future"
	}
	return ""
}

// newToken returns an installation token shaped like GitHub's: "ghs_" and 36 alphanumerics.
func newToken() (string, error) {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, 36)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("githubtest: token: %w", err)
	}
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return "ghs_" + string(b), nil
}
