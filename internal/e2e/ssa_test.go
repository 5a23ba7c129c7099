package e2e

import (
	"context"
	"encoding/json"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/deployment-tracker/deployment-tracker/certs"
	"github.com/deployment-tracker/deployment-tracker/deploy"
)

// The field managers of the takeover: kubectl apply (client-side) records its writes under the first; Flux's
// kustomize-controller applies server-side under the second (Argo CD's is argocd-controller).
const (
	clientSideManager = "kubectl-client-side-apply"
	gitOpsManager     = "flux"
)

// TestServerSideApplyTakesOverClientSideInstall installs deploy/ and certs/ as `kubectl apply -k deploy/`
// does (client-side: a create, or a patch of an existing object, under kubectl's field manager, with the
// last-applied annotation), then applies the same objects server-side under another field manager without
// forcing, as Flux and Argo CD do when they take over an install. The takeover must not conflict: a conflict is
// reported for every field the client-side manager owns with a value other than the applied one, which is
// what a field defaulted by the API server inside an atomic struct is unless the manifest writes the default
// (a fieldRef without apiVersion). See
// https://kubernetes.io/docs/reference/using-api/server-side-apply/#conflicts and
// https://kubernetes.io/docs/reference/using-api/server-side-apply/#upgrading-from-client-side-apply-to-server-side-apply.
//
// The objects are created for real, in the tracker's namespace, which neither the webhook nor the test
// tracker watches; the webhook configuration is renamed, as in TestShippedManifestsAreAccepted, so the one
// serving this suite is left alone. What the test created is deleted at the end.
func TestServerSideApplyTakesOverClientSideInstall(t *testing.T) {
	ctx := ctxFor(t)
	dir, err := certs.CRDPaths()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := envtest.InstallCRDs(env.Config, envtest.CRDInstallOptions{Paths: []string{dir}, ErrorIfPathMissing: true}); err != nil {
		t.Fatalf("installing cert-manager CRDs: %v", err)
	}
	deployObjs, err := deploy.Objects()
	if err != nil {
		t.Fatal(err)
	}
	certObjs, err := certs.Objects()
	if err != nil {
		t.Fatal(err)
	}
	objs := append(deployObjs, certObjs...)
	for _, o := range objs {
		if o.GetKind() == "ValidatingWebhookConfiguration" {
			o.SetName(o.GetName() + "-takeover")
		}
	}

	for _, o := range objs {
		created, err := clientSideApply(ctx, o)
		if err != nil {
			t.Fatalf("client-side apply of %s %s/%s: %v", o.GetKind(), o.GetNamespace(), o.GetName(), err)
		}
		if created {
			t.Cleanup(func() {
				if err := env.Client.Delete(context.Background(), o.DeepCopy()); client.IgnoreNotFound(err) != nil {
					t.Errorf("deleting %s %s/%s: %v", o.GetKind(), o.GetNamespace(), o.GetName(), err)
				}
			})
		}
	}

	for _, o := range objs {
		applied := o.DeepCopy()
		if err := env.Client.Patch(ctx, applied, client.Apply, client.FieldOwner(gitOpsManager)); err != nil {
			t.Errorf("server-side apply of %s %s/%s by %s over a client-side install: %v", o.GetKind(), o.GetNamespace(), o.GetName(), gitOpsManager, err)
			continue
		}
		if !appliedBy(applied, gitOpsManager) {
			t.Errorf("%s %s/%s: no Apply entry of %s in managedFields %v", o.GetKind(), o.GetNamespace(), o.GetName(), gitOpsManager, managers(applied))
		}
	}
}

// clientSideApply does what `kubectl apply` (without --server-side) does with o: it records o in the
// last-applied annotation, then creates the object, or patches the existing one with it, under kubectl's field
// manager. kubectl sends a three-way patch computed from the annotation; the fields it sets and their
// ownership are the same as the merge patch of the whole object sent here, because each object is applied
// once. It reports whether it created the object.
func clientSideApply(ctx context.Context, o *unstructured.Unstructured) (bool, error) {
	o = o.DeepCopy()
	lastApplied, err := json.Marshal(o.Object)
	if err != nil {
		return false, err
	}
	annotations := o.GetAnnotations()
	if annotations == nil {
		annotations = map[string]string{}
	}
	annotations[corev1.LastAppliedConfigAnnotation] = string(lastApplied)
	o.SetAnnotations(annotations)
	err = env.Client.Create(ctx, o.DeepCopy(), client.FieldOwner(clientSideManager))
	if err == nil {
		return true, nil
	}
	if !apierrors.IsAlreadyExists(err) {
		return false, err
	}
	patch, err := json.Marshal(o.Object)
	if err != nil {
		return false, err
	}
	return false, env.Client.Patch(ctx, o, client.RawPatch(types.MergePatchType, patch), client.FieldOwner(clientSideManager))
}

// appliedBy reports whether manager owns fields of o through server-side apply.
func appliedBy(o *unstructured.Unstructured, manager string) bool {
	for _, m := range o.GetManagedFields() {
		if m.Manager == manager && m.Operation == metav1.ManagedFieldsOperationApply {
			return true
		}
	}
	return false
}

func managers(o *unstructured.Unstructured) []string {
	var out []string
	for _, m := range o.GetManagedFields() {
		out = append(out, m.Manager+"/"+string(m.Operation))
	}
	return out
}
