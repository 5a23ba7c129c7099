package preflight

import (
	"context"
	"fmt"
	"strings"
	"sync"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/deployment-tracker/deployment-tracker/internal/apis/records/v1alpha1"
)

// permission is one rule the tracker needs: verbs on a resource, in a namespace ("" for all namespaces).
type permission struct {
	group, resource string // resource may be "name/subresource"
	verbs           []string
	namespace       string
}

// what is how a message names the permission's resource and scope.
func (p permission) what() string {
	r, sub, _ := strings.Cut(p.resource, "/")
	if p.group != "" {
		r += "." + p.group
	}
	if sub != "" {
		r += "/" + sub
	}
	if p.namespace == "" {
		return r + " (all namespaces)"
	}
	return r + " (in " + p.namespace + ")"
}

// permissions are the rules of deploy/10-rbac.yaml (and, with -namespace, deploy/namespaced/), as the
// configuration uses them: reads of pods and of the workloads owning them in the watched namespaces, events
// there, the Lease in the tracker's namespace and the ledger in its namespace. The owners' aggregated
// ClusterRole (get on kinds of other operators) is not checked: which kinds matter depends on the cluster.
func (c *Checker) permissions() []permission {
	watched := c.cfg.Tracker.Namespace // "" is all namespaces
	read := []string{"get", "list", "watch"}
	ps := []permission{{"", "pods", read, watched}}
	for _, r := range []string{"replicasets", "deployments", "statefulsets", "daemonsets", "controllerrevisions"} {
		ps = append(ps, permission{"apps", r, read, watched})
	}
	for _, r := range []string{"jobs", "cronjobs"} {
		ps = append(ps, permission{"batch", r, read, watched})
	}
	// client-go's event recorders use the core or the events.k8s.io API depending on the broadcaster.
	for _, g := range []string{"", "events.k8s.io"} {
		ps = append(ps, permission{g, "events", []string{"create", "patch"}, watched})
	}
	leaseNS := c.cfg.Tracker.LeaderElectionNamespace
	if leaseNS == "" {
		leaseNS = c.cfg.Namespace
	}
	ps = append(ps, permission{"coordination.k8s.io", "leases", []string{"get", "list", "watch", "create", "update", "patch"}, leaseNS})
	if ns := c.cfg.LedgerNamespace; ns != "" {
		g := v1alpha1.GroupVersion.Group
		records := []string{"get", "list", "create", "update"}
		if c.cfg.Tracker.LedgerRetention > 0 {
			records = append(records, "delete") // the retention of decommissioned records (-ledger-retention)
		}
		ps = append(ps,
			permission{g, "deploymentrecords", records, ns},
			permission{g, "deploymentrecords/status", []string{"get", "update"}, ns},
			permission{g, "rolloutrecords", []string{"get", "list", "create", "update", "delete"}, ns},
			permission{g, "rolloutrecords/status", []string{"get", "update"}, ns},
		)
	}
	return ps
}

// maxMissing bounds the missing permissions a line names.
const maxMissing = 4

// reviewConcurrency bounds the access reviews in flight: a few dozen are needed, one verb each.
const reviewConcurrency = 8

