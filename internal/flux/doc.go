// Package flux measures how long Flux takes to apply a commit: for every Kustomization
// (kustomize.toolkit.fluxcd.io/v1) the revision it applied (status.lastAppliedRevision, or
// status.lastAppliedOriginRevision for an OCI artifact built from Git) and the time of its Ready condition's
// transition to True with reason ReconciliationSucceeded; the commit's time comes from GitHub's commits API (or
// the annotation delivery.deployment-tracker.io/commit-time), the repository from the Kustomization's
// GitRepository (or the annotation delivery.deployment-tracker.io/repository):
//
//	apply lead time = Ready's lastTransitionTime − the commit's committer date
//
// Each applied revision is observed once: the revision is written to the ledger (a ConfigMap in the tracker's
// namespace, see ConfigMapLedger) before it is counted, so a restart or a leader failover does not count it
// again, and only the leader observes.
//
// Flux is not a dependency: Kustomizations and GitRepositories are read as unstructured objects, and the
// Controller starts its watch only once discovery shows the Kustomization API served (it looks again every
// DiscoveryInterval), so a cluster without Flux runs the tracker unchanged.
//
// The files, from the data to the edges: kustomization.go (the parts of a Kustomization that matter, pure),
// revision.go and repository.go (parsing, pure), commits.go (GitHub), ledger.go (the ConfigMap), observe.go
// (the observation and its Prometheus recorder), controller.go (discovery, informer, workqueue).
package flux
