package deploy_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/deployment-tracker/deployment-tracker/deploy/manifest"
	githubv1alpha1 "github.com/deployment-tracker/deployment-tracker/internal/apis/github/v1alpha1"
)

// TestExampleGitHubDeployment: examples/githubdeployment.yaml is a GitHubDeployment the shipped CRD accepts
// and the tracker can use. It is of a served version of the CRD, its spec satisfies the CRD's schema (checked by
// schemaErrors below: required fields, types, patterns, lengths, enums, no unknown fields; the CEL rules and the
// namespace policy need an API server, so the end-to-end suite is their place), it decodes strictly into the Go
// type, and it names a workload of its own namespace with a regexp that compiles.
func TestExampleGitHubDeployment(t *testing.T) {
	b := loadBundle(t)
	crd := b.crds["GitHubDeployment"]
	u := exampleGitHubDeployment(t)
	gvk := u.GroupVersionKind()
	served := slices.ContainsFunc(crd.Spec.Versions, func(v apiextensionsv1.CustomResourceDefinitionVersion) bool {
		return v.Name == gvk.Version && v.Served
	})
	if gvk.Group != crd.Spec.Group || gvk.Kind != crd.Spec.Names.Kind || !served {
		t.Fatalf("example is a %s, the CRD serves %s %s", gvk, crd.Spec.Group, crd.Spec.Names.Kind)
	}
	if u.GetNamespace() == "" {
		t.Error("example without a namespace: GitHubDeployment is namespaced, and reports workloads of its namespace")
	}
	if _, ok := u.Object["status"]; ok {
		t.Error("example with a status: the tracker writes it")
	}
	for _, e := range schemaErrors("spec", specSchema(t, crd, gvk.Version), u.Object["spec"]) {
		t.Errorf("the CRD refuses the example: %s", e)
	}

	j, err := u.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	var d githubv1alpha1.GitHubDeployment
	dec := json.NewDecoder(bytes.NewReader(j))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("decoding into githubv1alpha1.GitHubDeployment: %v", err)
	}
	if _, _, err := d.Source(); err != nil {
		t.Errorf("Source() error = %v", err)
	}
	if _, err := regexp.Compile(d.Spec.Extract.Regexp); err != nil {
		t.Errorf("extract.regexp: %v", err)
	}
	if d.Spec.Extract.ContainerName != "" && d.Spec.Extract.JSONPath != "" {
		t.Error("extract: both containerName and jsonPath (the CRD's rule refuses it)")
	}
}

// TestSchemaErrorsRefuseBrokenExamples: schemaErrors finds what the API server would refuse, so that the example
// test does not pass vacuously: each change of the example breaks one rule of the CRD.
func TestSchemaErrorsRefuseBrokenExamples(t *testing.T) {
	b := loadBundle(t)
	crd := b.crds["GitHubDeployment"]
	tests := []struct {
		name   string
		mutate func(spec map[string]any)
		want   string // in one of the errors
	}{
		{"repository with two slashes", func(s map[string]any) { s["repository"].(map[string]any)["name"] = "a/b/c" }, "spec.repository.name"},
		{"no repository", func(s map[string]any) { delete(s, "repository") }, "required field repository"},
		{"no kind", func(s map[string]any) { delete(s["sourceRef"].(map[string]any), "kind") }, "required field kind"},
		{"description too long", func(s map[string]any) { s["description"] = strings.Repeat("x", 141) }, "spec.description"},
		{"environment too long", func(s map[string]any) { s["repository"].(map[string]any)["environment"] = strings.Repeat("e", 256) }, "spec.repository.environment"},
		{"ftp URL", func(s map[string]any) { s["environmentURL"] = "ftp://shop.example.com" }, "spec.environmentURL"},
		{"not a URL", func(s map[string]any) { s["environmentURL"] = "https://%zz" }, "spec.environmentURL"},
		{"production as a string", func(s map[string]any) { s["productionEnvironment"] = "yes" }, "spec.productionEnvironment"},
		{"misspelt field", func(s map[string]any) { s["environmentUrl"] = "https://shop.example.com" }, "unknown field environmentUrl"},
		{"apiVersion with two slashes", func(s map[string]any) { s["sourceRef"].(map[string]any)["apiVersion"] = "a/b/c" }, "spec.sourceRef.apiVersion"},
		{"namespace not a name", func(s map[string]any) { s["sourceRef"].(map[string]any)["namespace"] = "Shop" }, "spec.sourceRef.namespace"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := exampleGitHubDeployment(t)
			spec := u.Object["spec"].(map[string]any)
			tt.mutate(spec)
			errs := schemaErrors("spec", specSchema(t, crd, "v1alpha1"), spec)
			if !slices.ContainsFunc(errs, func(e string) bool { return strings.Contains(e, tt.want) }) {
				t.Errorf("schemaErrors() = %q, want an error about %q", errs, tt.want)
			}
		})
	}
}

