package record

import (
	"fmt"
	"strings"
)

// DefaultTemplate is the default deployment-name template (DN_TEMPLATE).
const DefaultTemplate = "{{namespace}}/{{deploymentName}}/{{containerName}}"

// Placeholders of the deployment-name template.
const (
	PlaceholderNamespace      = "namespace"
	PlaceholderDeploymentName = "deploymentName"
	PlaceholderContainerName  = "containerName"
	// PlaceholderKind is the workload's kind in lower case ("deployment", "statefulset", "rollout"): it tells
	// apart workloads of different kinds that share a name in one namespace.
	PlaceholderKind = "kind"
)

// Vars are the values the deployment-name template is rendered with.
type Vars struct {
	Namespace      string
	DeploymentName string
	ContainerName  string
	// Kind is the workload's kind as the API names it ("Deployment"); rendered in lower case.
	Kind string
}

// Template renders deployment names. It is parsed once at start-up; rendering does not fail.
type Template struct {
	parts []templatePart
}

type templatePart struct {
	literal string
	field   string // one of the placeholders, or "" for a literal
}

// ParseTemplate parses a deployment-name template. Placeholders are {{namespace}}, {{deploymentName}},
// {{containerName}} and {{kind}}; anything else between braces is an error, as is an unterminated "{{".
func ParseTemplate(s string) (*Template, error) {
	if strings.TrimSpace(s) == "" {
		return nil, fmt.Errorf("template is empty")
	}
	t := &Template{}
	rest := s
	for rest != "" {
		open := strings.Index(rest, "{{")
		if open < 0 {
			t.parts = append(t.parts, templatePart{literal: rest})
			break
		}
		if open > 0 {
			t.parts = append(t.parts, templatePart{literal: rest[:open]})
		}
		end := strings.Index(rest[open:], "}}")
		if end < 0 {
			return nil, fmt.Errorf("unterminated placeholder in %q", s)
		}
		name := strings.TrimSpace(rest[open+2 : open+end])
		switch name {
		case PlaceholderNamespace, PlaceholderDeploymentName, PlaceholderContainerName, PlaceholderKind:
		default:
			return nil, fmt.Errorf("unknown placeholder {{%s}} in %q (known: {{%s}}, {{%s}}, {{%s}}, {{%s}})",
				name, s, PlaceholderNamespace, PlaceholderDeploymentName, PlaceholderContainerName, PlaceholderKind)
		}
		t.parts = append(t.parts, templatePart{field: name})
		rest = rest[open+end+2:]
	}
	return t, nil
}

// Render returns the deployment name for v.
func (t *Template) Render(v Vars) string {
	var b strings.Builder
	for _, p := range t.parts {
		switch p.field {
		case "":
			b.WriteString(p.literal)
		case PlaceholderNamespace:
			b.WriteString(v.Namespace)
		case PlaceholderDeploymentName:
			b.WriteString(v.DeploymentName)
		case PlaceholderKind:
			b.WriteString(strings.ToLower(v.Kind))
		case PlaceholderContainerName:
			b.WriteString(v.ContainerName)
		}
	}
	return b.String()
}
