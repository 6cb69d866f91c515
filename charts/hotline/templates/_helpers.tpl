{{/*
Names, labels and the list of units (Deployments) this release runs.
*/}}

{{- define "hotline.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Resource-name prefix: the release name, plus the chart name unless the release
name already contains it (release "hotline" gives "hotline", "hl" gives "hl-hotline").
*/}}
{{- define "hotline.fullname" -}}
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

{{- define "hotline.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Selector labels of one component. Takes (dict "root" $ "component" "identity").
*/}}
{{- define "hotline.selectorLabels" -}}
app.kubernetes.io/name: {{ include "hotline.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/*
All labels of one component's resources. Takes (dict "root" $ "component" "identity").
*/}}
{{- define "hotline.labels" -}}
helm.sh/chart: {{ include "hotline.chart" .root }}
{{ include "hotline.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: hotline
{{- end }}

{{/*
Labels of resources that belong to no component (ConfigMap, ServiceMonitor, PVC).
*/}}
{{- define "hotline.commonLabels" -}}
helm.sh/chart: {{ include "hotline.chart" . }}
app.kubernetes.io/name: {{ include "hotline.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: hotline
{{- end }}

{{/*
The pods' ServiceAccount: the chart's (`serviceAccount.name` or the fullname) when it
creates one, else the named existing one; empty: the namespace's default.
*/}}
{{- define "hotline.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "hotline.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The Hotline image: by digest when image.digest is set (with image.tag beside it, if
given, for people: the digest decides), else by tag (default: the appVersion).
*/}}
{{- define "hotline.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s%s@%s" .Values.image.repository (ternary (printf ":%s" .Values.image.tag) "" (ne .Values.image.tag "")) .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/*
image.pullPolicy, or by default Always for a tag (which may be moved to another
image) and IfNotPresent for a digest (which cannot).
*/}}
{{- define "hotline.imagePullPolicy" -}}
{{- .Values.image.pullPolicy | default (ternary "IfNotPresent" "Always" (ne .Values.image.digest "")) }}
{{- end }}

{{/*
checkov.io/skip annotations of an object whose Hotline container gets secrets as
environment variables (secretKeyRef, envFrom secretRef): the binary reads them from
nowhere else. Takes (dict "root" $ "env" <the rendered env YAML>). Renders the
annotation lines, or nothing.
*/}}
{{- define "hotline.secretEnvSkip" -}}
{{- $fromSecret := contains "secretKeyRef:" .env }}
{{- range .root.Values.extraEnvFrom }}{{ if hasKey . "secretRef" }}{{ $fromSecret = true }}{{ end }}{{ end }}
{{- if $fromSecret }}
checkov.io/skip1: CKV_K8S_35=hotline reads its secrets (database, AMQP and Redis URLs, the PII key, the bootstrap client, SMPP or gateway credentials) only from HOTLINE_* variables or its one --config file; it has no setting that names a file holding a secret
{{- end }}
{{- end }}

{{/*
"true" when every backend is external (PostgreSQL, RabbitMQ, Redis): the only
setup in which a Deployment may have more than one pod.
*/}}
{{- define "hotline.externalBackends" -}}
{{- if and .Values.database.existingSecret .Values.bus.existingSecret .Values.cache.existingSecret }}true{{ end }}
{{- end }}

{{/*
"true" when the monolith keeps its SQLite files on /data.
*/}}
{{- define "hotline.sqlite" -}}
{{- if and (eq .Values.deploymentMode "monolith") (not .Values.database.existingSecret) }}true{{ end }}
{{- end }}

{{/*
"true" when migrations run in the hook Job rather than at pod start.
*/}}
{{- define "hotline.migrationJob" -}}
{{- if and .Values.migrations.enabled .Values.database.existingSecret }}true{{ end }}
{{- end }}

{{/*
Names of the enabled components, sorted, comma-separated.
*/}}
{{- define "hotline.enabledComponents" -}}
{{- $names := list }}
{{- range $name, $component := .Values.components }}
{{- if $component.enabled }}
{{- $names = append $names $name }}
{{- end }}
{{- end }}
{{- join "," $names }}
{{- end }}

{{/*
The --target of `hotline migrate`: what the release runs.
*/}}
{{- define "hotline.migrationTargets" -}}
{{- if eq .Values.deploymentMode "monolith" }}
{{- .Values.monolith.target | nospace }}
{{- else }}
{{- include "hotline.enabledComponents" . }}
{{- end }}
{{- end }}

{{/*
"true" when a --target value runs identity. Takes the target string.
*/}}
{{- define "hotline.runsIdentity" -}}
{{- $targets := splitList "," (nospace .) }}
{{- if or (has "all" $targets) (has "identity" $targets) }}true{{ end }}
{{- end }}

{{- define "hotline.runsRouting" -}}
{{- $targets := splitList "," (nospace .) }}
{{- if or (has "all" $targets) (has "routing" $targets) }}true{{ end }}
{{- end }}

{{/*
The units this release runs, as YAML: {units: [{name, resourceName, target, values}]}.
monolith: one unit named "all" (component label "all", resources named after the
release); microservices: one unit per enabled component, sorted by name.
Read it with: (include "hotline.units" . | fromYaml).units
*/}}
{{- define "hotline.units" -}}
{{- $root := . }}
{{- $fullname := include "hotline.fullname" . }}
{{- $units := list }}
{{- if eq .Values.deploymentMode "monolith" }}
{{- $units = append $units (dict "name" "all" "resourceName" $fullname "target" (nospace .Values.monolith.target) "values" .Values.monolith) }}
{{- else }}
{{- range $name, $component := .Values.components }}
{{- if $component.enabled }}
{{- $resourceName := printf "%s-%s" $fullname $name | trunc 63 | trimSuffix "-" }}
{{- $units = append $units (dict "name" $name "resourceName" $resourceName "target" $name "values" $component) }}
{{- end }}
{{- end }}
{{- end }}
{{- toYaml (dict "units" $units) }}
{{- end }}

{{/*
"true" when a unit's Deployment may have more than one pod, i.e. it has an HPA or replicas > 1.
Takes a unit.
*/}}
{{- define "hotline.multiReplica" -}}
{{- $values := .values }}
{{- if or (and $values.autoscaling $values.autoscaling.enabled) (gt (int $values.replicas) 1) }}true{{ end }}
{{- end }}

{{/*
Environment of every Hotline container (Deployments and the migration Job), as a
YAML list. Takes (dict "root" $ "target" "identity" "extraEnv" list "resourceName" name).
The global extraEnv, then the unit's, come last and replace a chart variable of the
same name (no duplicate names reach Kubernetes). Never add a HOTLINE_* variable here
that is not a configuration key: the binary rejects unknown keys.
*/}}
{{- define "hotline.env" -}}
{{- $root := .root }}
{{- $values := $root.Values }}
{{- $env := list }}
{{- $plain := dict
  "HOTLINE_SERVER__HTTP_ADDR" "0.0.0.0:8080"
  "HOTLINE_SERVER__GRPC_ADDR" "0.0.0.0:9090"
  "HOTLINE_SERVER__SHUTDOWN_DELAY" (printf "%ds" (int $values.shutdown.delaySeconds))
  "HOTLINE_SERVER__DRAIN_TIMEOUT" (printf "%ds" (int $values.shutdown.drainTimeoutSeconds))
  "HOTLINE_DATA_DIR" "/data"
  "HOTLINE_TELEMETRY__LOG_FORMAT" $values.telemetry.logFormat
  "HOTLINE_TELEMETRY__LEVEL" $values.telemetry.level
  "HOTLINE_DATABASE__MAX_CONNECTIONS" ($values.database.maxConnections | int | toString)
  "HOTLINE_DATABASE__MIGRATE_ON_START" (ternary "false" "true" (eq (include "hotline.migrationJob" $root) "true"))
}}
{{- range $name := list "HOTLINE_SERVER__HTTP_ADDR" "HOTLINE_SERVER__GRPC_ADDR" "HOTLINE_SERVER__SHUTDOWN_DELAY" "HOTLINE_SERVER__DRAIN_TIMEOUT" "HOTLINE_DATA_DIR" "HOTLINE_TELEMETRY__LOG_FORMAT" "HOTLINE_TELEMETRY__LEVEL" "HOTLINE_DATABASE__MAX_CONNECTIONS" "HOTLINE_DATABASE__MIGRATE_ON_START" }}
{{- $env = append $env (dict "name" $name "value" (get $plain $name)) }}
{{- end }}
{{- with $values.telemetry.otlpEndpoint }}
{{- $env = append $env (dict "name" "OTEL_EXPORTER_OTLP_ENDPOINT" "value" .) }}
{{- $env = append $env (dict "name" "K8S_POD_NAME" "valueFrom" (dict "fieldRef" (dict "fieldPath" "metadata.name"))) }}
{{- $env = append $env (dict "name" "OTEL_RESOURCE_ATTRIBUTES" "value" (printf "k8s.namespace.name=%s,k8s.deployment.name=%s,k8s.pod.name=$(K8S_POD_NAME)" $root.Release.Namespace $.resourceName)) }}
{{- end }}
{{- $secretEnv := list }}
{{- if $values.database.existingSecret }}
{{- $secretEnv = append $secretEnv (list "HOTLINE_DATABASE__URL" $values.database.existingSecret $values.database.secretKey) }}
{{- end }}
{{- if $values.bus.existingSecret }}
{{- $env = append $env (dict "name" "HOTLINE_BUS__KIND" "value" "amqp") }}
{{- $secretEnv = append $secretEnv (list "HOTLINE_BUS__AMQP_URL" $values.bus.existingSecret $values.bus.secretKey) }}
{{- end }}
{{- if $values.cache.existingSecret }}
{{- $env = append $env (dict "name" "HOTLINE_CACHE__KIND" "value" "redis") }}
{{- $secretEnv = append $secretEnv (list "HOTLINE_CACHE__REDIS_URL" $values.cache.existingSecret $values.cache.secretKey) }}
{{- end }}
{{- if eq (include "hotline.runsIdentity" .target) "true" }}
{{- with $values.piiKey.existingSecret }}
{{- $secretEnv = append $secretEnv (list "HOTLINE_IDENTITY__PII_KEY" . $values.piiKey.secretKey) }}
{{- end }}
{{- with $values.bootstrapClient.existingSecret }}
{{- $secretEnv = append $secretEnv (list "HOTLINE_BOOTSTRAP_CLIENT_ID" . $values.bootstrapClient.idKey) }}
{{- $secretEnv = append $secretEnv (list "HOTLINE_BOOTSTRAP_CLIENT_SECRET" . $values.bootstrapClient.secretKey) }}
{{- end }}
{{- end }}
{{- if eq (include "hotline.runsRouting" .target) "true" }}
{{- /* The other replicas forward commands to the router's holder at this address. */}}
{{- $env = append $env (dict "name" "POD_IP" "valueFrom" (dict "fieldRef" (dict "fieldPath" "status.podIP"))) }}
{{- $env = append $env (dict "name" "HOTLINE_ROUTING__ADVERTISE_GRPC" "value" "http://$(POD_IP):9090") }}
{{- end }}
{{- range $secretEnv }}
{{- $env = append $env (dict "name" (index . 0) "valueFrom" (dict "secretKeyRef" (dict "name" (index . 1) "key" (index . 2)))) }}
{{- end }}
{{- if eq $values.deploymentMode "microservices" }}
{{- $fullname := include "hotline.fullname" $root }}
{{- range $name, $component := $values.components }}
{{- if and $component.enabled $component.peer }}
{{- $host := printf "%s-%s" $fullname $name | trunc 63 | trimSuffix "-" }}
{{- $key := $name | upper | replace "-" "_" }}
{{- $env = append $env (dict "name" (printf "HOTLINE_PEERS__%s_GRPC" $key) "value" (printf "http://%s:9090" $host)) }}
{{- $env = append $env (dict "name" (printf "HOTLINE_PEERS__%s_HTTP" $key) "value" (printf "http://%s:8080" $host)) }}
{{- end }}
{{- end }}
{{- end }}
{{- $env = concat $env ($values.extraEnv | default list) (.extraEnv | default list) }}
{{- /* Keep the last entry of each name. */}}
{{- $names := list }}
{{- range $env }}{{ $names = append $names .name }}{{ end }}
{{- $final := list }}
{{- range $i, $entry := $env }}
{{- if not (has $entry.name (slice $names (add1 $i))) }}
{{- $final = append $final $entry }}
{{- end }}
{{- end }}
{{- toYaml $final }}
{{- end }}

{{/*
The Ingress's paths as YAML: {paths: [{path, pathType, service, component}]}: each
service's components.<name>.ingressPaths (Prefix) to the Service running it, then
ingress.extraPaths. Read it with: (include "hotline.ingressPaths" . | fromYaml).paths
*/}}
{{- define "hotline.ingressPaths" -}}
{{- $values := .Values }}
{{- $paths := list }}
{{- $units := (include "hotline.units" . | fromYaml).units }}
{{- range $units }}
{{- $unit := . }}
{{- $services := list }}
{{- if eq $unit.name "all" }}
{{- $services = splitList "," $unit.target }}
{{- if has "all" $services }}{{ $services = keys $values.components | sortAlpha }}{{ end }}
{{- else }}
{{- $services = list $unit.name }}
{{- end }}
{{- range $services | uniq }}
{{- $component := . }}
{{- range (get $values.components $component).ingressPaths }}
{{- $paths = append $paths (dict "path" . "pathType" "Prefix" "service" $unit.resourceName "component" $component) }}
{{- end }}
{{- end }}
{{- end }}
{{- $monolith := eq $values.deploymentMode "monolith" }}
{{- range $values.ingress.extraPaths }}
{{- $extra := . }}
{{- $service := "" }}
{{- range $units }}
{{- if or $monolith (eq .name ($extra.component | default "")) }}{{ $service = .resourceName }}{{ end }}
{{- end }}
{{- $paths = append $paths (dict "path" $extra.path "pathType" ($extra.pathType | default "Prefix") "service" $service "component" ($extra.component | default "")) }}
{{- end }}
{{- toYaml (dict "paths" $paths) }}
{{- end }}
