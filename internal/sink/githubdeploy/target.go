package githubdeploy

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ghv1 "github.com/deployment-tracker/deployment-tracker/internal/apis/github/v1alpha1"
	"github.com/deployment-tracker/deployment-tracker/internal/extract"
	"github.com/deployment-tracker/deployment-tracker/internal/owner"
	"github.com/deployment-tracker/deployment-tracker/internal/rollout"
)

// The annotations of a workload that configure its GitHub deployments (rollout.Transform keeps them on cached
// workloads). AnnotationRepository enables them; the others are optional.
const (
	AnnotationPrefix = "github.deployment-tracker.io/"
	// AnnotationRepository is the repository: NAME (in ORG) or OWNER/NAME.
	AnnotationRepository = AnnotationPrefix + "repository"
	// AnnotationEnvironment is the GitHub environment (default: LOGICAL_ENVIRONMENT).
	AnnotationEnvironment = AnnotationPrefix + "environment"
	// AnnotationRefFrom is where the ref comes from: container:NAME (its image tag) or a JSONPath {…} over the
	// workload (default: the image tag of the first container).
	AnnotationRefFrom = AnnotationPrefix + "ref-from"
	// AnnotationRefRegexp selects part of the value (the group named ref, else the only group).
	AnnotationRefRegexp = AnnotationPrefix + "ref-regexp"
	// AnnotationRefTemplate shapes the ref ("{}" replaced; without it, a prefix).
	AnnotationRefTemplate = AnnotationPrefix + "ref-template"
	// AnnotationEnvironmentURL is sent as environment_url with success.
	AnnotationEnvironmentURL = AnnotationPrefix + "environment-url"
	// AnnotationProductionEnvironment "true"/"false" sets production_environment.
	AnnotationProductionEnvironment = AnnotationPrefix + "production-environment"
	// AnnotationTransientEnvironment "true"/"false" sets transient_environment.
	AnnotationTransientEnvironment = AnnotationPrefix + "transient-environment"
	// AnnotationDescription is the deployment's description.
	AnnotationDescription = AnnotationPrefix + "description"
	// AnnotationPayloadPrefix names an annotation prefix whose annotations become the deployment's payload.
	AnnotationPayloadPrefix = AnnotationPrefix + "payload-annotation-prefix"
)

// repositoryName is what GitHub accepts as [OWNER/]NAME.
var repositoryName = regexp.MustCompile(`^([A-Za-z0-9-]+/)?[A-Za-z0-9._-]+$`)

// Target is how one workload's rollouts become GitHub deployments.
type Target struct {
	// Repository is NAME (in the configured organization) or OWNER/NAME.
	Repository string
	// Environment is the GitHub environment; "" is the configured LOGICAL_ENVIRONMENT.
	Environment string
	// Extract is the rule of the ref.
	Extract extract.Rule
	// EnvironmentURL is sent with success.
	EnvironmentURL string
	// Production and Transient set production_environment and transient_environment; nil leaves GitHub's
	// defaults.
	Production, Transient *bool
	// Description of the deployments ("" for one naming the workload and revision).
	Description string
	// PayloadPrefix selects the workload annotations that become the payload.
	PayloadPrefix string
	// Object is the GitHubDeployment the target comes from; nil when it comes from annotations.
	Object *types.NamespacedName
	// WorkloadUID is the workload's UID, when known (for its Events).
	WorkloadUID types.UID
}

func environmentOf(t Target, def string) string {
	if t.Environment != "" {
		return t.Environment
	}
	return def
}

// targetOfState is the target a state names, for finishing a deployment whose configuration is gone.
func targetOfState(st map[string]string) (Target, error) {
	if st[StateRepository] == "" || !strings.Contains(st[StateRepository], "/") {
		return Target{}, errors.New("no repository in the state")
	}
	return Target{Repository: st[StateRepository], Environment: st[StateEnvironment]}, nil
}

