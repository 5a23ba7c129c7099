// Command deployment-tracker records which container images run where in a Kubernetes cluster as GitHub
// artifact deployment records. deployment-tracker -h lists its flags and environment variables.
//
// Exit status: 0 after a clean shutdown (and for -h and -version), 2 for a bad configuration (every problem
// named on stderr), 1 when the tracker fails to start or stops with an error.
//
// deployment-tracker check [flags] checks, with the same flags and environment variables, what the tracker
// needs in the cluster and at GitHub (see internal/preflight): exit status 0 when no check failed, 1 when one
// did, 2 for a bad configuration.
package main

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math"
	"os"
	"strconv"

	"github.com/KimMachineGun/automemlimit/memlimit"
	"github.com/go-logr/logr"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/deployment-tracker/deployment-tracker/internal/app"
	"github.com/deployment-tracker/deployment-tracker/internal/config"
	"github.com/deployment-tracker/deployment-tracker/internal/preflight"
	"github.com/deployment-tracker/deployment-tracker/internal/version"
)

func main() {
	os.Exit(run())
}

func run() int {
	app.StreamInitialLists()
	if len(os.Args) > 1 && os.Args[1] == "check" {
		return preflight.Main(ctrl.SetupSignalHandler(), os.Args[2:], config.OSEnv, preflight.Options{})
	}
	fs := flag.NewFlagSet("deployment-tracker", flag.ContinueOnError)
	zapOpts := zap.Options{}
	zapOpts.BindFlags(fs)
	showVersion := fs.Bool("version", false, "print the version, commit and build date, and exit")
	cfg, err := config.Load(fs, os.Args[1:], config.OSEnv)
	switch {
	case errors.Is(err, flag.ErrHelp):
		config.Usage(os.Stdout, fs)
		return 0
	case *showVersion:
		fmt.Println(version.String())
		return 0
	case err != nil:
		fmt.Fprintf(os.Stderr, "deployment-tracker: invalid configuration:\n%v\n(deployment-tracker -h lists the flags and environment variables)\n", err)
		return 2
	}
	log := zap.New(zap.UseFlagOptions(&zapOpts))
	routeLogs(log)
	if code := setMemoryLimit(log); code != 0 {
		return code
	}
	log.Info("starting", "version", version.Version, "commit", version.BuildCommit(), "cluster", cfg.Cluster,
		"logicalEnvironment", cfg.LogicalEnvironment, "org", cfg.Org, "dryRun", cfg.DryRun)

	a, err := app.New(cfg, app.Options{Log: log})
	if err != nil {
		log.Error(err, "setup failed")
		return 1
	}
	if err := a.Start(ctrl.SetupSignalHandler()); err != nil {
		log.Error(err, "stopped with an error")
		return 1
	}
	return 0
}

// setMemoryLimit sets the Go runtime's soft memory limit to 90 % of the container's memory limit (its cgroup's),
// so that the garbage collector works harder as the heap nears the limit instead of the container being killed
// for it: AUTOMEMLIMIT sets another ratio (0 to 1) or "off", GOMEMLIMIT a limit of its own. It returns 2 for
// an AUTOMEMLIMIT that is not one; a limit it cannot read leaves the runtime's default (none), logged.
func setMemoryLimit(log logr.Logger) int {
	if v, ok := os.LookupEnv("AUTOMEMLIMIT"); ok && v != "off" {
		if r, err := strconv.ParseFloat(v, 64); err != nil || !(r > 0 && r <= 1) {
			fmt.Fprintf(os.Stderr, "deployment-tracker: invalid configuration:\nAUTOMEMLIMIT=%q: want a ratio of the container's memory limit above 0 and at most 1, or off\n", v)
			return 2
		}
	}
	limit, err := memlimit.Set(memlimit.WithLogger(slog.New(logr.ToSlogHandler(log.V(1).WithName("memlimit")))))
	if err != nil {
		log.Info("Memory limit of the container not read; the Go runtime has no soft memory limit", "error", err.Error())
		return 0
	}
	if limit > 0 && limit < math.MaxInt64 {
		log.Info("Go runtime soft memory limit", "bytes", limit)
	}
	return 0
}
