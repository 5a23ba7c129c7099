package extract

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/util/jsonpath"
)

// Rule says where the ref comes from and how it is shaped. At most one of ContainerName and JSONPath; with
// neither, the first container is used.
type Rule struct {
	// ContainerName names the container whose image tag is the ref.
	ContainerName string
	// JSONPath is a client-go JSONPath template over the workload object, in braces, e.g.
	// {.metadata.annotations.source-ref}; it must yield exactly one value (a string, number or bool).
	JSONPath string
	// Regexp, optional, selects part of the value: the match's group named "ref", else its only capture group,
	// else (no group) the whole match. No match is an error.
	Regexp string
	// Template, optional, shapes the ref: "{}" is replaced by it; a template without "{}" is a prefix.
	Template string
}

// Container is one container of the workload's pod template, in template order.
type Container struct{ Name, Image string }

// Extractor is a compiled Rule; safe for concurrent use.
type Extractor struct {
	rule  Rule
	re    *regexp.Regexp // nil without Regexp
	group int            // the submatch index of the ref in re
}

// maxRefBytes bounds the ref: GitHub and git hosts reject longer ref names, and the ref lands in conditions.
const maxRefBytes = 255

// Compile validates r and prepares it for Ref. Errors name the field at fault.
func Compile(r Rule) (*Extractor, error) {
	e := &Extractor{rule: r}
	if r.ContainerName != "" && r.JSONPath != "" {
		return nil, fmt.Errorf("extract: container %q and jsonpath %q are both set, want at most one", r.ContainerName, r.JSONPath)
	}
	if r.ContainerName != "" {
		if errs := validation.IsDNS1123Label(r.ContainerName); len(errs) > 0 {
			return nil, fmt.Errorf("extract: container %q: not a container name: %s", r.ContainerName, strings.Join(errs, "; "))
		}
	}
	if r.JSONPath != "" {
		if _, err := parseJSONPath(r.JSONPath); err != nil {
			return nil, fmt.Errorf("extract: %w", err)
		}
	}
	if r.Regexp != "" {
		re, err := regexp.Compile(r.Regexp)
		if err != nil {
			return nil, fmt.Errorf("extract: regexp %q: %w", r.Regexp, err)
		}
		e.re = re
		switch i := re.SubexpIndex("ref"); {
		case i > 0:
			e.group = i
		case re.NumSubexp() <= 1:
			e.group = re.NumSubexp()
		default:
			return nil, fmt.Errorf("extract: regexp %q: %d capture groups, want one or a group named ref", r.Regexp, re.NumSubexp())
		}
	}
	return e, nil
}

// parseJSONPath parses a template. A client-go JSONPath keeps state while it evaluates (range blocks rewrite
// its parse tree), so Ref parses a fresh one for each call rather than share one between goroutines.
func parseJSONPath(path string) (*jsonpath.JSONPath, error) {
	if !strings.HasPrefix(path, "{") || !strings.HasSuffix(path, "}") {
		return nil, fmt.Errorf("jsonpath %q: want a template in braces, e.g. {.metadata.annotations.source-ref}", path)
	}
	jp := jsonpath.New("ref").AllowMissingKeys(false)
	if err := jp.Parse(path); err != nil {
		return nil, fmt.Errorf("jsonpath %q: %w", path, err)
	}
	return jp, nil
}

// UsesObject reports whether Ref reads the workload object (JSONPath is set); otherwise the caller may pass a
// nil object and save reading the whole workload.
func (e *Extractor) UsesObject() bool { return e.rule.JSONPath != "" }

// Ref extracts the ref from the workload: obj is its unstructured content (it may be nil when UsesObject is
// false), containers those of its pod template.
func (e *Extractor) Ref(obj map[string]any, containers []Container) (string, error) {
	var (
		ref string
		err error
	)
	if e.rule.JSONPath != "" {
		ref, err = e.fromObject(obj)
	} else {
		ref, err = e.fromImage(containers)
	}
	if err != nil {
		return "", err
	}
	if e.re != nil {
		m := e.re.FindStringSubmatch(ref)
		if m == nil {
			return "", fmt.Errorf("regexp %q does not match %q", e.rule.Regexp, ref)
		}
		ref = m[e.group]
	}
	if t := e.rule.Template; t != "" {
		if strings.Contains(t, "{}") {
			ref = strings.ReplaceAll(t, "{}", ref)
		} else {
			ref = t + ref
		}
	}
	if err := validRef(ref); err != nil {
		return "", err
	}
	return ref, nil
}

