// Package extract finds the git ref of a rollout in its workload: the GitHub Deployments sink sends it as the
// deployment's ref, and delivery metrics later resolve it to commits.
//
// A Rule names one source and two optional shaping steps, applied in this order:
//
//  1. The source: the tag of a container's image (ContainerName, or the first container when no source is
//     set), or one value of a client-go JSONPath template over the workload object (JSONPath), for instance an
//     annotation the CI pipeline writes. An image without a tag yields "latest", as the runtime pulls it.
//  2. Regexp (optional): the match's group named "ref", else its only capture group, else the whole match.
//  3. Template (optional): "{}" is replaced by the ref; a template without "{}" is a prefix.
//
// The result must be a usable git ref name (non-empty, no whitespace or control characters, no "..", not
// starting with "-", at most 255 bytes). Every failure is an error written for a human reading a Kubernetes
// condition; the caller reports it (condition and Event) and makes no call with a made-up ref.
//
// Examples, for a container "app" with image "ghcr.io/o/app:v1.2.3@sha256:…":
//
//	Rule{}                                                      → "v1.2.3"
//	Rule{ContainerName: "app", Regexp: `^v(\d+\.\d+\.\d+)$`}     → "1.2.3"
//	Rule{Template: "refs/tags/{}"}                              → "refs/tags/v1.2.3"
//	Rule{Regexp: `-g(?P<ref>[0-9a-f]{7,40})$`}                  → the commit of a "v1.2-3-gabc1234" tag
//	Rule{JSONPath: "{.metadata.annotations.source-ref}"}        → the annotation's value
//	Rule{JSONPath: `{.metadata.labels.app\.kubernetes\.io/version}`, Template: "v"} → "v" + the label
//
// The annotation github.deployment-tracker.io/ref-from chooses the source; ParseFrom reads it.
//
// JSONPath syntax: https://kubernetes.io/docs/reference/kubectl/jsonpath/. Git ref names:
// https://git-scm.com/docs/git-check-ref-format.
package extract
