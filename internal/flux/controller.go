package flux

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"

	"github.com/deployment-tracker/deployment-tracker/internal/sink"
)

// Defaults of Config.
const (
	// DefaultDiscoveryInterval is how often the Controller looks whether the Kustomization API is served.
	DefaultDiscoveryInterval = 3 * time.Minute
	// DefaultMaxRetries is how often a Kustomization whose commit cannot be looked up is retried before its
	// revision is observed without a lead time (ReasonLookupFailed).
	DefaultMaxRetries = 10
	// DefaultRetryBaseDelay and DefaultRetryMaxDelay bound the exponential backoff of the retries.
	DefaultRetryBaseDelay = time.Second
	DefaultRetryMaxDelay  = 5 * time.Minute
)

// Discovery tells which resources an API group version serves; discovery.DiscoveryInterface is one.
type Discovery interface {
	ServerResourcesForGroupVersion(groupVersion string) (*metav1.APIResourceList, error)
}

// Config configures a Controller.
type Config struct {
	// Dynamic reads Kustomizations (list, watch) and GitRepositories (get). Required.
	Dynamic dynamic.Interface
	// Discovery tells whether the Kustomization API is served. Required.
	Discovery Discovery
	// Namespace limits the watch to one namespace (-namespace); empty: all namespaces. -exclude-namespaces
	// does not apply: it is about pods, and Kustomizations usually live in flux-system.
	Namespace string
	// Ledger keeps the observed revisions. Required.
	Ledger Ledger
	// Commits looks commit times up; nil: only the commit-time annotation gives one (ReasonLookupDisabled).
	Commits CommitTimes
	// Hosts are the hosts of repository URLs that Commits knows (default GitHubHosts of github.com's API).
	Hosts []string
	// Recorder records the observations. Required.
	Recorder Recorder
	// Cluster is the tracker's CLUSTER, a label of the observations.
	Cluster string
	// DiscoveryInterval is how often discovery is asked (default DefaultDiscoveryInterval): the watch starts
	// when the Kustomization API appears and stops when it goes.
	DiscoveryInterval time.Duration
	// MaxRetries, RetryBaseDelay and RetryMaxDelay shape the retries of failed lookups (defaults
	// DefaultMaxRetries, DefaultRetryBaseDelay, DefaultRetryMaxDelay).
	MaxRetries                    int
	RetryBaseDelay, RetryMaxDelay time.Duration
	Log                           logr.Logger
}

// Controller observes the revisions Flux Kustomizations apply. It is a manager.Runnable that needs leader
// election: a standby observes nothing.
type Controller struct {
	cfg   Config
	queue workqueue.TypedRateLimitingInterface[types.NamespacedName]

	mu       sync.Mutex
	store    cache.Store                     // the informer's, once synced and resumed; nil otherwise
	observed map[types.NamespacedName]string // what the ledger holds, as far as this instance knows
	full     map[types.NamespacedName]string // revisions refused by a full ledger, logged once
}