func (e *Extractor) fromImage(containers []Container) (string, error) {
	if len(containers) == 0 {
		return "", errors.New("the workload has no containers")
	}
	c := containers[0]
	if name := e.rule.ContainerName; name != "" {
		names := make([]string, 0, len(containers))
		found := false
		for _, cc := range containers {
			if cc.Name == name {
				c, found = cc, true
				break
			}
			names = append(names, cc.Name)
		}
		if !found {
			return "", fmt.Errorf("container %q not found (containers: %s)", name, strings.Join(names, ", "))
		}
	}
	if c.Image == "" {
		return "", fmt.Errorf("container %q has no image", c.Name)
	}
	return ImageTag(c.Image), nil
}

func (e *Extractor) fromObject(obj map[string]any) (ref string, err error) {
	path := e.rule.JSONPath
	if obj == nil {
		return "", fmt.Errorf("jsonpath %s: no object to read", path)
	}
	jp, err := parseJSONPath(path)
	if err != nil {
		return "", err
	}
	// The object is input: whatever client-go's evaluator does with it must not take the controller down.
	defer func() {
		if p := recover(); p != nil {
			ref, err = "", fmt.Errorf("jsonpath %s: cannot evaluate: %v", path, p)
		}
	}()
	results, err := jp.FindResults(obj)
	if err != nil {
		// With AllowMissingKeys(false), a missing field or index is an error ("x is not found").
		return "", fmt.Errorf("jsonpath %s: no value: %w", path, err)
	}
	var values []reflect.Value
	for _, r := range results {
		values = append(values, r...)
	}
	switch len(values) {
	case 0:
		return "", fmt.Errorf("jsonpath %s: no value", path)
	case 1:
	default:
		return "", fmt.Errorf("jsonpath %s: %d values, want exactly one", path, len(values))
	}
	v := values[0]
	for v.Kind() == reflect.Interface || v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return "", fmt.Errorf("jsonpath %s: no value (null)", path)
		}
		v = v.Elem()
	}
	switch v.Kind() {
	case reflect.String:
		return v.String(), nil
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Float32, reflect.Float64:
		return fmt.Sprint(v.Interface()), nil
	default:
		return "", fmt.Errorf("jsonpath %s: value is a %s, want a string or number", path, jsonKind(v.Kind()))
	}
}

// jsonKind names a kind the way a reader of the workload's YAML knows it.
func jsonKind(k reflect.Kind) string {
	switch k {
	case reflect.Map, reflect.Struct:
		return "map"
	case reflect.Slice, reflect.Array:
		return "list"
	default:
		return k.String()
	}
}

// validRef reports why ref is not usable as a git ref name, or nil. It checks what a ref taken from a workload
// can get wrong (git-check-ref-format has further rules the git host enforces): non-empty, valid UTF-8, no
// whitespace or control characters, no "..", not starting with "-", at most 255 bytes.
func validRef(ref string) error {
	problem := ""
	switch {
	case ref == "":
		problem = "empty"
	case len(ref) > maxRefBytes:
		return fmt.Errorf("ref of %d bytes is not a valid git ref name: longer than %d bytes", len(ref), maxRefBytes)
	case !utf8.ValidString(ref):
		problem = "not valid UTF-8"
	case strings.IndexFunc(ref, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0:
		problem = "contains whitespace or a control character"
	case strings.Contains(ref, ".."):
		problem = `contains ".."`
	case strings.HasPrefix(ref, "-"):
		problem = `starts with "-"`
	default:
		return nil
	}
	return fmt.Errorf("ref %q is not a valid git ref name: %s", ref, problem)
}

// ParseFrom reads the value of the annotation github.deployment-tracker.io/ref-from: "container:<name>" takes the ref from that
// container's image tag, a JSONPath template "{...}" from the workload object, and "" means the default (the
// first container). The returned Rule is not validated: Compile does that.
func ParseFrom(from string) (Rule, error) {
	from = strings.TrimSpace(from)
	switch {
	case from == "":
		return Rule{}, nil
	case strings.HasPrefix(from, "container:") && len(from) > len("container:"):
		return Rule{ContainerName: strings.TrimPrefix(from, "container:")}, nil
	case strings.HasPrefix(from, "{"):
		return Rule{JSONPath: from}, nil
	default:
		return Rule{}, fmt.Errorf(`extract: ref-from %q: want "container:<name>" or a JSONPath template such as "{.metadata.annotations.source-ref}"`, from)
	}
}
