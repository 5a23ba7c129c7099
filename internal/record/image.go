package record

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/distribution/reference"
)

// Image is a container image reference as written in a pod spec, split into its parts.
type Image struct {
	// Name is the repository exactly as written, without tag or digest ("nginx", "ghcr.io/org/app",
	// "registry.local:5000/team/app"). Docker Hub short names are NOT normalized to docker.io/library/...:
	// the record names the artifact the way it was pushed and attested, and the way engineers wrote it.
	Name string
	// Tag is the tag, if any.
	Tag string
	// Digest is the digest ("sha256:<hex>") when the image is pinned by digest.
	Digest string
}

var sha256Digest = regexp.MustCompile(`^sha256:[a-f0-9]{64}$`)

// ValidDigest reports whether d is a digest GitHub accepts: "sha256:" followed by 64 lowercase hex digits.
func ValidDigest(d string) bool { return sha256Digest.MatchString(d) }

// ParseImage parses an image reference as it appears in a pod spec. It does not normalize the name.
func ParseImage(ref string) (Image, error) {
	parsed, err := reference.Parse(ref)
	if err != nil {
		return Image{}, fmt.Errorf("parse image reference %q: %w", ref, err)
	}
	named, ok := parsed.(reference.Named)
	if !ok {
		return Image{}, fmt.Errorf("parse image reference %q: no repository name", ref)
	}
	img := Image{Name: named.Name()}
	if t, ok := parsed.(reference.Tagged); ok {
		img.Tag = t.Tag()
	}
	if d, ok := parsed.(reference.Digested); ok {
		img.Digest = d.Digest().String()
		if !ValidDigest(img.Digest) {
			return Image{}, fmt.Errorf("parse image reference %q: digest %q is not sha256", ref, img.Digest)
		}
	}
	return img, nil
}

// RegistryDigest extracts the registry digest from a container status imageID. Runtimes report it as
// "<repo>@sha256:<hex>" (containerd, CRI-O) or "docker-pullable://<repo>@sha256:<hex>" (dockershim); a bare
// "sha256:<hex>" is the local image config digest of an image that was loaded rather than pulled, which no
// attestation can match: ok is false for it, as for an empty or unparseable imageID.
func RegistryDigest(imageID string) (digest string, ok bool) {
	id := imageID
	if i := strings.Index(id, "://"); i >= 0 {
		id = id[i+3:]
	}
	at := strings.LastIndexByte(id, '@')
	if at <= 0 {
		return "", false
	}
	if _, err := reference.Parse(id); err != nil {
		return "", false
	}
	d := id[at+1:]
	if !ValidDigest(d) {
		return "", false
	}
	return d, true
}
