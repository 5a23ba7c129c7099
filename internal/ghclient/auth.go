package ghclient

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/bradleyfalzon/ghinstallation/v2"
)

// tokenFile is a token, read from a file when path is set and read again when the file changes. A file that
// becomes empty, unreadable or malformed keeps the last good token: a Secret being rewritten must not turn
// into a burst of 401s.
type tokenFile struct {
	path  string
	every time.Duration
	now   func() time.Time

	mu      sync.Mutex
	token   string
	mod     time.Time
	size    int64
	checked time.Time
}

// load reads the file; it fails when the file holds no usable token.
func (f *tokenFile) load() error {
	fi, err := os.Stat(f.path)
	if err != nil {
		return err
	}
	b, err := os.ReadFile(f.path)
	if err != nil {
		return err
	}
	tok := strings.TrimRight(string(b), "\r\n")
	if !validToken(tok) {
		return fmt.Errorf("%s holds no token, or one with whitespace besides a trailing newline", f.path)
	}
	f.token, f.mod, f.size = tok, fi.ModTime(), fi.Size()
	return nil
}

// get is the current token, read again first if the file changed since the last check (at most every
// f.every).
func (f *tokenFile) get() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.path == "" {
		return f.token
	}
	now := f.now()
	if now.Sub(f.checked) < f.every {
		return f.token
	}
	f.checked = now
	if fi, err := os.Stat(f.path); err == nil && (!fi.ModTime().Equal(f.mod) || fi.Size() != f.size) {
		_ = f.load() // a bad file keeps the last good token; the 401s that follow say why
	}
	return f.token
}

// tokenTransport authenticates with a bearer token.
type tokenTransport struct {
	base http.RoundTripper
	file *tokenFile
}

func (t *tokenTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	req.Header.Set("Authorization", "Bearer "+t.file.get())
	return t.base.RoundTrip(req)
}

func (t *tokenTransport) refused() {}

func (t *tokenTransport) secrets() []string { return []string{t.file.get()} }

// appTransport authenticates as a GitHub App installation through ghinstallation. It drops its cached
// installation token when GitHub refuses it, and starts over with a new key when the key file changes.
type appTransport struct {
	base    http.RoundTripper
	baseURL string
	app     AppConfig
	key     *keyFile

	mu  sync.RWMutex
	cur *ghinstallation.Transport
}

func newAppTransport(base http.RoundTripper, baseURL string, app AppConfig, every time.Duration, now func() time.Time) (*appTransport, error) {
	k := &keyFile{path: app.PrivateKeyPath, key: app.PrivateKey, every: every, now: now}
	if k.path != "" {
		if err := k.load(); err != nil {
			return nil, fmt.Errorf("App.PrivateKeyPath: %w", err)
		}
	}
	t := &appTransport{base: base, baseURL: baseURL, app: app, key: k}
	if err := t.reset(k.key); err != nil {
		return nil, fmt.Errorf("App private key: %w", err)
	}
	return t, nil
}

// reset starts over with an empty token cache. Each generation gets its own ghinstallation transport: they
// write to their AppsTransport when refreshing, so generations must not share one.
func (t *appTransport) reset(key []byte) error {
	itr, err := ghinstallation.New(t.base, t.app.AppID, t.app.InstallationID, key)
	if err != nil {
		return err
	}
	// The installation token is requested from BaseURL too, which makes GitHub Enterprise Server work.
	itr.BaseURL = t.baseURL
	t.mu.Lock()
	t.cur = itr
	t.mu.Unlock()
	return nil
}

func (t *appTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if key, changed := t.key.changed(); changed {
		_ = t.reset(key) // a key that does not parse keeps the current one; refusals say why
	}
	t.mu.RLock()
	cur := t.cur
	t.mu.RUnlock()
	return cur.RoundTrip(req)
}

func (t *appTransport) refused() { _ = t.reset(t.key.current()) }

// secrets: installation tokens never reach a message (ghinstallation keeps them); the key is not text.
func (t *appTransport) secrets() []string { return nil }

// keyFile is an App's private key, read again from its file when the file changes.
type keyFile struct {
	path  string
	every time.Duration
	now   func() time.Time

	mu      sync.Mutex
	key     []byte
	mod     time.Time
	size    int64
	checked time.Time
}

func (k *keyFile) load() error {
	fi, err := os.Stat(k.path)
	if err != nil {
		return err
	}
	b, err := os.ReadFile(k.path)
	if err != nil {
		return err
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return errors.New("empty file")
	}
	k.key, k.mod, k.size = b, fi.ModTime(), fi.Size()
	return nil
}

func (k *keyFile) current() []byte {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.key
}

// changed reports a new key when the file changed since the last check (at most every k.every).
func (k *keyFile) changed() ([]byte, bool) {
	if k.path == "" {
		return nil, false
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	now := k.now()
	if now.Sub(k.checked) < k.every {
		return nil, false
	}
	k.checked = now
	fi, err := os.Stat(k.path)
	if err != nil || (fi.ModTime().Equal(k.mod) && fi.Size() == k.size) {
		return nil, false
	}
	old := k.key
	if k.load() != nil || bytes.Equal(old, k.key) {
		return nil, false
	}
	return k.key, true
}

// boundedTransport bounds every response body to MaxResponseBytes and drains what is left, up to as much again,
// on Close so that the connection can be reused.
type boundedTransport struct{ base http.RoundTripper }

func (t boundedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	if err != nil || resp.Body == nil {
		return resp, err
	}
	resp.Body = &boundedBody{r: io.LimitReader(resp.Body, MaxResponseBytes), body: resp.Body}
	return resp, nil
}

type boundedBody struct {
	r    io.Reader
	body io.ReadCloser
}

func (b *boundedBody) Read(p []byte) (int, error) { return b.r.Read(p) }

func (b *boundedBody) Close() error {
	_, _ = io.CopyN(io.Discard, b.body, MaxResponseBytes)
	return b.body.Close()
}
