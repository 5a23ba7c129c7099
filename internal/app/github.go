package app

import (
	"fmt"
	"os"

	"github.com/go-logr/logr"

	cfgpkg "github.com/deployment-tracker/deployment-tracker/internal/config"
	"github.com/deployment-tracker/deployment-tracker/internal/ghclient"
	"github.com/deployment-tracker/deployment-tracker/internal/sink"
	"github.com/deployment-tracker/deployment-tracker/internal/sink/github"
	"github.com/deployment-tracker/deployment-tracker/internal/sink/githubdeploy"
	"github.com/deployment-tracker/deployment-tracker/internal/sink/logsink"
	"github.com/deployment-tracker/deployment-tracker/internal/version"
)

// gitHubClient is the one GitHub client of the sinks, made on first use: the record sink and the GitHub
// Deployments sink share it, and with it what go-github learns of the rate limits.
func (a *App) gitHubClient(c *cfgpkg.Config) (*ghclient.Client, error) {
	if a.github != nil {
		return a.github, nil
	}
	gc := ghclient.Config{BaseURL: c.BaseURL, UserAgent: version.UserAgent()}
	switch {
	case c.AppID != 0:
		gc.App = &ghclient.AppConfig{AppID: c.AppID, InstallationID: c.InstallationID, PrivateKeyPath: c.AppPrivateKey}
	case c.APITokenFile != "":
		gc.TokenFile = c.APITokenFile
	default:
		gc.Token = c.APIToken
	}
	gh, err := ghclient.New(gc)
	if err != nil {
		return nil, fmt.Errorf("GitHub client: %w", err)
	}
	a.github = gh
	return gh, nil
}

// newSink is the record sink: the dry-run log sink, or GitHub's artifact metadata.
func (a *App) newSink(c *cfgpkg.Config, o Options) (sink.Sink, error) {
	if c.DryRun {
		w := o.DryRunOutput
		if w == nil {
			w = os.Stdout
		}
		return logsink.New(w), nil
	}
	gh, err := a.gitHubClient(c)
	if err != nil {
		return nil, err
	}
	s, err := github.New(github.Config{Client: gh, Org: c.Org})
	if err != nil {
		return nil, fmt.Errorf("GitHub sink: %w", err)
	}
	return s, nil
}

// newGitHubDeployments is the GitHub Deployments rollout sink. Workloads are configured by their annotations
// (in the cache) or by GitHubDeployment objects (cached too: a namespaced List per rollout notification);
// whole workload objects, for JSONPath rules and payloads, are read uncached when a rule needs them.
func (a *App) newGitHubDeployments(c *cfgpkg.Config, log logr.Logger) (sink.RolloutSink, error) {
	gh, err := a.gitHubClient(c)
	if err != nil {
		return nil, err
	}
	mgr := a.Manager
	s, err := githubdeploy.New(githubdeploy.Config{
		Client: gh, Org: c.Org, LogicalEnvironment: c.LogicalEnvironment, Cluster: c.Cluster,
		Targets: githubdeploy.Targets{Cache: mgr.GetCache(), API: mgr.GetAPIReader()},
		Objects: githubdeploy.APIObjects{Reader: mgr.GetAPIReader(), Mapper: mgr.GetRESTMapper()},
		Reporter: githubdeploy.ObjectReporter{
			Client: mgr.GetClient(), Events: mgr.GetEventRecorderFor("deployment-tracker"),
			Log: log.WithName("github-deployments"),
		},
	})
	if err != nil {
		return nil, fmt.Errorf("GitHub Deployments sink: %w", err)
	}
	return s, nil
}
