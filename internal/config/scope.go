package config

import (
	"fmt"

	"k8s.io/apimachinery/pkg/labels"
)

// parseSelectors parses -namespace-selector and -workload-selector (label selector syntax, as kubectl -l takes
// it: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors) into c, and
// returns their problems, each naming its flag. An empty selector selects everything and is stored as nil.
//
// -namespace-selector is refused with -namespace: a namespaced install tracks one namespace, and its Role cannot
// grant the watch of Namespaces that reading their labels needs.
func (c *Config) parseSelectors(namespaceSelector, workloadSelector string) []error {
	var errs []error
	for _, s := range []struct {
		flag, text string
		into       *labels.Selector
	}{{"-namespace-selector", namespaceSelector, &c.NamespaceSelector}, {"-workload-selector", workloadSelector, &c.WorkloadSelector}} {
		sel, err := labels.Parse(s.text)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %q is not a label selector: %w", s.flag, s.text, err))
			continue
		}
		if !sel.Empty() {
			*s.into = sel
		}
	}
	if c.Namespace != "" && c.NamespaceSelector != nil {
		errs = append(errs, fmt.Errorf("-namespace-selector: cannot be combined with -namespace (a namespaced install tracks that one namespace and cannot watch Namespaces)"))
	}
	return errs
}

// SelectorLabelKeys are the label keys that the workload selector reads: the cache keeps them on pods and owner
// metadata.
func (c *Config) SelectorLabelKeys() []string {
	if c.WorkloadSelector == nil {
		return nil
	}
	reqs, _ := c.WorkloadSelector.Requirements()
	keys := make([]string, 0, len(reqs))
	for _, r := range reqs {
		keys = append(keys, r.Key())
	}
	return keys
}
