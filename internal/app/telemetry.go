package app

import (
	"context"
	"fmt"

	"github.com/go-logr/logr"
	"go.opentelemetry.io/otel"

	cfgpkg "github.com/deployment-tracker/deployment-tracker/internal/config"
	"github.com/deployment-tracker/deployment-tracker/internal/delivery"
	"github.com/deployment-tracker/deployment-tracker/internal/telemetry"
)

// telemetryExporter is the OpenTelemetry exporter of the delivery observations (-telemetry-endpoint, the
// OTEL_EXPORTER_OTLP_* variables), an Exporter of the delivery sink beside Prometheus'; nil when the export
// is off. shutdown, never nil, flushes what is left within -shutdown-timeout, even when ctx has ended
// already (the signal's context, at exit); call it once the delivery sink records no more.
func (a *App) telemetryExporter(c *cfgpkg.Config, log logr.Logger) (exp delivery.Exporter, shutdown func(context.Context) error, err error) {
	t := c.Telemetry
	if !t.Enabled() {
		return nil, func(context.Context) error { return nil }, nil
	}
	log = log.WithName("otel")
	// The SDK reports what goes wrong in the background, a failed export (the collector down, a refused
	// header), to OpenTelemetry's global handler; it would print it with the standard library's logger.
	otel.SetLogger(log)
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) { log.Error(err, "OpenTelemetry export failed") }))
	e, err := telemetry.New(context.Background(), telemetry.Config{
		Endpoint: t.Endpoint, Insecure: t.Insecure, Protocol: t.Protocol, Cluster: c.Cluster,
		DisableMetrics: !t.Metrics, DisableTraces: !t.Traces,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("OpenTelemetry: %w", err)
	}
	endpoint, protocol := t.Endpoint, t.Protocol
	if endpoint == "" {
		endpoint = "from OTEL_EXPORTER_OTLP_*ENDPOINT"
	}
	if protocol == "" {
		protocol = telemetry.ProtocolGRPC
	}
	log.Info("Exporting the delivery metrics and rollout traces over OTLP", "endpoint", endpoint, "protocol", protocol,
		"metrics", t.Metrics, "traces", t.Traces)
	return e, func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.ShutdownTimeout)
		defer cancel()
		return e.Shutdown(ctx)
	}, nil
}
