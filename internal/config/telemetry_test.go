package config

import (
	"flag"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestParseTelemetry: the OpenTelemetry export is off by default, on for both signals with
// -telemetry-endpoint or OTEL_EXPORTER_OTLP_ENDPOINT, and for one signal with its own endpoint variable.
func TestParseTelemetry(t *testing.T) {
	tests := []struct {
		name string
		args []string
		set  map[string]string
		want TelemetryConfig
	}{
		{name: "off by default"},
		{name: "protocol alone: still off", set: map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"},
			want: TelemetryConfig{Protocol: "http/protobuf"}},
		{name: "flag", args: []string{"-telemetry-endpoint=otel-collector.observability:4317", "-telemetry-insecure"},
			want: TelemetryConfig{Endpoint: "otel-collector.observability:4317", Insecure: true, Metrics: true, Traces: true}},
		{name: "flag with an HTTP base URL", args: []string{"-telemetry-endpoint=https://otel.example.com/otlp"},
			set:  map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"},
			want: TelemetryConfig{Endpoint: "https://otel.example.com/otlp", Protocol: "http/protobuf", Metrics: true, Traces: true}},
		{name: "flag wins over a variable it overrides", args: []string{"-telemetry-endpoint=otel-collector:4317"},
			set:  map[string]string{"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "not a URL"},
			want: TelemetryConfig{Endpoint: "otel-collector:4317", Metrics: true, Traces: true}},
		{name: "both signals' variable", set: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://otel-collector:4317"},
			want: TelemetryConfig{Metrics: true, Traces: true}},
		{name: "gRPC host:port in the variable", set: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "otel-collector:4317"},
			want: TelemetryConfig{Metrics: true, Traces: true}},
		{name: "metrics only", set: map[string]string{"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "http://otel-collector:4317"},
			want: TelemetryConfig{Metrics: true}},
		{name: "traces only, insecure", args: []string{"-telemetry-insecure"},
			set:  map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://otel-collector:4317"},
			want: TelemetryConfig{Insecure: true, Traces: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse(flag.NewFlagSet("deployment-tracker", flag.ContinueOnError), tt.args, envOf(tt.set, nil))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if diff := cmp.Diff(tt.want, c.Telemetry); diff != "" {
				t.Errorf("Telemetry (-want +got):\n%s", diff)
			}
			if c.Telemetry.Enabled() != (tt.want.Metrics || tt.want.Traces) {
				t.Errorf("Enabled() = %t", c.Telemetry.Enabled())
			}
		})
	}
}

// TestParseTelemetryErrors: each problem names the flag or variable, and no password in an endpoint shows.
func TestParseTelemetryErrors(t *testing.T) {
	tests := []struct {
		name         string
		args         []string
		set          map[string]string
		wantNames    []string
		wantContains string
	}{
		{name: "endpoint without a port", args: []string{"-telemetry-endpoint=otel-collector"},
			wantNames: []string{"-telemetry-endpoint"}, wantContains: "neither host:port nor an http(s) URL"},
		{name: "gRPC endpoint with a path", args: []string{"-telemetry-endpoint=http://otel-collector:4317/otlp"},
			wantNames: []string{"-telemetry-endpoint"}, wantContains: "a gRPC endpoint has no path"},
		{name: "https and plain text", args: []string{"-telemetry-endpoint=https://otel.example.com", "-telemetry-insecure"},
			wantNames: []string{"-telemetry-endpoint"}, wantContains: "contradicts plain text"},
		{name: "insecure without an endpoint", args: []string{"-telemetry-insecure"},
			wantNames: []string{"-telemetry-insecure"}},
		{name: "http/json", set: map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"},
			wantNames: []string{"OTEL_EXPORTER_OTLP_PROTOCOL"}},
		{name: "variable not a URL", set: map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "otel-collector"},
			wantNames: []string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"}},
		{name: "host:port for OTLP/HTTP", set: map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf", "OTEL_EXPORTER_OTLP_ENDPOINT": "otel-collector:4318"},
			wantNames: []string{"OTEL_EXPORTER_OTLP_ENDPOINT"}},
		{name: "password in a variable", set: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "otlp://user:s3cr3t@otel.example.com"},
			wantNames: []string{"OTEL_EXPORTER_OTLP_ENDPOINT"}},
		{name: "password in the flag", args: []string{"-telemetry-endpoint=https://user:s3cr3t@otel.example.com"},
			wantNames: []string{"-telemetry-endpoint"}, wantContains: "credentials do not belong"},
		{name: "every problem at once", args: []string{"-telemetry-endpoint=otel-collector"},
			set:       map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "thrift"},
			wantNames: []string{"OTEL_EXPORTER_OTLP_PROTOCOL", "-telemetry-endpoint"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(flag.NewFlagSet("deployment-tracker", flag.ContinueOnError), tt.args, envOf(tt.set, nil))
			if err == nil {
				t.Fatal("Parse: no error")
			}
			var names []string
			for _, line := range strings.Split(err.Error(), "\n") {
				name, _, _ := strings.Cut(line, ": ")
				names = append(names, name)
			}
			if diff := cmp.Diff(tt.wantNames, names); diff != "" {
				t.Errorf("Parse error:\n%v\nnames (-want +got):\n%s", err, diff)
			}
			if !strings.Contains(err.Error(), tt.wantContains) {
				t.Errorf("Parse error %q does not contain %q", err, tt.wantContains)
			}
			if strings.Contains(err.Error(), "s3cr3t") {
				t.Errorf("Parse error %q shows the password", err)
			}
		})
	}
}
