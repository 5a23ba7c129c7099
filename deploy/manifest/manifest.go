// Package manifest reads the multi-document YAML manifests embedded by the deploy and certs packages into
// unstructured objects, in the order kubectl apply -f would send them, and converts single objects into their
// typed Go structs without losing unknown fields silently.
package manifest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"sort"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// Load returns every object of the *.yaml files at the root of fsys. Files are read in lexical order of their
// names and documents in file order: the order `kubectl apply -f DIR` applies them, which is why the shipped
// files carry numeric prefixes. Documents holding only comments are skipped; a document without apiVersion,
// kind or metadata.name, or with a duplicate key, is an error naming the file and the document's position.
func Load(fsys fs.FS) ([]*unstructured.Unstructured, error) {
	names, err := fs.Glob(fsys, "*.yaml")
	if err != nil {
		return nil, fmt.Errorf("list manifests: %w", err)
	}
	sort.Strings(names)
	var objs []*unstructured.Unstructured
	for _, name := range names {
		data, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, fmt.Errorf("read manifest: %w", err)
		}
		docs, err := Parse(data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path.Base(name), err)
		}
		objs = append(objs, docs...)
	}
	return objs, nil
}

// Parse splits a multi-document YAML stream into objects, skipping empty documents.
func Parse(data []byte) ([]*unstructured.Unstructured, error) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var objs []*unstructured.Unstructured
	for i := 1; ; i++ {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return objs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("document %d: %w", i, err)
		}
		// YAMLToJSONStrict rejects duplicate keys, which a plain YAML decoder resolves silently (last wins).
		j, err := yaml.YAMLToJSONStrict(doc)
		if err != nil {
			return nil, fmt.Errorf("document %d: %w", i, err)
		}
		if bytes.Equal(bytes.TrimSpace(j), []byte("null")) {
			continue // only comments or whitespace
		}
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(j); err != nil {
			return nil, fmt.Errorf("document %d: %w", i, err)
		}
		if u.GetName() == "" {
			return nil, fmt.Errorf("document %d: %s without metadata.name", i, u.GroupVersionKind())
		}
		objs = append(objs, u)
	}
}

// Find returns the one object of the group, kind and name in objs (name is unique per kind in these
// manifests, so the namespace is not part of the key).
func Find(objs []*unstructured.Unstructured, gk schema.GroupKind, name string) (*unstructured.Unstructured, error) {
	var found *unstructured.Unstructured
	for _, u := range objs {
		if u.GroupVersionKind().GroupKind() != gk || u.GetName() != name {
			continue
		}
		if found != nil {
			return nil, fmt.Errorf("%s %q: defined more than once", gk, name)
		}
		found = u
	}
	if found == nil {
		return nil, fmt.Errorf("%s %q: not found", gk, name)
	}
	return found, nil
}

// Typed converts u into a new T (a Kubernetes API struct such as appsv1.Deployment). Fields of u that T does
// not know are an error, not dropped: a typo in a manifest fails here instead of being ignored by the API
// server's pruning.
func Typed[T any](u *unstructured.Unstructured) (*T, error) {
	obj := new(T)
	if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(u.Object, obj, true); err != nil {
		return nil, fmt.Errorf("%s %q: %w", u.GroupVersionKind().Kind, u.GetName(), err)
	}
	return obj, nil
}

// FindTyped is Find followed by Typed.
func FindTyped[T any](objs []*unstructured.Unstructured, gk schema.GroupKind, name string) (*T, error) {
	u, err := Find(objs, gk, name)
	if err != nil {
		return nil, err
	}
	return Typed[T](u)
}
