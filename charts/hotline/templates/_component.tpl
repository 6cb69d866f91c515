{{/*
One unit's resources: Deployment, Service, HorizontalPodAutoscaler, PodDisruptionBudget.
The pod spec is written once here; components.yaml renders it for every unit
(the monolith, or each enabled component). Each template takes
(dict "root" $ "unit" <an entry of hotline.units>).
*/}}

{{- define "hotline.podTemplate" -}}
{{- $root := .root }}
{{- $unit := .unit }}
{{- $values := $root.Values }}
{{- $selector := include "hotline.selectorLabels" (dict "root" $root "component" $unit.name) | fromYaml }}
metadata:
  labels:
    {{- include "hotline.labels" (dict "root" $root "component" $unit.name) | nindent 4 }}
    {{- with $values.podLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  annotations:
    checksum/config: {{ include (print $root.Template.BasePath "/configmap.yaml") $root | sha256sum }}
    {{- with $values.podAnnotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  {{- with $values.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with include "hotline.serviceAccountName" $root }}
  serviceAccountName: {{ . }}
  {{- end }}
  automountServiceAccountToken: {{ $values.serviceAccount.automountServiceAccountToken }}
  # Service links would put <SERVICE>_PORT=... variables into the environment; for
  # Services named hotline-* they start with HOTLINE_, which the binary reads as
  # (unknown) configuration keys.
  enableServiceLinks: false
  {{- with $values.priorityClassName }}
  priorityClassName: {{ . }}
  {{- end }}
  securityContext:
    {{- toYaml $values.podSecurityContext | nindent 4 }}
  terminationGracePeriodSeconds: {{ int $values.shutdown.terminationGracePeriodSeconds }}
  containers:
    - name: hotline
      image: {{ include "hotline.image" $root | quote }}
      imagePullPolicy: {{ include "hotline.imagePullPolicy" $root }}
      args:
        - serve
        - --target
        - {{ $unit.target | quote }}
        - --config
        - /etc/hotline/config.toml
      ports:
        - name: http
          containerPort: 8080
          protocol: TCP
        - name: grpc
          containerPort: 9090
          protocol: TCP
      env:
        {{- include "hotline.unitEnv" . | nindent 8 }}
      {{- with $values.extraEnvFrom }}
      envFrom:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $values.probes.startup }}
      startupProbe:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $values.probes.liveness }}
      livenessProbe:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $values.probes.readiness }}
      readinessProbe:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $unit.values.resources }}
      resources:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      securityContext:
        {{- toYaml $values.securityContext | nindent 8 }}
      volumeMounts:
        - name: tmp
          mountPath: /tmp
        - name: data
          mountPath: /data
        - name: config
          mountPath: /etc/hotline
          readOnly: true
        {{- with concat ($values.extraVolumeMounts | default list) ($unit.values.extraVolumeMounts | default list) }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
    {{- with concat ($values.extraContainers | default list) ($unit.values.extraContainers | default list) }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  volumes:
    - name: tmp
      emptyDir: {}
    {{- if and (eq (include "hotline.sqlite" $root) "true") $values.monolith.persistence.enabled }}
    - name: data
      persistentVolumeClaim:
        claimName: {{ $values.monolith.persistence.existingClaim | default (printf "%s-data" (include "hotline.fullname" $root)) }}
    {{- else }}
    - name: data
      emptyDir: {}
    {{- end }}
    - name: config
      configMap:
        name: {{ include "hotline.fullname" $root }}-config
    {{- with concat ($values.extraVolumes | default list) ($unit.values.extraVolumes | default list) }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- with $values.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $values.affinity }}
  affinity:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $values.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- $spread := list }}
  {{- range $values.topologySpreadConstraints }}
  {{- $constraint := deepCopy . }}
  {{- if not (hasKey $constraint "labelSelector") }}
  {{- $_ := set $constraint "labelSelector" (dict "matchLabels" $selector) }}
  {{- end }}
  {{- $spread = append $spread $constraint }}
  {{- end }}
  {{- with $spread }}
  topologySpreadConstraints:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}

