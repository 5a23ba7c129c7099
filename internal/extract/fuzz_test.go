package extract_test

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/distribution/reference"

	"github.com/deployment-tracker/deployment-tracker/internal/extract"
)

// checkRef fails t unless ref follows the rules Ref promises, checked here independently of the package.
func checkRef(t *testing.T, ref string) {
	t.Helper()
	if ref == "" || len(ref) > 255 || !utf8.ValidString(ref) || strings.Contains(ref, "..") || strings.HasPrefix(ref, "-") ||
		strings.ContainsFunc(ref, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) {
		t.Fatalf("Ref returned %q, not a valid git ref name", ref)
	}
}

func FuzzImageTag(f *testing.F) {
	for _, s := range []string{
		"ghcr.io/o/app:v1.2@" + digest, "localhost:5000/app", "app@" + digest, "app", "", ":", "@", "a:b/c", "a/b:c@d:e",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, image string) {
		tag := extract.ImageTag(image)
		if tag == "" || strings.ContainsAny(tag, "@/") {
			t.Fatalf("ImageTag(%q) = %q: want a non-empty tag without '@' or '/'", image, tag)
		}
		// For every reference the registry library accepts, the string rule gives its tag.
		if parsed, err := reference.Parse(image); err == nil {
			want := "latest"
			if tagged, ok := parsed.(reference.Tagged); ok {
				want = tagged.Tag()
			}
			if tag != want {
				t.Fatalf("ImageTag(%q) = %q, reference.Parse gives %q", image, tag, want)
			}
			checkRef(t, tag)
		}
	})
}

func FuzzRef(f *testing.F) {
	f.Add("ghcr.io/o/app:v1.2@"+digest, "", `^v(\d+)`, "refs/tags/{}", "v1")
	f.Add("app", "{.metadata.annotations.source-ref}", "", "", "refs/heads/main")
	f.Add("app:-x", "", `(?P<ref>.*)`, "..", "a b")
	f.Add("app:1", "{range .spec.l[*]}{.}{end}", "", "x", "")
	f.Add("app:1", "{.spec.l[?(@ > 1)]}", "", "", "")
	f.Add("app:1", `{.metadata.annotations['source-ref']}`, "[0-9]", "{}{}", "\x00")
	f.Fuzz(func(t *testing.T, image, path, re, tmpl, value string) {
		e, err := extract.Compile(extract.Rule{JSONPath: path, Regexp: re, Template: tmpl})
		if err != nil {
			return
		}
		obj := map[string]any{
			"metadata": map[string]any{"name": value, "annotations": map[string]any{"source-ref": value, "n": nil}},
			"spec":     map[string]any{"replicas": int64(3), "ok": true, "l": []any{value, int64(2), 1.5, nil, map[string]any{}}},
		}
		ref, err := e.Ref(obj, []extract.Container{{Name: "app", Image: image}, {Name: "b", Image: value}})
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error message")
			}
			return
		}
		checkRef(t, ref)
	})
}
