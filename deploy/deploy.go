// Package deploy holds the Kubernetes manifests of the tracker (the *.yaml files beside this file) and gives
// them to Go code, so that the end-to-end tests install exactly what users install.
//
// Install, with cert-manager already in the cluster, either with kustomize (this directory's Kustomization
// includes ../certs):
//
//	kubectl apply -k deploy/
//
// or with plain manifests, in the same order:
//
//	kubectl apply -f deploy/ -f certs/
//
// The kustomization file is named Kustomization, without an extension: kustomize recognizes that name, and
// kubectl apply -f DIR reads only *.yaml, *.yml and *.json files, so it does not try to apply the
// kustomization as a Kubernetes object (which would fail: there is no Kustomization kind in the API). The files'
// numeric prefixes are the apply order. The subdirectories examples/ (GitHub credential Secrets) and namespaced/
// (single-namespace RBAC) are not part of the default install.
package deploy

import (
	"embed"
	"fmt"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/deployment-tracker/deployment-tracker/deploy/manifest"
)

//go:embed *.yaml
var files embed.FS

// WebhookConfigurationName is the name of the shipped ValidatingWebhookConfiguration.
const WebhookConfigurationName = "deployment-tracker"

// Objects returns every object of the manifests in apply order: Namespace, the ledger's CRDs, RBAC,
// configuration, Service, NetworkPolicy, Deployment, PodDisruptionBudget, ValidatingWebhookConfiguration. Each call decodes the
// embedded files again, so callers may modify the returned objects. The cert-manager objects the Deployment and
// the webhook depend on are in package certs.
func Objects() ([]*unstructured.Unstructured, error) {
	objs, err := manifest.Load(files)
	if err != nil {
		return nil, fmt.Errorf("deploy manifests: %w", err)
	}
	return objs, nil
}

// WebhookConfiguration returns the shipped ValidatingWebhookConfiguration, typed. Its caBundle is empty:
// cert-manager's cainjector fills it in a cluster; a test server sets its own.
func WebhookConfiguration() (*admissionregistrationv1.ValidatingWebhookConfiguration, error) {
	objs, err := Objects()
	if err != nil {
		return nil, err
	}
	gk := schema.GroupKind{Group: admissionregistrationv1.GroupName, Kind: "ValidatingWebhookConfiguration"}
	wc, err := manifest.FindTyped[admissionregistrationv1.ValidatingWebhookConfiguration](objs, gk, WebhookConfigurationName)
	if err != nil {
		return nil, fmt.Errorf("deploy manifests: %w", err)
	}
	return wc, nil
}