func exampleGitHubDeployment(t *testing.T) *unstructured.Unstructured {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("examples", "githubdeployment.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	objs, err := manifest.Parse(data)
	if err != nil || len(objs) != 1 {
		t.Fatalf("examples/githubdeployment.yaml: want one object, got %d (%v)", len(objs), err)
	}
	return objs[0]
}

func specSchema(t *testing.T, crd *apiextensionsv1.CustomResourceDefinition, version string) apiextensionsv1.JSONSchemaProps {
	t.Helper()
	for _, v := range crd.Spec.Versions {
		if v.Name == version && v.Schema != nil && v.Schema.OpenAPIV3Schema != nil {
			return v.Schema.OpenAPIV3Schema.Properties["spec"]
		}
	}
	t.Fatalf("CRD %s: no schema of version %s", crd.Name, version)
	return apiextensionsv1.JSONSchemaProps{}
}

// schemaErrors checks v against the structural schema s the way the API server's OpenAPI validation does for
// the keywords controller-gen emits here (type, properties, required, pattern, minLength, maxLength, format uri,
// enum, minimum, maxItems, items); it does not evaluate x-kubernetes-validations (CEL). Unknown fields are
// errors, as a strict kubectl apply reports them (the API server would prune them silently).
func schemaErrors(path string, s apiextensionsv1.JSONSchemaProps, v any) []string {
	var errs []string
	bad := func(format string, a ...any) { errs = append(errs, path+": "+fmt.Sprintf(format, a...)) }
	if len(s.Enum) > 0 {
		j, _ := json.Marshal(v)
		if !slices.ContainsFunc(s.Enum, func(e apiextensionsv1.JSON) bool { return bytes.Equal(e.Raw, j) }) {
			bad("%s is not one of the enum", j)
		}
	}
	switch s.Type {
	case "object":
		m, ok := v.(map[string]any)
		if !ok {
			bad("%T, want an object", v)
			return errs
		}
		for _, r := range s.Required {
			if _, ok := m[r]; !ok {
				bad("required field %s missing", r)
			}
		}
		for _, k := range sortedKeys(m) {
			switch p, ok := s.Properties[k]; {
			case ok:
				errs = append(errs, schemaErrors(path+"."+k, p, m[k])...)
			case s.AdditionalProperties != nil && s.AdditionalProperties.Schema != nil:
				errs = append(errs, schemaErrors(path+"."+k, *s.AdditionalProperties.Schema, m[k])...)
			default:
				bad("unknown field %s", k)
			}
		}
	case "array":
		a, ok := v.([]any)
		if !ok {
			bad("%T, want an array", v)
			return errs
		}
		if s.MaxItems != nil && int64(len(a)) > *s.MaxItems {
			bad("%d items, at most %d", len(a), *s.MaxItems)
		}
		if s.Items != nil && s.Items.Schema != nil {
			for i, item := range a {
				errs = append(errs, schemaErrors(fmt.Sprintf("%s[%d]", path, i), *s.Items.Schema, item)...)
			}
		}
	case "string":
		str, ok := v.(string)
		if !ok {
			bad("%T, want a string", v)
			return errs
		}
		n := int64(utf8.RuneCountInString(str))
		if s.MinLength != nil && n < *s.MinLength || s.MaxLength != nil && n > *s.MaxLength {
			bad("%d characters, want %v to %v", n, s.MinLength, s.MaxLength)
		}
		if s.Pattern != "" {
			if re, err := regexp.Compile(s.Pattern); err != nil || !re.MatchString(str) {
				bad("%q does not match %s (%v)", str, s.Pattern, err)
			}
		}
		if s.Format == "uri" {
			if u, err := url.Parse(str); err != nil || u.Scheme == "" {
				bad("%q is not a URI (%v)", str, err)
			}
		}
	case "boolean":
		if _, ok := v.(bool); !ok {
			bad("%T, want a boolean", v)
		}
	case "integer":
		i, ok := v.(int64)
		if !ok {
			bad("%T, want an integer", v)
			return errs
		}
		if s.Minimum != nil && float64(i) < *s.Minimum {
			bad("%d, at least %v", i, *s.Minimum)
		}
	default:
		bad("schema type %q: not checked here", s.Type)
	}
	return errs
}
