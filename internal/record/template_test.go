package record

import (
	"strings"
	"testing"
)

func TestParseTemplateErrors(t *testing.T) {
	tests := []struct {
		name    string
		tmpl    string
		wantErr string
	}{
		{name: "empty", tmpl: "", wantErr: "template is empty"},
		{name: "blank", tmpl: "  \t", wantErr: "template is empty"},
		{name: "unknown placeholder", tmpl: "{{namespace}}/{{podName}}", wantErr: "unknown placeholder {{podName}}"},
		{name: "placeholder names are case-sensitive", tmpl: "{{Namespace}}", wantErr: "unknown placeholder {{Namespace}}"},
		{name: "empty placeholder", tmpl: "a/{{}}", wantErr: "unknown placeholder {{}}"},
		{name: "go template syntax", tmpl: "{{.Namespace}}", wantErr: "unknown placeholder {{.Namespace}}"},
		{name: "triple braces", tmpl: "{{{namespace}}}", wantErr: "unknown placeholder {{{namespace}}"},
		{name: "unterminated", tmpl: "{{namespace}}/{{deploymentName", wantErr: "unterminated placeholder"},
		{name: "single closing brace", tmpl: "{{namespace}", wantErr: "unterminated placeholder"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseTemplate(tt.tmpl)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("ParseTemplate(%q) = %v, %v; want an error containing %q", tt.tmpl, got, err, tt.wantErr)
			}
			if got != nil {
				t.Errorf("ParseTemplate(%q) returned a template with its error", tt.tmpl)
			}
		})
	}
}

func TestTemplateRender(t *testing.T) {
	vars := Vars{Namespace: "payments", DeploymentName: "api", ContainerName: "server"}
	tests := []struct {
		name string
		tmpl string
		vars Vars
		want string
	}{
		{name: "default", tmpl: DefaultTemplate, vars: vars, want: "payments/api/server"},
		{name: "literal only", tmpl: "fixed", vars: vars, want: "fixed"},
		{name: "literals around placeholders", tmpl: "prod-{{namespace}}.{{deploymentName}}#{{containerName}}!", vars: vars, want: "prod-payments.api#server!"},
		{name: "adjacent placeholders", tmpl: "{{namespace}}{{containerName}}", vars: vars, want: "paymentsserver"},
		{name: "repeated placeholder", tmpl: "{{namespace}}/{{namespace}}", vars: vars, want: "payments/payments"},
		{name: "spaces inside braces", tmpl: "{{ namespace }}/{{\tcontainerName }}", vars: vars, want: "payments/server"},
		{name: "lone closing braces are literal", tmpl: "}}{{deploymentName}}}}", vars: vars, want: "}}api}}"},
		{name: "single braces are literal", tmpl: "{namespace}/{{containerName}}", vars: vars, want: "{namespace}/server"},
		{name: "empty values", tmpl: DefaultTemplate, vars: Vars{}, want: "//"},
		{name: "kind in lower case", tmpl: "{{namespace}}/{{kind}}/{{deploymentName}}/{{containerName}}",
			vars: Vars{Namespace: "payments", DeploymentName: "api", ContainerName: "server", Kind: "StatefulSet"}, want: "payments/statefulset/api/server"},
		{name: "values are not interpreted", tmpl: DefaultTemplate, vars: Vars{Namespace: "{{containerName}}", DeploymentName: "%s", ContainerName: "c"}, want: "{{containerName}}/%s/c"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tmpl, err := ParseTemplate(tt.tmpl)
			if err != nil {
				t.Fatalf("ParseTemplate(%q): %v", tt.tmpl, err)
			}
			if got := tmpl.Render(tt.vars); got != tt.want {
				t.Errorf("Render(%+v) with %q = %q, want %q", tt.vars, tt.tmpl, got, tt.want)
			}
		})
	}
}