func (c *Checker) rbac(ctx context.Context) Result {
	const check = "rbac"
	who := "you (the identity in use)"
	if c.cfg.AsServiceAccount {
		who = c.serviceAccountUser()
	} else if name := c.selfName(ctx); name != "" {
		who = name + " (the identity in use)"
	}

	var reviews []review
	for _, p := range c.permissions() {
		for _, v := range p.verbs {
			reviews = append(reviews, review{p, v})
		}
	}
	allowed, errs := c.reviewAll(ctx, reviews)
	for i, err := range errs {
		if err == nil {
			continue
		}
		kind := "SelfSubjectAccessReview"
		if c.cfg.AsServiceAccount {
			kind = "SubjectAccessReview"
		}
		what := fmt.Sprintf("%s of %s %s", kind, reviews[i].verb, reviews[i].p.what())
		if apierrors.IsForbidden(err) && c.cfg.AsServiceAccount {
			return Result{Warn, check, fmt.Sprintf("not checked for %s: you may not create subjectaccessreviews: "+
				"run it with an administrator's kubeconfig, or check your own identity with -check-as-serviceaccount=false", who)}
		}
		return apiFailure(check, what, err)
	}
	missing, denied := missingPermissions(reviews, allowed)
	if len(missing) > 0 {
		fix := "apply deploy/10-rbac.yaml (kubectl apply -k deploy/ does)"
		if c.cfg.Tracker.Namespace != "" {
			fix = "apply deploy/10-rbac.yaml and the Role of deploy/namespaced/ in " + c.cfg.Tracker.Namespace
		}
		if denied == len(reviews) {
			return Result{Fail, check, fmt.Sprintf("%s has none of the %d permissions the tracker needs: %s", who, len(reviews), fix)}
		}
		if len(missing) > maxMissing {
			missing = append(missing[:maxMissing], fmt.Sprintf("and %d more", len(missing)-maxMissing))
		}
		return Result{Fail, check, fmt.Sprintf("%s may not: %s: %s", who, strings.Join(missing, "; "), fix)}
	}
	return Result{Pass, check, fmt.Sprintf("%s has all %d permissions the tracker needs", who, len(reviews))}
}

// review is one access review: one verb of a permission.
type review struct {
	p    permission
	verb string
}

// reviewAll asks the API server for every review, a few at a time.
func (c *Checker) reviewAll(ctx context.Context, reviews []review) ([]bool, []error) {
	allowed := make([]bool, len(reviews))
	errs := make([]error, len(reviews))
	sem := make(chan struct{}, reviewConcurrency)
	var wg sync.WaitGroup
	for i, r := range reviews {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			allowed[i], errs[i] = c.allowed(ctx, r.p, r.verb)
		}()
	}
	wg.Wait()
	return allowed, errs
}

// missingPermissions names the denied verbs grouped by permission, in the order of the manifests, and counts
// the denied reviews.
func missingPermissions(reviews []review, allowed []bool) (missing []string, denied int) {
	for i := 0; i < len(reviews); {
		p, verbs := reviews[i].p, []string(nil)
		for ; i < len(reviews) && samePermission(reviews[i].p, p); i++ {
			if !allowed[i] {
				verbs = append(verbs, reviews[i].verb)
				denied++
			}
		}
		if len(verbs) > 0 {
			missing = append(missing, strings.Join(verbs, ",")+" "+p.what())
		}
	}
	return missing, denied
}

func samePermission(a, b permission) bool {
	return a.group == b.group && a.resource == b.resource && a.namespace == b.namespace
}

// serviceAccountUser is the user name the API server gives the tracker's ServiceAccount token.
func (c *Checker) serviceAccountUser() string {
	return "system:serviceaccount:" + c.cfg.Namespace + ":" + c.cfg.ServiceAccount
}

// allowed asks the API server whether the subject may do verb on p.
func (c *Checker) allowed(ctx context.Context, p permission, verb string) (bool, error) {
	resource, sub, _ := strings.Cut(p.resource, "/")
	attrs := &authorizationv1.ResourceAttributes{Namespace: p.namespace, Verb: verb, Group: p.group, Resource: resource, Subresource: sub}
	authz := c.cfg.Kube.AuthorizationV1()
	if !c.cfg.AsServiceAccount {
		r, err := authz.SelfSubjectAccessReviews().Create(ctx, &authorizationv1.SelfSubjectAccessReview{
			Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: attrs},
		}, metav1.CreateOptions{})
		if err != nil {
			return false, err
		}
		return r.Status.Allowed, nil
	}
	// The groups a ServiceAccount token carries: RBAC may grant to them too.
	ns := c.cfg.Namespace
	r, err := authz.SubjectAccessReviews().Create(ctx, &authorizationv1.SubjectAccessReview{
		Spec: authorizationv1.SubjectAccessReviewSpec{
			ResourceAttributes: attrs,
			User:               c.serviceAccountUser(),
			Groups:             []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		return false, err
	}
	return r.Status.Allowed, nil
}

// selfName is the user name of the identity in use (SelfSubjectReview, GA in Kubernetes 1.28), or "" when the
// API server does not say.
func (c *Checker) selfName(ctx context.Context) string {
	r, err := c.cfg.Kube.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		return ""
	}
	return r.Status.UserInfo.Username
}