{{- define "hotline.unitEnv" -}}
{{- include "hotline.env" (dict "root" .root "target" .unit.target "extraEnv" .unit.values.extraEnv "resourceName" .unit.resourceName) | trim }}
{{- end }}

{{- define "hotline.deployment" -}}
{{- $root := .root }}
{{- $unit := .unit }}
{{- $autoscaling := $unit.values.autoscaling | default dict }}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ $unit.resourceName }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "hotline.labels" (dict "root" $root "component" $unit.name) | nindent 4 }}
  {{- with include "hotline.secretEnvSkip" (dict "root" $root "env" (include "hotline.unitEnv" .)) }}
  annotations:
    {{- . | nindent 4 }}
  {{- end }}
spec:
  {{- if not $autoscaling.enabled }}
  replicas: {{ int $unit.values.replicas }}
  {{- end }}
  revisionHistoryLimit: 5
  selector:
    matchLabels:
      {{- include "hotline.selectorLabels" (dict "root" $root "component" $unit.name) | nindent 6 }}
  {{- if eq (include "hotline.externalBackends" $root) "true" }}
  strategy:
    type: RollingUpdate
    rollingUpdate:
      maxSurge: 25%
      maxUnavailable: 0
  {{- else }}
  # Embedded backends (SQLite on a ReadWriteOnce volume, in-process bus or cache)
  # allow one pod at a time, also during an upgrade.
  strategy:
    type: Recreate
  {{- end }}
  template:
    {{- include "hotline.podTemplate" . | trim | nindent 4 }}
{{- end }}

{{- define "hotline.service" -}}
{{- $root := .root }}
{{- $unit := .unit }}
apiVersion: v1
kind: Service
metadata:
  name: {{ $unit.resourceName }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "hotline.labels" (dict "root" $root "component" $unit.name) | nindent 4 }}
  {{- with $root.Values.service.annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  type: {{ $root.Values.service.type }}
  selector:
    {{- include "hotline.selectorLabels" (dict "root" $root "component" $unit.name) | nindent 4 }}
  ports:
    - name: http
      port: 8080
      targetPort: http
      protocol: TCP
    - name: grpc
      port: 9090
      targetPort: grpc
      protocol: TCP
{{- end }}

{{- define "hotline.hpa" -}}
{{- $root := .root }}
{{- $unit := .unit }}
{{- $autoscaling := $unit.values.autoscaling }}
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: {{ $unit.resourceName }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "hotline.labels" (dict "root" $root "component" $unit.name) | nindent 4 }}
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: {{ $unit.resourceName }}
  minReplicas: {{ int $autoscaling.minReplicas }}
  maxReplicas: {{ int $autoscaling.maxReplicas }}
  metrics:
    {{- with $autoscaling.targetCPUUtilizationPercentage }}
    - type: Resource
      resource:
        name: cpu
        target:
          type: Utilization
          averageUtilization: {{ int . }}
    {{- end }}
    {{- with $autoscaling.targetMemoryUtilizationPercentage }}
    - type: Resource
      resource:
        name: memory
        target:
          type: Utilization
          averageUtilization: {{ int . }}
    {{- end }}
  {{- with $autoscaling.behavior }}
  behavior:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}

{{- define "hotline.pdb" -}}
{{- $root := .root }}
{{- $unit := .unit }}
{{- $pdb := $unit.values.podDisruptionBudget }}
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ $unit.resourceName }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "hotline.labels" (dict "root" $root "component" $unit.name) | nindent 4 }}
spec:
  {{- if hasKey $pdb "minAvailable" }}
  minAvailable: {{ $pdb.minAvailable }}
  {{- else }}
  maxUnavailable: {{ $pdb.maxUnavailable }}
  {{- end }}
  selector:
    matchLabels:
      {{- include "hotline.selectorLabels" (dict "root" $root "component" $unit.name) | nindent 6 }}
{{- end }}
