package deploy_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"

	"github.com/deployment-tracker/deployment-tracker/deploy"
)

// TestCRDFieldsAreDocumented: every field of every generated CRD (deploy/05-crd.yaml, the ledger's, and
// deploy/06-crd-github.yaml, GitHubDeployment's, from the Go doc comments of internal/apis) has a description,
// which is what `kubectl explain` prints, and every validation rule a message, which is what a refused
// `kubectl apply` prints. controller-gen takes a field's
// description from its own comment only: a comment over a group of fields documents the first one. The one
// exception is the object's metadata, which controller-gen emits without description, as for every CRD
// (kubectl explain shows ObjectMeta's own). See
// https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/#specifying-a-structural-schema.
func TestCRDFieldsAreDocumented(t *testing.T) {
	objs, err := deploy.Objects()
	if err != nil {
		t.Fatal(err)
	}
	var documented []string
	for _, u := range objs {
		if u.GetKind() != "CustomResourceDefinition" {
			continue
		}
		obj, err := decodeStrict(u)
		if err != nil {
			t.Fatal(err)
		}
		crd := obj.(*apiextensionsv1.CustomResourceDefinition)
		for _, v := range crd.Spec.Versions {
			documented = append(documented, crd.Name+"/"+v.Name)
			t.Run(crd.Spec.Names.Singular+"/"+v.Name, func(t *testing.T) {
				if v.Schema == nil || v.Schema.OpenAPIV3Schema == nil {
					t.Fatal("no openAPIV3Schema")
				}
				root := v.Schema.OpenAPIV3Schema
				var missing []string
				if strings.TrimSpace(root.Description) == "" {
					missing = append(missing, crd.Spec.Names.Singular)
				}
				undocumented(crd.Spec.Names.Singular, root, true, &missing)
				for _, p := range missing {
					t.Errorf("kubectl explain %s: no description", p)
				}
				for _, p := range unexplainedRules(crd.Spec.Names.Singular, root) {
					t.Errorf("%s: a validation rule without a message", p)
				}
				if fields := countFields(root); fields == 0 {
					t.Error("the schema has no fields")
				}
			})
		}
	}
	slices.Sort(documented)
	want := []string{
		"deploymentrecords.records.deployment-tracker.io/v1alpha1",
		"githubdeployments.github.deployment-tracker.io/v1alpha1",
		"rolloutrecords.records.deployment-tracker.io/v1alpha1",
	}
	if diff := cmp.Diff(want, documented); diff != "" {
		t.Errorf("CRD versions checked (-want +got):\n%s", diff)
	}
}

// unexplainedRules returns the path of every schema under s with an x-kubernetes-validations rule that has
// neither a message nor a messageExpression: the API server would answer "failed rule: <the CEL expression>".
func unexplainedRules(path string, s *apiextensionsv1.JSONSchemaProps) []string {
	var out []string
	for _, r := range s.XValidations {
		if strings.TrimSpace(r.Message) == "" && strings.TrimSpace(r.MessageExpression) == "" {
			out = append(out, path)
		}
	}
	for _, name := range sortedKeys(s.Properties) {
		p := s.Properties[name]
		out = append(out, unexplainedRules(path+"."+name, &p)...)
	}
	if s.Items != nil && s.Items.Schema != nil {
		out = append(out, unexplainedRules(path, s.Items.Schema)...)
	}
	if s.AdditionalProperties != nil && s.AdditionalProperties.Schema != nil {
		out = append(out, unexplainedRules(path, s.AdditionalProperties.Schema)...)
	}
	return out
}

// undocumented appends the path of every property under s without a description, as kubectl explain names it
// (kind.field.field). It walks into array items and map values, whose own schemas are not fields.
func undocumented(path string, s *apiextensionsv1.JSONSchemaProps, root bool, missing *[]string) {
	for _, name := range sortedKeys(s.Properties) {
		p := s.Properties[name]
		if root && name == "metadata" {
			continue
		}
		if strings.TrimSpace(p.Description) == "" {
			*missing = append(*missing, path+"."+name)
		}
		undocumented(path+"."+name, &p, false, missing)
	}
	if s.Items != nil && s.Items.Schema != nil {
		undocumented(path, s.Items.Schema, false, missing)
	}
	if s.AdditionalProperties != nil && s.AdditionalProperties.Schema != nil {
		undocumented(path, s.AdditionalProperties.Schema, false, missing)
	}
}