// New validates cfg and fills its defaults.
func New(cfg Config) (*Controller, error) {
	var errs []error
	if cfg.Dynamic == nil {
		errs = append(errs, errors.New("Dynamic is required"))
	}
	if cfg.Discovery == nil {
		errs = append(errs, errors.New("Discovery is required"))
	}
	if cfg.Ledger == nil {
		errs = append(errs, errors.New("Ledger is required"))
	}
	if cfg.Recorder == nil {
		errs = append(errs, errors.New("Recorder is required"))
	}
	for _, d := range []struct {
		name  string
		value time.Duration
	}{{"DiscoveryInterval", cfg.DiscoveryInterval}, {"RetryBaseDelay", cfg.RetryBaseDelay}, {"RetryMaxDelay", cfg.RetryMaxDelay}} {
		if d.value < 0 {
			errs = append(errs, fmt.Errorf("%s must not be negative", d.name))
		}
	}
	if cfg.MaxRetries < 0 {
		errs = append(errs, errors.New("MaxRetries must not be negative"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if cfg.Hosts == nil {
		cfg.Hosts = GitHubHosts("")
	}
	if cfg.DiscoveryInterval == 0 {
		cfg.DiscoveryInterval = DefaultDiscoveryInterval
	}
	if cfg.MaxRetries == 0 {
		cfg.MaxRetries = DefaultMaxRetries
	}
	if cfg.RetryBaseDelay == 0 {
		cfg.RetryBaseDelay = DefaultRetryBaseDelay
	}
	if cfg.RetryMaxDelay == 0 {
		cfg.RetryMaxDelay = DefaultRetryMaxDelay
	}
	if cfg.Log.GetSink() == nil {
		cfg.Log = logr.Discard()
	}
	return &Controller{
		cfg:      cfg,
		observed: map[types.NamespacedName]string{},
		full:     map[types.NamespacedName]string{},
	}, nil
}

// NeedLeaderElection implements manager.LeaderElectionRunnable: only the leader observes.
func (c *Controller) NeedLeaderElection() bool { return true }

// Start implements manager.Runnable: it asks discovery every DiscoveryInterval, watches Kustomizations while
// their API is served, and observes their applied revisions until ctx ends.
func (c *Controller) Start(ctx context.Context) error {
	log := c.cfg.Log
	c.queue = workqueue.NewTypedRateLimitingQueue(
		workqueue.NewTypedItemExponentialFailureRateLimiter[types.NamespacedName](c.cfg.RetryBaseDelay, c.cfg.RetryMaxDelay))
	var workers sync.WaitGroup
	workers.Go(func() {
		for c.processNext(ctx) {
		}
	})
	defer func() {
		c.queue.ShutDown()
		workers.Wait()
	}()
	var stop context.CancelFunc // the watch's, while it runs
	tick := time.NewTicker(c.cfg.DiscoveryInterval)
	defer tick.Stop()
	for {
		served, err := c.served()
		switch {
		case err != nil:
			log.V(1).Info("Cannot tell whether Flux's Kustomization API is served", "error", err.Error())
		case served && stop == nil:
			log.Info("Flux's Kustomization API is served: observing applied revisions", "apiVersion", KustomizationGVR.GroupVersion().String())
			stop = c.watch(ctx)
		case !served && stop != nil:
			log.Info("Flux's Kustomization API is no longer served: not observing", "apiVersion", KustomizationGVR.GroupVersion().String())
			stop()
			stop = nil
		}
		select {
		case <-ctx.Done():
			if stop != nil {
				stop()
			}
			return nil
		case <-tick.C:
		}
	}
}

// served reports whether the API server serves Kustomizations.
func (c *Controller) served() (bool, error) {
	list, err := c.cfg.Discovery.ServerResourcesForGroupVersion(KustomizationGVR.GroupVersion().String())
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("discover %s: %w", KustomizationGVR.GroupVersion(), err)
	}
	for _, r := range list.APIResources {
		if r.Name == KustomizationGVR.Resource {
			return true, nil
		}
	}
	return false, nil
}

// watch starts the Kustomization informer; the returned function stops it.
func (c *Controller) watch(ctx context.Context) context.CancelFunc {
	ctx, cancel := context.WithCancel(ctx)
	inf := dynamicinformer.NewFilteredDynamicInformer(c.cfg.Dynamic, KustomizationGVR, c.cfg.Namespace, 0, cache.Indexers{}, nil).Informer()
	_ = inf.SetTransform(Trim) // fails only once the informer runs
	enqueue := func(obj any) {
		if key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj); err == nil {
			ns, name, _ := cache.SplitMetaNamespaceKey(key)
			c.queue.Add(types.NamespacedName{Namespace: ns, Name: name})
		}
	}
	_, _ = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, obj any) { enqueue(obj) },
		DeleteFunc: enqueue,
	})
	var done sync.WaitGroup
	done.Go(func() { inf.RunWithContext(ctx) })
	done.Go(func() { c.resume(ctx, inf) })
	return func() {
		cancel()
		done.Wait()
		c.mu.Lock()
		c.store = nil
		c.mu.Unlock()
	}
}

