package telemetry

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"path"
	"strconv"
	"strings"

	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetricgrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
)

// The OTLP protocols, as OTEL_EXPORTER_OTLP_PROTOCOL names them
// (https://opentelemetry.io/docs/specs/otel/protocol/exporter/#specify-protocol). http/json is not one: the Go
// metric exporter does not speak it.
const (
	ProtocolGRPC         = "grpc"
	ProtocolHTTPProtobuf = "http/protobuf"
)

// The paths OTLP/HTTP appends to a base URL (https://opentelemetry.io/docs/specs/otlp/#otlphttp-request).
const (
	metricsPath = "v1/metrics"
	tracesPath  = "v1/traces"
)

// endpoint is a parsed Config.Endpoint: hostPort alone (TLS unless Config.Insecure), or a URL.
type endpoint struct {
	hostPort string
	url      *url.URL // nil for host:port
}

// CheckEndpoint reports whether New accepts endpoint for protocol ("" is grpc) and insecure: host:port, or an
// http(s) URL without credentials, query or fragment, with a path (the base of /v1/metrics and /v1/traces)
// for OTLP/HTTP only, and not https with insecure. The empty endpoint is valid: the exporters then read the
// standard variables.
func CheckEndpoint(endpoint, protocol string, insecure bool) error {
	_, err := parseEndpoint(endpoint, protocol, insecure)
	return err
}

func parseEndpoint(s, protocol string, insecure bool) (endpoint, error) {
	const examples = "such as otel-collector.observability:4317 or http://otel-collector.observability:4318"
	switch {
	case s == "":
		return endpoint{}, nil
	case strings.Contains(s, "://"):
		u, err := url.Parse(s)
		switch {
		case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
			return endpoint{}, fmt.Errorf("%q is neither host:port nor an http(s) URL (%s)", s, examples)
		case u.User != nil:
			return endpoint{}, fmt.Errorf("%q: credentials do not belong in the endpoint (send them as headers: OTEL_EXPORTER_OTLP_HEADERS)", u.Redacted())
		case u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.Contains(s, "#"):
			return endpoint{}, fmt.Errorf("%q: must not have a query or a fragment", s)
		case protocol != ProtocolHTTPProtobuf && strings.Trim(u.Path, "/") != "":
			return endpoint{}, fmt.Errorf("%q: a gRPC endpoint has no path (a path is for OTLP/HTTP, OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf)", s)
		case insecure && u.Scheme == "https":
			return endpoint{}, fmt.Errorf("%q is https, which contradicts plain text (insecure); use http:// or host:port", s)
		}
		if err := checkPort(u.Port(), u.Host); err != nil {
			return endpoint{}, err
		}
		return endpoint{url: u}, nil
	default:
		host, port, err := net.SplitHostPort(s)
		if err != nil || host == "" {
			return endpoint{}, fmt.Errorf("%q is neither host:port nor an http(s) URL (%s)", s, examples)
		}
		if err := checkPort(port, s); err != nil {
			return endpoint{}, err
		}
		return endpoint{hostPort: s}, nil
	}
}

// checkPort accepts an empty port (the scheme's) or a number from 1 to 65535.
func checkPort(port, of string) error {
	if port == "" {
		return nil
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("%q: invalid port %q", of, port)
	}
	return nil
}

// signalURL is the URL of one signal: for OTLP/HTTP the base URL with the signal's path appended, as for
// OTEL_EXPORTER_OTLP_ENDPOINT; for gRPC scheme and host only.
func (e endpoint) signalURL(protocol, signalPath string) string {
	u := *e.url
	u.Path = ""
	if protocol == ProtocolHTTPProtobuf {
		u.Path = path.Join("/", e.url.Path, signalPath)
	}
	return u.String()
}

// optionSet is how one exporter package spells the options this package sets: the four OTLP exporters
// (metrics and traces, gRPC and HTTP) each have their own Option type with the same four constructors.
type optionSet[O any] struct {
	url      func(string) O
	endpoint func(string) O
	insecure func() O
	headers  func(map[string]string) O
}

// options are the options of c and ep in one exporter package's spelling; signalPath is appended to a URL
// endpoint for OTLP/HTTP. They win over the OTEL_EXPORTER_OTLP_* variables, which the exporters read first.
func options[O any](c Config, ep endpoint, signalPath string, set optionSet[O]) []O {
	var opts []O
	switch {
	case ep.url != nil:
		opts = append(opts, set.url(ep.signalURL(c.Protocol, signalPath)))
	case ep.hostPort != "":
		opts = append(opts, set.endpoint(ep.hostPort))
	}
	if c.Insecure {
		opts = append(opts, set.insecure())
	}
	if c.Headers != nil {
		opts = append(opts, set.headers(c.Headers))
	}
	return opts
}

// metricExporter is the OTLP metric exporter of c.
func metricExporter(ctx context.Context, c Config, ep endpoint) (sdkmetric.Exporter, error) {
	if c.Protocol == ProtocolHTTPProtobuf {
		return otlpmetrichttp.New(ctx, options(c, ep, metricsPath, optionSet[otlpmetrichttp.Option]{
			otlpmetrichttp.WithEndpointURL, otlpmetrichttp.WithEndpoint, otlpmetrichttp.WithInsecure, otlpmetrichttp.WithHeaders,
		})...)
	}
	return otlpmetricgrpc.New(ctx, options(c, ep, "", optionSet[otlpmetricgrpc.Option]{
		otlpmetricgrpc.WithEndpointURL, otlpmetricgrpc.WithEndpoint, otlpmetricgrpc.WithInsecure, otlpmetricgrpc.WithHeaders,
	})...)
}

// traceExporter is the OTLP span exporter of c, as metricExporter.
func traceExporter(ctx context.Context, c Config, ep endpoint) (*otlptrace.Exporter, error) {
	if c.Protocol == ProtocolHTTPProtobuf {
		return otlptracehttp.New(ctx, options(c, ep, tracesPath, optionSet[otlptracehttp.Option]{
			otlptracehttp.WithEndpointURL, otlptracehttp.WithEndpoint, otlptracehttp.WithInsecure, otlptracehttp.WithHeaders,
		})...)
	}
	return otlptracegrpc.New(ctx, options(c, ep, "", optionSet[otlptracegrpc.Option]{
		otlptracegrpc.WithEndpointURL, otlptracegrpc.WithEndpoint, otlptracegrpc.WithInsecure, otlptracegrpc.WithHeaders,
	})...)
}
