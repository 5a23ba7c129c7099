package record

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const (
	hexA = "1bb1e949e55dcefc6353e7b36c8897d2a107d8e8dca49d4e3c0ea8493fc0bc72"
	hexB = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
)

func TestParseImage(t *testing.T) {
	tests := []struct {
		name    string
		ref     string
		want    Image
		wantErr string // substring of the error; "" means no error
	}{
		{name: "docker hub short name is not normalized", ref: "nginx:1.27", want: Image{Name: "nginx", Tag: "1.27"}},
		{name: "short name without tag", ref: "nginx", want: Image{Name: "nginx"}},
		{name: "docker hub library path kept as written", ref: "library/nginx:1.27", want: Image{Name: "library/nginx", Tag: "1.27"}},
		{name: "explicit docker.io kept as written", ref: "docker.io/library/nginx:latest", want: Image{Name: "docker.io/library/nginx", Tag: "latest"}},
		{name: "registry with port", ref: "localhost:5000/team/app:v1", want: Image{Name: "localhost:5000/team/app", Tag: "v1"}},
		{name: "registry with port, no tag", ref: "registry.local:5000/team/app", want: Image{Name: "registry.local:5000/team/app"}},
		{name: "digest pinned", ref: "ghcr.io/o/a@sha256:" + hexA, want: Image{Name: "ghcr.io/o/a", Digest: "sha256:" + hexA}},
		{name: "tag and digest", ref: "ghcr.io/o/a:v2.3.4@sha256:" + hexB, want: Image{Name: "ghcr.io/o/a", Tag: "v2.3.4", Digest: "sha256:" + hexB}},
		{name: "uppercase tag is allowed", ref: "ghcr.io/o/a:V1-RC", want: Image{Name: "ghcr.io/o/a", Tag: "V1-RC"}},
		{name: "uppercase registry host is allowed", ref: "GHCR.IO/o/a:v1", want: Image{Name: "GHCR.IO/o/a", Tag: "v1"}},
		{name: "empty", ref: "", wantErr: `parse image reference ""`},
		{name: "uppercase repository", ref: "Nginx:1.27", wantErr: "must be lowercase"},
		{name: "uppercase path component", ref: "ghcr.io/Org/app:v1", wantErr: "must be lowercase"},
		{name: "uppercase digest hex", ref: "ghcr.io/o/a@sha256:" + strings.ToUpper(hexA), wantErr: "invalid"},
		{name: "short digest", ref: "ghcr.io/o/a@sha256:abc", wantErr: "invalid"},
		{name: "sha512 digest", ref: "ghcr.io/o/a@sha512:" + hexA + hexB, wantErr: "digest"}, // "unsupported digest algorithm", or "not sha256" once crypto/sha512 is linked in,
		{name: "space", ref: "nginx 1.27", wantErr: "invalid reference format"},
		{name: "trailing colon", ref: "nginx:", wantErr: "invalid reference format"},
		{name: "scheme", ref: "https://ghcr.io/o/a", wantErr: "invalid reference format"},
		{name: "tag too long", ref: "nginx:" + strings.Repeat("a", 129), wantErr: "invalid reference format"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseImage(tt.ref)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseImage(%q) = %+v, %v; want an error containing %q", tt.ref, got, err, tt.wantErr)
				}
				if !strings.Contains(err.Error(), "parse image reference") {
					t.Errorf("ParseImage(%q) error %q lacks context", tt.ref, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseImage(%q): %v", tt.ref, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParseImage(%q) (-want +got):\n%s", tt.ref, diff)
			}
		})
	}
}

func TestValidDigest(t *testing.T) {
	tests := []struct {
		name   string
		digest string
		want   bool
	}{
		{name: "sha256", digest: "sha256:" + hexA, want: true},
		{name: "uppercase hex", digest: "sha256:" + strings.ToUpper(hexA)},
		{name: "63 hex digits", digest: "sha256:" + hexA[1:]},
		{name: "65 hex digits", digest: "sha256:" + hexA + "0"},
		{name: "no algorithm", digest: hexA},
		{name: "sha512", digest: "sha512:" + hexA + hexB},
		{name: "empty", digest: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ValidDigest(tt.digest); got != tt.want {
				t.Errorf("ValidDigest(%q) = %v, want %v", tt.digest, got, tt.want)
			}
		})
	}
}

func TestRegistryDigest(t *testing.T) {
	tests := []struct {
		name    string
		imageID string
		want    string
		wantOK  bool
	}{
		{name: "containerd", imageID: "ghcr.io/o/a@sha256:" + hexA, want: "sha256:" + hexA, wantOK: true},
		{name: "normalized docker hub", imageID: "docker.io/library/nginx@sha256:" + hexA, want: "sha256:" + hexA, wantOK: true},
		{name: "docker-pullable", imageID: "docker-pullable://nginx@sha256:" + hexA, want: "sha256:" + hexA, wantOK: true},
		{name: "docker-pullable with registry port", imageID: "docker-pullable://localhost:5000/team/app@sha256:" + hexB, want: "sha256:" + hexB, wantOK: true},
		{name: "tag and digest", imageID: "ghcr.io/o/a:v1@sha256:" + hexA, want: "sha256:" + hexA, wantOK: true},
		{name: "bare local config digest", imageID: "sha256:" + hexA},
		{name: "docker scheme with local config digest", imageID: "docker://sha256:" + hexA},
		{name: "empty", imageID: ""},
		{name: "no repository", imageID: "@sha256:" + hexA},
		{name: "short digest", imageID: "ghcr.io/o/a@sha256:abc"},
		{name: "uppercase hex", imageID: "ghcr.io/o/a@sha256:" + strings.ToUpper(hexA)},
		{name: "sha512", imageID: "ghcr.io/o/a@sha512:" + hexA + hexB},
		{name: "garbage", imageID: "not an image id"},
		{name: "garbage before the digest", imageID: "not a repo@sha256:" + hexA},
		{name: "tag only", imageID: "ghcr.io/o/a:v1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := RegistryDigest(tt.imageID)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("RegistryDigest(%q) = %q, %v; want %q, %v", tt.imageID, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}
