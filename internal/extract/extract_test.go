package extract_test

import (
	"encoding/json"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/deployment-tracker/deployment-tracker/internal/extract"
)

const digest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// deployment reads testdata/deployment.json as unstructured content, the way the caller holds a workload.
func deployment(t testing.TB) map[string]any {
	t.Helper()
	data, err := os.ReadFile("testdata/deployment.json")
	if err != nil {
		t.Fatal(err)
	}
	var obj map[string]any
	if err := json.Unmarshal(data, &obj); err != nil {
		t.Fatal(err)
	}
	return obj
}

// containers returns the pod template's containers of a workload read by deployment.
func containers(t testing.TB, obj map[string]any) []extract.Container {
	t.Helper()
	spec := obj["spec"].(map[string]any)["template"].(map[string]any)["spec"].(map[string]any)
	var cs []extract.Container
	for _, c := range spec["containers"].([]any) {
		m := c.(map[string]any)
		cs = append(cs, extract.Container{Name: m["name"].(string), Image: m["image"].(string)})
	}
	return cs
}

func TestCompile(t *testing.T) {
	tests := []struct {
		name    string
		rule    extract.Rule
		wantErr string // a substring of the error; "" for none
		uses    bool
	}{
		{name: "zero rule", rule: extract.Rule{}},
		{name: "container", rule: extract.Rule{ContainerName: "app"}},
		{name: "jsonpath", rule: extract.Rule{JSONPath: "{.metadata.annotations.source-ref}"}, uses: true},
		{name: "one group", rule: extract.Rule{Regexp: `^v(\d+)`}},
		{name: "named group among others", rule: extract.Rule{Regexp: `^(v)(?P<ref>\d+)(x)?`}},
		{name: "no group", rule: extract.Rule{Regexp: `[0-9a-f]{7}`}},
		{
			name:    "both sources",
			rule:    extract.Rule{ContainerName: "app", JSONPath: "{.metadata.name}"},
			wantErr: `extract: container "app" and jsonpath "{.metadata.name}" are both set, want at most one`,
		},
		{name: "container not a DNS label", rule: extract.Rule{ContainerName: "App_1"}, wantErr: `extract: container "App_1": not a container name`},
		{name: "bad regexp", rule: extract.Rule{Regexp: "("}, wantErr: `extract: regexp "(": error parsing regexp`},
		{
			name:    "two groups without ref",
			rule:    extract.Rule{Regexp: `(v)(\d+)`},
			wantErr: `extract: regexp "(v)(\\d+)": 2 capture groups, want one or a group named ref`,
		},
		{name: "bad jsonpath", rule: extract.Rule{JSONPath: "{.metadata[}"}, wantErr: `extract: jsonpath "{.metadata[}": `},
		{name: "jsonpath without braces", rule: extract.Rule{JSONPath: ".metadata.name"}, wantErr: `want a template in braces`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := extract.Compile(tt.rule)
			if diff := cmp.Diff(tt.wantErr, errPart(err, tt.wantErr)); diff != "" {
				t.Fatalf("Compile(%+v) error (-want +got):\n%s", tt.rule, diff)
			}
			if err != nil {
				return
			}
			if diff := cmp.Diff(tt.uses, e.UsesObject()); diff != "" {
				t.Errorf("UsesObject (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRef(t *testing.T) {
	obj := deployment(t)
	cs := containers(t, obj)
	tests := []struct {
		name       string
		rule       extract.Rule
		obj        map[string]any // nil: no object, as the caller passes when UsesObject is false
		containers []extract.Container
		want       string
		wantErr    string // the whole error; "" for none
	}{
		{name: "first container by default", containers: cs, want: "v1.4.2"},
		{name: "named container", rule: extract.Rule{ContainerName: "sidecar"}, containers: cs, want: "v1.30.1"},
		{
			name:       "untagged image is latest",
			containers: []extract.Container{{Name: "app", Image: "localhost:5000/app@" + digest}},
			want:       "latest",
		},
		{
			name:       "container not found",
			rule:       extract.Rule{ContainerName: "web"},
			containers: cs,
			wantErr:    `container "web" not found (containers: app, sidecar)`,
		},
		{name: "no containers", wantErr: "the workload has no containers"},
		{name: "no image", containers: []extract.Container{{Name: "app"}}, wantErr: `container "app" has no image`},
		{name: "regexp group", rule: extract.Rule{Regexp: `^v(\d+\.\d+)`}, containers: cs, want: "1.4"},
		{name: "regexp named group", rule: extract.Rule{Regexp: `^(v)(?P<ref>\d+)\.(\d+)`}, containers: cs, want: "1"},
		{name: "regexp whole match", rule: extract.Rule{Regexp: `\d+\.\d+`}, containers: cs, want: "1.4"},
		{
			name:       "regexp does not match",
			rule:       extract.Rule{Regexp: `v(\d+)`},
			containers: []extract.Container{{Name: "app", Image: "app"}},
			wantErr:    `regexp "v(\\d+)" does not match "latest"`,
		},
		{
			name:       "optional group did not take part",
			rule:       extract.Rule{Regexp: `^v\d+(-rc)?`},
			containers: cs,
			wantErr:    `ref "" is not a valid git ref name: empty`,
		},
		{name: "template", rule: extract.Rule{Template: "refs/tags/{}"}, containers: cs, want: "refs/tags/v1.4.2"},
		{name: "template prefix", rule: extract.Rule{Regexp: `^v(.*)$`, Template: "release-"}, containers: cs, want: "release-1.4.2"},
		{name: "template twice", rule: extract.Rule{Template: "{}/{}"}, containers: cs, want: "v1.4.2/v1.4.2"},
		{name: "jsonpath annotation", rule: extract.Rule{JSONPath: "{.metadata.annotations.source-ref}"}, obj: obj, want: "refs/heads/main"},
		{
			name: "jsonpath dotted key",
			rule: extract.Rule{JSONPath: `{.metadata.annotations.example\.com/commit}`},
			obj:  obj,
			want: "0123456789abcdef0123456789abcdef01234567",
		},
		{
			name: "jsonpath bracket key, regexp and template",
			rule: extract.Rule{JSONPath: `{.metadata.labels['app\.kubernetes\.io/version']}`, Template: "v"},
			obj:  obj,
			want: "v1.4.2",
		},
		{
			name: "jsonpath with regexp",
			rule: extract.Rule{JSONPath: "{.metadata.annotations.build}", Regexp: `^release-(?P<ref>[^+]+)`},
			obj:  obj,
			want: "1.4.2",
		},
		{name: "jsonpath number", rule: extract.Rule{JSONPath: "{.spec.replicas}", Template: "r{}"}, obj: obj, want: "r3"},
		{name: "jsonpath int64", rule: extract.Rule{JSONPath: "{.n}"}, obj: map[string]any{"n": int64(42)}, want: "42"},
		{name: "jsonpath bool", rule: extract.Rule{JSONPath: "{.spec.paused}"}, obj: obj, want: "false"},
		{name: "jsonpath list element", rule: extract.Rule{JSONPath: "{.spec.template.spec.containers[1].name}"}, obj: obj, want: "sidecar"},
		{
			name:    "jsonpath missing key",
			rule:    extract.Rule{JSONPath: "{.metadata.annotations.x}"},
			obj:     obj,
			wantErr: "jsonpath {.metadata.annotations.x}: no value: x is not found",
		},
		{
			name:    "jsonpath index out of range",
			rule:    extract.Rule{JSONPath: "{.spec.template.spec.containers[5].name}"},
			obj:     obj,
			wantErr: "jsonpath {.spec.template.spec.containers[5].name}: no value: array index out of bounds: index 5, length 2",
		},
		{
			name:    "jsonpath null",
			rule:    extract.Rule{JSONPath: "{.metadata.annotations.cleared}"},
			obj:     obj,
			wantErr: "jsonpath {.metadata.annotations.cleared}: no value (null)",
		},
		{
			name:    "jsonpath two values",
			rule:    extract.Rule{JSONPath: "{.spec.template.spec.containers[*].name}"},
			obj:     obj,
			wantErr: "jsonpath {.spec.template.spec.containers[*].name}: 2 values, want exactly one",
		},
		{
			name:    "jsonpath two expressions",
			rule:    extract.Rule{JSONPath: "{.metadata.name}{.metadata.namespace}"},
			obj:     obj,
			wantErr: "jsonpath {.metadata.name}{.metadata.namespace}: 2 values, want exactly one",
		},
		{
			name:    "jsonpath filter without match",
			rule:    extract.Rule{JSONPath: `{.spec.template.spec.containers[?(@.name=="db")].image}`},
			obj:     obj,
			wantErr: `jsonpath {.spec.template.spec.containers[?(@.name=="db")].image}: no value`,
		},
		{
			name: "jsonpath filter",
			rule: extract.Rule{JSONPath: `{.spec.template.spec.containers[?(@.name=="sidecar")].image}`, Regexp: `:(.+)$`},
			obj:  obj,
			want: "v1.30.1",
		},
		{
			name:    "jsonpath map",
			rule:    extract.Rule{JSONPath: "{.metadata.labels}"},
			obj:     obj,
			wantErr: "jsonpath {.metadata.labels}: value is a map, want a string or number",
		},
		{
			name:    "jsonpath list",
			rule:    extract.Rule{JSONPath: "{.spec.template.spec.containers}"},
			obj:     obj,
			wantErr: "jsonpath {.spec.template.spec.containers}: value is a list, want a string or number",
		},
		{
			name:    "jsonpath without object",
			rule:    extract.Rule{JSONPath: "{.metadata.name}"},
			wantErr: "jsonpath {.metadata.name}: no object to read",
		},
		{
			name:    "empty value",
			rule:    extract.Rule{JSONPath: "{.metadata.annotations.empty}"},
			obj:     obj,
			wantErr: `ref "" is not a valid git ref name: empty`,
		},
		{
			name:    "whitespace",
			rule:    extract.Rule{JSONPath: "{.metadata.annotations.notes}"},
			obj:     obj,
			wantErr: `ref "two words" is not a valid git ref name: contains whitespace or a control character`,
		},
		{
			name:    "control character",
			rule:    extract.Rule{JSONPath: "{.r}"},
			obj:     map[string]any{"r": "main\x00"},
			wantErr: `ref "main\x00" is not a valid git ref name: contains whitespace or a control character`,
		},
		{
			name:    "dot dot",
			rule:    extract.Rule{JSONPath: "{.r}"},
			obj:     map[string]any{"r": "a..b"},
			wantErr: `ref "a..b" is not a valid git ref name: contains ".."`,
		},
		{
			name:       "leading dash",
			rule:       extract.Rule{Template: "-{}"},
			containers: cs,
			wantErr:    `ref "-v1.4.2" is not a valid git ref name: starts with "-"`,
		},
		{
			name:    "invalid UTF-8",
			rule:    extract.Rule{JSONPath: "{.r}"},
			obj:     map[string]any{"r": "v\xff"},
			wantErr: `ref "v\xff" is not a valid git ref name: not valid UTF-8`,
		},
		{name: "255 bytes", rule: extract.Rule{JSONPath: "{.r}"}, obj: map[string]any{"r": strings.Repeat("a", 255)}, want: strings.Repeat("a", 255)},
		{
			name:    "too long",
			rule:    extract.Rule{JSONPath: "{.r}"},
			obj:     map[string]any{"r": strings.Repeat("a", 256)},
			wantErr: "ref of 256 bytes is not a valid git ref name: longer than 255 bytes",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := extract.Compile(tt.rule)
			if err != nil {
				t.Fatalf("Compile(%+v): %v", tt.rule, err)
			}
			got, err := e.Ref(tt.obj, tt.containers)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Ref (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantErr, errString(err)); diff != "" {
				t.Errorf("Ref error (-want +got):\n%s", diff)
			}
		})
	}
}

// TestRefConcurrent runs one Extractor from many goroutines (run with -race): a JSONPath with a range block
// rewrites client-go's parse tree while it evaluates, so sharing one would go wrong.
func TestRefConcurrent(t *testing.T) {
	obj := deployment(t)
	e, err := extract.Compile(extract.Rule{JSONPath: `{range .spec.template.spec.containers[0:1]}{.name}{end}`})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make([]error, 16)
	got := make([]string, 16)
	for i := range errs {
		wg.Go(func() {
			for range 20 {
				got[i], errs[i] = e.Ref(obj, nil)
			}
		})
	}
	wg.Wait()
	for i := range errs {
		if errs[i] != nil || got[i] != "app" {
			t.Errorf("goroutine %d: Ref = %q, %v; want \"app\"", i, got[i], errs[i])
		}
	}
}

func TestParseFrom(t *testing.T) {
	tests := []struct {
		name    string
		from    string
		want    extract.Rule
		wantErr string
	}{
		{name: "empty", from: "", want: extract.Rule{}},
		{name: "container", from: "container:web", want: extract.Rule{ContainerName: "web"}},
		{name: "jsonpath", from: "{.metadata.annotations.source-ref}", want: extract.Rule{JSONPath: "{.metadata.annotations.source-ref}"}},
		{name: "surrounding whitespace", from: " container:web\n", want: extract.Rule{ContainerName: "web"}},
		{
			name:    "container without name",
			from:    "container:",
			wantErr: `extract: ref-from "container:": want "container:<name>" or a JSONPath template such as "{.metadata.annotations.source-ref}"`,
		},
		{
			name:    "other",
			from:    "image",
			wantErr: `extract: ref-from "image": want "container:<name>" or a JSONPath template such as "{.metadata.annotations.source-ref}"`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := extract.ParseFrom(tt.from)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParseFrom(%q) (-want +got):\n%s", tt.from, diff)
			}
			if diff := cmp.Diff(tt.wantErr, errString(err)); diff != "" {
				t.Errorf("ParseFrom(%q) error (-want +got):\n%s", tt.from, diff)
			}
		})
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// errPart returns want when err's message contains it, else the whole message, so that a diff shows it.
func errPart(err error, want string) string {
	s := errString(err)
	if want != "" && strings.Contains(s, want) {
		return want
	}
	return s
}