// TargetFromAnnotations reads a workload's annotations; found is false without AnnotationRepository. Errors
// name the annotation.
func TargetFromAnnotations(ann map[string]string) (t Target, found bool, err error) {
	repo := strings.TrimSpace(ann[AnnotationRepository])
	if repo == "" {
		return Target{}, false, nil
	}
	var errs []error
	if !repositoryName.MatchString(repo) {
		errs = append(errs, fmt.Errorf("%s: %q is not a repository name (NAME or OWNER/NAME)", AnnotationRepository, repo))
	}
	rule, err := extract.ParseFrom(ann[AnnotationRefFrom])
	if err != nil {
		errs = append(errs, fmt.Errorf("%s: %w", AnnotationRefFrom, err))
	}
	rule.Regexp, rule.Template = ann[AnnotationRefRegexp], ann[AnnotationRefTemplate]
	t = Target{
		Repository: repo, Environment: strings.TrimSpace(ann[AnnotationEnvironment]), Extract: rule,
		EnvironmentURL: strings.TrimSpace(ann[AnnotationEnvironmentURL]), Description: ann[AnnotationDescription],
		PayloadPrefix: ann[AnnotationPayloadPrefix],
	}
	for _, b := range []struct {
		key string
		dst **bool
	}{{AnnotationProductionEnvironment, &t.Production}, {AnnotationTransientEnvironment, &t.Transient}} {
		if v, ok := ann[b.key]; ok {
			parsed, err := strconv.ParseBool(strings.TrimSpace(v))
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %q is not true or false", b.key, v))
				continue
			}
			*b.dst = &parsed
		}
	}
	if t.EnvironmentURL != "" && !strings.HasPrefix(t.EnvironmentURL, "https://") && !strings.HasPrefix(t.EnvironmentURL, "http://") {
		errs = append(errs, fmt.Errorf("%s: %q is not an http(s) URL", AnnotationEnvironmentURL, t.EnvironmentURL))
	}
	if _, err := extract.Compile(t.Extract); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return t, true, &ConfigError{Err: err}
	}
	return t, true, nil
}

// ConfigError is a configuration that does not parse (annotations naming what is wrong).
type ConfigError struct{ Err error }

func (e *ConfigError) Error() string { return e.Err.Error() }

func (e *ConfigError) Unwrap() error { return e.Err }

// TargetFromObject is the target of a GitHubDeployment.
func TargetFromObject(g *ghv1.GitHubDeployment) Target {
	return Target{
		Repository: g.Spec.Repository.Name, Environment: g.Spec.Repository.Environment,
		Extract: extract.Rule{
			ContainerName: g.Spec.Extract.ContainerName, JSONPath: g.Spec.Extract.JSONPath,
			Regexp: g.Spec.Extract.Regexp, Template: g.Spec.Extract.Template,
		},
		EnvironmentURL: g.Spec.EnvironmentURL, Production: g.Spec.ProductionEnvironment,
		Transient: g.Spec.TransientEnvironment, Description: g.Spec.Description,
		PayloadPrefix: g.Spec.PayloadAnnotationPrefix,
		Object:        &types.NamespacedName{Namespace: g.Namespace, Name: g.Name},
	}
}

// Targets reads configurations through the manager: a workload's annotations first (from the cache, where
// rollout.Transform keeps them, for Deployments, StatefulSets and DaemonSets; with one metadata GET for other
// kinds), else a GitHubDeployment of its namespace naming it (from the cache). Of several GitHubDeployments
// naming one workload, the first by name is used.
type Targets struct {
	// Cache reads the typed workloads and the GitHubDeployments.
	Cache client.Reader
	// API reads the metadata of workloads of other kinds (uncached).
	API client.Reader
}

var _ TargetReader = Targets{}