// resume waits for the informer's first list, loads the ledger, forgets the Kustomizations gone meanwhile,
// then lets the worker observe every Kustomization.
func (c *Controller) resume(ctx context.Context, inf cache.SharedIndexInformer) {
	log := c.cfg.Log
	if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		return
	}
	var observed map[types.NamespacedName]string
	for delay := time.Second; ; delay = min(2*delay, time.Minute) {
		var err error
		if observed, err = c.cfg.Ledger.Load(ctx); err == nil {
			break
		}
		log.Error(err, "Cannot read the Flux ledger; trying again", "in", delay)
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
	}
	store := inf.GetStore()
	var gone []types.NamespacedName
	for k := range observed {
		if _, exists, _ := store.GetByKey(k.String()); !exists {
			gone = append(gone, k)
			delete(observed, k)
		}
	}
	if len(gone) > 0 {
		if err := c.cfg.Ledger.Forget(ctx, gone...); err != nil {
			log.Error(err, "Cannot forget deleted Kustomizations in the Flux ledger", "kustomizations", len(gone))
		}
	}
	c.mu.Lock()
	c.store, c.observed = store, observed
	c.mu.Unlock()
	for _, key := range store.ListKeys() {
		ns, name, _ := cache.SplitMetaNamespaceKey(key)
		c.queue.Add(types.NamespacedName{Namespace: ns, Name: name})
	}
}

// processNext handles one Kustomization of the queue: the workqueue is the one retry layer.
func (c *Controller) processNext(ctx context.Context) bool {
	k, shutdown := c.queue.Get()
	if shutdown {
		return false
	}
	defer c.queue.Done(k)
	final := c.queue.NumRequeues(k) >= c.cfg.MaxRetries
	err := c.sync(ctx, k, final)
	var ra *sink.RetryAfterError
	switch {
	case err == nil:
		c.queue.Forget(k)
	case errors.As(err, &ra):
		// Rate limited: come back when GitHub says, without counting it as a failure.
		c.queue.AddAfter(k, time.Until(ra.At))
	case final:
		c.queue.Forget(k)
		c.cfg.Log.Error(err, "Giving up on the applied revision of a Kustomization", "kustomization", k.String(), "attempts", c.cfg.MaxRetries+1)
	default:
		c.cfg.Log.V(1).Info("Retrying a Kustomization", "kustomization", k.String(), "error", err.Error())
		c.queue.AddRateLimited(k)
	}
	return true
}

// sync observes the applied revision of Kustomization k if the ledger does not hold it yet: the lead time is
// measured, the revision recorded in the ledger, then the observation recorded. final (the last attempt) turns
// a failing lookup into an observation without lead time.
func (c *Controller) sync(ctx context.Context, k types.NamespacedName, final bool) error {
	c.mu.Lock()
	store, seen := c.store, c.observed[k]
	c.mu.Unlock()
	if store == nil {
		return nil // not resumed yet: resume enqueues every Kustomization
	}
	obj, exists, err := store.GetByKey(k.String())
	if err != nil {
		return fmt.Errorf("read Kustomization %s from the cache: %w", k, err)
	}
	if !exists {
		if seen == "" {
			return nil
		}
		if err := c.cfg.Ledger.Forget(ctx, k); err != nil {
			return err
		}
		c.mu.Lock()
		delete(c.observed, k)
		c.mu.Unlock()
		return nil
	}
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		return nil
	}
	kz := FromUnstructured(u)
	applied, ok := kz.Applied()
	if !ok || applied.Revision == seen {
		return nil
	}
	o, err := c.measure(ctx, kz, applied, final)
	if err != nil {
		return err
	}
	recorded, err := c.cfg.Ledger.Observe(ctx, k, applied.Revision)
	if errors.Is(err, ErrLedgerFull) {
		c.mu.Lock()
		logIt := c.full[k] != applied.Revision
		c.full[k] = applied.Revision
		c.mu.Unlock()
		if logIt {
			c.cfg.Log.Error(err, "Not observing an applied revision", "kustomization", k.String(), "revision", applied.Revision)
		}
		return nil
	}
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.observed[k] = applied.Revision
	c.mu.Unlock()
	if !recorded {
		return nil
	}
	c.cfg.Recorder.Record(ctx, o)
	log := c.cfg.Log.WithValues("kustomization", k.String(), "revision", applied.Revision, "appliedAt", applied.At)
	if o.Reason != "" {
		log.Info("Observed a Flux revision without lead time", "reason", o.Reason)
	} else {
		log.Info("Observed a Flux revision", "commit", o.Commit, "repository", o.Repository, "leadTime", o.LeadTime.String())
	}
	return nil
}