// countFields counts the properties under s, so that a schema the walk cannot enter does not pass as
// documented.
func countFields(s *apiextensionsv1.JSONSchemaProps) int {
	n := 0
	for _, p := range s.Properties {
		n += 1 + countFields(&p)
	}
	if s.Items != nil && s.Items.Schema != nil {
		n += countFields(s.Items.Schema)
	}
	return n
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// TestUndocumentedWalk: the walk finds an undocumented field at any depth, in array items and map values, and
// skips only the root's metadata.
func TestUndocumentedWalk(t *testing.T) {
	doc := func(props map[string]apiextensionsv1.JSONSchemaProps) apiextensionsv1.JSONSchemaProps {
		return apiextensionsv1.JSONSchemaProps{Type: "object", Description: "documented", Properties: props}
	}
	schema := apiextensionsv1.JSONSchemaProps{Type: "object", Properties: map[string]apiextensionsv1.JSONSchemaProps{
		"metadata": {Type: "object"},
		"spec": doc(map[string]apiextensionsv1.JSONSchemaProps{
			"name":     {Type: "string"},
			"metadata": {Type: "string"},
			"items": {Type: "array", Description: "documented", Items: &apiextensionsv1.JSONSchemaPropsOrArray{
				Schema: &apiextensionsv1.JSONSchemaProps{Type: "object", Properties: map[string]apiextensionsv1.JSONSchemaProps{
					"image": {Type: "string"},
					"ok":    {Type: "string", Description: "documented"},
				}},
			}},
			"byName": {Type: "object", Description: "documented", AdditionalProperties: &apiextensionsv1.JSONSchemaPropsOrBool{
				Schema: &apiextensionsv1.JSONSchemaProps{Type: "object", Properties: map[string]apiextensionsv1.JSONSchemaProps{
					"value": {Type: "string"},
				}},
			}},
		}),
	}}
	var got []string
	undocumented("thing", &schema, true, &got)
	want := []string{"thing.spec.byName.value", "thing.spec.items.image", "thing.spec.metadata", "thing.spec.name"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("undocumented fields (-want +got):\n%s", diff)
	}
}

// TestUnexplainedRulesWalk: the walk finds a rule without a message at any depth, in array items and map
// values, and accepts a messageExpression instead of a message.
func TestUnexplainedRulesWalk(t *testing.T) {
	rule := func(message, expr string) []apiextensionsv1.ValidationRule {
		return []apiextensionsv1.ValidationRule{{Rule: "true", Message: message, MessageExpression: expr}}
	}
	schema := apiextensionsv1.JSONSchemaProps{Type: "object", XValidations: rule("", ""), Properties: map[string]apiextensionsv1.JSONSchemaProps{
		"spec": {Type: "object", XValidations: rule("explained", ""), Properties: map[string]apiextensionsv1.JSONSchemaProps{
			"a": {Type: "string", XValidations: rule("", "'computed'")},
			"b": {Type: "string", XValidations: rule("", "")},
			"items": {Type: "array", Items: &apiextensionsv1.JSONSchemaPropsOrArray{
				Schema: &apiextensionsv1.JSONSchemaProps{Type: "object", XValidations: rule("", "")},
			}},
			"byName": {Type: "object", AdditionalProperties: &apiextensionsv1.JSONSchemaPropsOrBool{
				Schema: &apiextensionsv1.JSONSchemaProps{Type: "string", XValidations: rule(" ", "")},
			}},
		}},
	}}
	want := []string{"thing", "thing.spec.b", "thing.spec.byName", "thing.spec.items"}
	if diff := cmp.Diff(want, unexplainedRules("thing", &schema)); diff != "" {
		t.Errorf("unexplained rules (-want +got):\n%s", diff)
	}
}
