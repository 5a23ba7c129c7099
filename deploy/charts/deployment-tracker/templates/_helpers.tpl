{{/*
Names. The kustomize install's objects are those of a release named deployment-tracker: <fullname> is then
deployment-tracker, and every name below is the one in deploy/ and certs/.
*/}}
{{- define "dt.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "dt.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* The Secret with the GitHub credentials. */}}
{{- define "dt.authSecret" -}}
{{- default (printf "%s-github" (include "dt.fullname" .)) .Values.auth.existingSecret }}
{{- end }}

{{/* The Secret with the webhook's serving certificate, mounted at the tracker's -cert-dir. */}}
{{- define "dt.tlsSecret" -}}
{{- $c := .Values.webhook.certificate }}
{{- if and (eq $c.source "provided") $c.provided.secretName }}
{{- $c.provided.secretName }}
{{- else }}
{{- printf "%s-webhook-tls" (include "dt.fullname" .) }}
{{- end }}
{{- end }}

{{/* The Service the API server calls the webhook through. */}}
{{- define "dt.webhookService" -}}
{{- printf "%s-webhook" (include "dt.fullname" .) }}
{{- end }}

{{/* Selector labels: only the name, as in deploy/; selectors are immutable, so no value changes them. */}}
{{- define "dt.selectorLabels" -}}
app.kubernetes.io/name: {{ include "dt.name" . }}
{{- end }}

{{/*
Labels of every object: the kustomize install's (app.kubernetes.io/name) and, when asked for, Helm's
recommended labels and commonLabels.
*/}}
{{- define "dt.labels" -}}
{{ include "dt.selectorLabels" . }}
{{- if .Values.standardLabels }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* The namespaces the tracker neither tracks nor reviews (cluster-wide): its own first, then excludeNamespaces. */}}
{{- define "dt.excludedNamespaces" -}}
{{- prepend .Values.excludeNamespaces .Release.Namespace | uniq | toJson }}
{{- end }}

{{/*
The tracker's arguments, as a YAML list. -leader-elect and the namespaces always; every other flag only when
its value is set (not null), otherwise the tracker's own default applies. The excluded namespaces are those
the webhook's namespaceSelector skips: the informer must not record them either. Numbers print as integers
(YAML numbers reach templates as float64, which %v would print as 1e+06).
*/}}
{{- define "dt.args" -}}
{{- $v := .Values }}
{{- $args := list (printf "-leader-elect=%t" $v.leaderElection.enabled) }}
{{- if $v.watchNamespace }}
{{- $args = append $args (printf "-namespace=%s" $v.watchNamespace) }}
{{- else }}
{{- $args = append $args (printf "-exclude-namespaces=%s" (include "dt.excludedNamespaces" . | fromJsonArray | join ",")) }}
{{- end }}
{{- if $v.dryRun }}
{{- $args = append $args "-dry-run=true" }}
{{- end }}
{{- if not $v.ledger.enabled }}
{{- $args = append $args "-ledger-namespace=-" }}
{{- end }}
{{- if not $v.githubDeployments.enabled }}
{{- $args = append $args "-github-deployments=false" }}
{{- end }}
{{- with $v.telemetry.endpoint }}
{{- $args = append $args (printf "-telemetry-endpoint=%s" .) }}
{{- end }}
{{- if $v.telemetry.insecure }}
{{- $args = append $args "-telemetry-insecure=true" }}
{{- end }}
{{- if $v.ledger.keepForeignRecords }}
{{- $args = append $args "-keep-foreign-records=true" }}
{{- end }}
{{- if not $v.deliveryMetrics.enabled }}
{{- $args = append $args "-delivery-metrics=false" }}
{{- end }}
{{- $metrics := $v.ports.metrics }}
{{- if not (kindIs "invalid" $metrics) }}
{{- $metrics = printf ":%d" (int64 $metrics) }}
{{- end }}
{{- $health := $v.ports.health }}
{{- if not (kindIs "invalid" $health) }}
{{- $health = printf ":%d" (int64 $health) }}
{{- end }}
{{- $flags := list
  (list "leader-election-id" $v.leaderElection.id)
  (list "ledger-retention" $v.ledger.retention)
  (list "namespace-selector" $v.namespaceSelector)
  (list "workload-selector" $v.workloadSelector)
  (list "rollout-history" $v.rollouts.history)
  (list "rollout-max-age" $v.rollouts.maxAge)
  (list "flux-discovery-interval" $v.flux.discoveryInterval)
  (list "workers" $v.delivery.workers)
  (list "github-requests-per-minute" $v.delivery.requestsPerMinute)
  (list "github-requests-per-hour" $v.delivery.requestsPerHour)
  (list "unknown-artifact-ttl" $v.delivery.unknownArtifactTTL)
  (list "shutdown-timeout" $v.delivery.shutdownTimeout)
  (list "zap-log-level" $v.logLevel)
  (list "webhook-port" $v.ports.webhook)
  (list "metrics-bind-address" $metrics)
  (list "health-probe-bind-address" $health) }}
{{- range $flags }}
{{- $value := index . 1 }}
{{- if not (kindIs "invalid" $value) }}
{{- if or (kindIs "float64" $value) (kindIs "int64" $value) (kindIs "int" $value) }}
{{- $value = int64 $value }}
{{- end }}
{{- $args = append $args (printf "-%s=%v" (index . 0) $value) }}
{{- end }}
{{- end }}
{{- concat $args $v.extraArgs | toYaml }}
{{- end }}