// measure finds the commit time of an applied revision. Errors are worth retrying; on the final attempt they
// become ReasonLookupFailed.
func (c *Controller) measure(ctx context.Context, kz Kustomization, applied Applied, final bool) (Observation, error) {
	o := Observation{Kustomization: kz.Key(), Cluster: c.cfg.Cluster, Revision: applied.Revision, Commit: applied.Commit, AppliedAt: applied.At}
	failed := func(err error) (Observation, error) {
		if final {
			o.Reason = ReasonLookupFailed
			return o, nil
		}
		return o, err
	}
	if kz.CommitTime != "" {
		t, err := time.Parse(time.RFC3339, kz.CommitTime)
		if err != nil {
			o.Reason = ReasonInvalidCommitTime
			return o, nil
		}
		o.CommitTime = t
		return leadTime(o), nil
	}
	if applied.Commit == "" {
		o.Reason = ReasonNoCommit
		return o, nil
	}
	owner, repo, ok, err := c.repository(ctx, kz)
	if err != nil {
		return failed(err)
	}
	if !ok {
		o.Reason = ReasonNoRepository
		return o, nil
	}
	o.Repository = owner + "/" + repo
	if c.cfg.Commits == nil {
		o.Reason = ReasonLookupDisabled
		return o, nil
	}
	t, err := c.cfg.Commits.CommitTime(ctx, owner, repo, applied.Commit)
	var pe *sink.PermanentError
	switch {
	case errors.Is(err, ErrCommitNotFound):
		o.Reason = ReasonCommitNotFound
		return o, nil
	case errors.As(err, &pe):
		o.Reason = ReasonRejected
		return o, nil
	case err != nil:
		return failed(err)
	}
	o.CommitTime = t
	return leadTime(o), nil
}

// leadTime completes an observation with a commit time.
func leadTime(o Observation) Observation {
	if o.AppliedAt.Before(o.CommitTime) {
		o.Reason = ReasonAppliedBeforeCommit
		return o
	}
	o.LeadTime = o.AppliedAt.Sub(o.CommitTime)
	return o
}

// repository is the GitHub repository of a Kustomization's commits: its repository annotation, else the URL of
// its GitRepository when that is on one of Hosts. ok is false when there is none; err is worth retrying.
func (c *Controller) repository(ctx context.Context, kz Kustomization) (owner, repo string, ok bool, err error) {
	if kz.Repository != "" {
		owner, repo, ok = ParseRepository(kz.Repository, c.cfg.Hosts, true)
		if !ok {
			c.cfg.Log.V(1).Info("The repository annotation names no GitHub repository", "kustomization", kz.Key().String(), "annotation", AnnotationRepository)
		}
		return owner, repo, ok, nil
	}
	src := kz.Source
	if src.Kind != GitRepositoryKind || src.Name == "" {
		return "", "", false, nil
	}
	if src.APIVersion != "" && !strings.HasPrefix(src.APIVersion, GitRepositoryGVR.Group+"/") {
		return "", "", false, nil
	}
	u, err := c.cfg.Dynamic.Resource(GitRepositoryGVR).Namespace(src.Namespace).Get(ctx, src.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err) || apierrors.IsForbidden(err):
		c.cfg.Log.V(1).Info("Cannot read the GitRepository of a Kustomization", "kustomization", kz.Key().String(),
			"gitRepository", src.Namespace+"/"+src.Name, "error", err.Error())
		return "", "", false, nil
	case err != nil:
		return "", "", false, fmt.Errorf("get GitRepository %s/%s: %w", src.Namespace, src.Name, err)
	}
	url, _, _ := unstructured.NestedString(u.Object, "spec", "url")
	owner, repo, ok = ParseRepository(url, c.cfg.Hosts, false)
	return owner, repo, ok, nil
}