// Target implements TargetReader. Annotations that do not parse are an error naming them.
func (r Targets) Target(ctx context.Context, w owner.Workload) (Target, bool, error) {
	md, found, err := r.metadata(ctx, w)
	if err != nil {
		return Target{}, false, err
	}
	if found {
		t, ok, err := TargetFromAnnotations(md.Annotations)
		if ok || err != nil {
			t.WorkloadUID = md.UID
			return t, true, err
		}
	}
	var list ghv1.GitHubDeploymentList
	if err := r.Cache.List(ctx, &list, client.InNamespace(w.Namespace)); err != nil {
		if meta.IsNoMatchError(err) {
			return Target{}, false, nil // the CRD is not installed
		}
		return Target{}, false, fmt.Errorf("list GitHubDeployments in %s: %w", w.Namespace, err)
	}
	slices.SortFunc(list.Items, func(a, b ghv1.GitHubDeployment) int { return strings.Compare(a.Name, b.Name) })
	for i := range list.Items {
		g := &list.Items[i]
		src := g.Spec.SourceRef
		if g.DeletionTimestamp != nil || src.GroupKind() != (schema.GroupKind{Group: w.Group, Kind: w.Kind}) || src.Name != w.Name {
			continue
		}
		if _, _, err := g.Source(); err != nil {
			// A sourceRef into another namespace (refused by the shipped ValidatingAdmissionPolicy, but the
			// policy may be missing): it names no workload of w's namespace, and never another namespace's.
			continue
		}
		t := TargetFromObject(g)
		t.WorkloadUID = md.UID
		return t, true, nil
	}
	return Target{}, false, nil
}

// metadata reads w's metadata; found is false when it does not exist.
func (r Targets) metadata(ctx context.Context, w owner.Workload) (metav1.ObjectMeta, bool, error) {
	obj := rollout.Object(w)
	reader := r.Cache
	if obj == nil {
		if r.API == nil {
			return metav1.ObjectMeta{}, false, nil
		}
		pm := &metav1.PartialObjectMetadata{}
		pm.SetGroupVersionKind(schema.GroupVersionKind{Group: w.Group, Kind: w.Kind, Version: versionOf(w.Group)})
		obj, reader = pm, r.API
	}
	if err := reader.Get(ctx, client.ObjectKey{Namespace: w.Namespace, Name: w.Name}, obj); err != nil {
		if apierrors.IsNotFound(err) || meta.IsNoMatchError(err) {
			return metav1.ObjectMeta{}, false, nil
		}
		return metav1.ObjectMeta{}, false, fmt.Errorf("get %s: %w", w, err)
	}
	return metav1.ObjectMeta{UID: obj.GetUID(), Annotations: obj.GetAnnotations()}, true, nil
}

// versionOf is the served version of the workload groups with rollouts besides apps.
func versionOf(group string) string {
	if group == "argoproj.io" {
		return "v1alpha1"
	}
	return "v1"
}

// APIObjects reads whole workload objects with one uncached GET each, as unstructured content, for JSONPath rules
// and payloads (the cached workloads are trimmed).
type APIObjects struct {
	Reader client.Reader
	Mapper meta.RESTMapper
}

var _ ObjectReader = APIObjects{}

// Object implements ObjectReader.
func (o APIObjects) Object(ctx context.Context, w owner.Workload) (map[string]any, bool, error) {
	gk := schema.GroupKind{Group: w.Group, Kind: w.Kind}
	version := versionOf(w.Group)
	if o.Mapper != nil {
		m, err := o.Mapper.RESTMapping(gk)
		if err != nil {
			return nil, false, fmt.Errorf("kind of %s: %w", w, err)
		}
		version = m.GroupVersionKind.Version
	}
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(gk.WithVersion(version))
	if err := o.Reader.Get(ctx, client.ObjectKey{Namespace: w.Namespace, Name: w.Name}, u); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, false, nil
		}
		return nil, false, fmt.Errorf("get %s: %w", w, err)
	}
	return u.Object, true, nil
}