{{/* A number value as a string of digits, for environment variables. */}}
{{- define "dt.digits" -}}
{{- if kindIs "string" . }}{{ . }}{{ else }}{{ int64 . }}{{ end }}
{{- end }}

{{/* The rules the tracker needs on the pods it tracks: a ClusterRole cluster-wide, a Role with watchNamespace. */}}
{{- define "dt.trackerRules" -}}
# The pod informer (list+watch) confirms Running and departure; get for single reads.
- apiGroups: [""]
  resources: [pods]
  verbs: [get, list, watch]
# Owner metadata: pod -> ReplicaSet -> Deployment, StatefulSet, DaemonSet. Rollouts: the revisions of
# StatefulSets and DaemonSets are ControllerRevisions (a Deployment's are its ReplicaSets).
- apiGroups: [apps]
  resources: [replicasets, deployments, statefulsets, daemonsets, controllerrevisions]
  verbs: [get, list, watch]
# Owner metadata: pod -> Job -> CronJob.
- apiGroups: [batch]
  resources: [jobs, cronjobs]
  verbs: [get, list, watch]
# Events on tracked pods and on the leader-election Lease (core and events.k8s.io). create and patch.
- apiGroups: ["", events.k8s.io]
  resources: [events]
  verbs: [create, patch]
{{- end }}

{{/*
The checks of the values that the schema cannot express; each message names the value to set. Included by
the Deployment's template, so every render runs them.
*/}}
{{- define "dt.validate" -}}
{{- $v := .Values }}
{{- if not $v.dryRun }}
{{- $_ := required "org (ORG) is required: the GitHub organization the records are posted to (or set dryRun=true)" $v.org }}
{{- end }}
{{- $_ := required "logicalEnvironment (LOGICAL_ENVIRONMENT) is required, for example production" $v.logicalEnvironment }}
{{- $_ = required "cluster (CLUSTER) is required: the name of this cluster in the records" $v.cluster }}
{{- $app := $v.auth.app }}
{{- $appSet := or (not (kindIs "invalid" $app.id)) (not (kindIs "invalid" $app.installationID)) }}
{{- if eq $v.auth.method "app" }}
{{- if or (kindIs "invalid" $app.id) (kindIs "invalid" $app.installationID) }}
{{- fail "auth.method=app needs auth.app.id (GH_APP_ID) and auth.app.installationID (GH_INSTALL_ID)" }}
{{- end }}
{{- else if $appSet }}
{{- fail (printf "auth.app.id/installationID are set but auth.method is %s: use exactly one authentication method (set auth.method=app, or unset them)" $v.auth.method) }}
{{- end }}
{{- if and (gt (int $v.replicas) 1) (not $v.leaderElection.enabled) }}
{{- fail "replicas > 1 needs leaderElection.enabled: without a leader every replica would post the same records" }}
{{- end }}
{{- if eq $v.watchNamespace .Release.Namespace }}
{{- fail "watchNamespace must not be the release namespace: the webhook never reviews the tracker's own pods" }}
{{- end }}
{{- $c := $v.webhook.certificate }}
{{- if and (eq $c.source "issuer") (not $c.issuerRef.name) }}
{{- fail "webhook.certificate.source=issuer needs webhook.certificate.issuerRef.name (an Issuer in the release namespace or a ClusterIssuer)" }}
{{- end }}
{{- if and (eq $c.source "provided") (not $c.provided.caBundle) }}
{{- fail "webhook.certificate.source=provided needs webhook.certificate.provided.caBundle (the base64 PEM CA that signed the Secret's certificate)" }}
{{- end }}
{{- if and $v.telemetry.protocol (hasKey $v.telemetry.env "OTEL_EXPORTER_OTLP_PROTOCOL") }}
{{- fail "telemetry.protocol and telemetry.env.OTEL_EXPORTER_OTLP_PROTOCOL are both set: set one" }}
{{- end }}
{{- end }}
