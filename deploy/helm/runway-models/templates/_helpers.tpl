{{/*
Helpers. The chart alone lays out the objects; `runway-models generate` (deploy/) computes the values from
models.json and renders this chart with Helm's engine.
*/}}

{{/* Ray's own ports (Ray's defaults): deploy/constants.py holds the same numbers for the generator;
tests/deploy/test_chart.py compares. KubeRay's RayService name limit (53 for a RayCluster, minus the 6 it appends):
checked here only (runway-models.rayServiceName); deploy/constants.py reads the number from this line. */}}
{{- define "runway-models.gcsPort" -}}6379{{- end }}
{{- define "runway-models.clientPort" -}}10001{{- end }}
{{- define "runway-models.dashboardAgentPort" -}}52365{{- end }}
{{- define "runway-models.maxRayServiceName" -}}47{{- end }}

{{/* Chart name, truncated to 63 characters (a DNS label). */}}
{{- define "runway-models.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Fully qualified app name: the override, the release if it holds the chart name, or both; 63 at most. */}}
{{- define "runway-models.fullname" -}}
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

{{/* The RayService name: the fullname, which KubeRay limits (it appends to it). */}}
{{- define "runway-models.rayServiceName" -}}
{{- $name := include "runway-models.fullname" . }}
{{- $max := include "runway-models.maxRayServiceName" . | int }}
{{- if gt (len $name) $max }}
{{- fail (printf "values.fullnameOverride: the RayService name %q is longer than %d characters (KubeRay's limit); set a shorter fullnameOverride or release name" $name $max) }}
{{- end }}
{{- $name }}
{{- end }}

{{/* The Service KubeRay creates from serveService: pods whose Serve proxy is healthy. */}}
{{- define "runway-models.serveServiceName" -}}
{{- printf "%s-serve" (include "runway-models.rayServiceName" .) }}
{{- end }}

{{/* Service over the gRPC proxies: KubeRay's serve Service carries the `serve` port only (KubeRay 1.7,
common/service.go BuildServeService), so the chart renders this one, selecting the release's Ray pods whose Serve
proxy is healthy by the label KubeRay's serve Service selects them by. */}}
{{- define "runway-models.grpcServiceName" -}}
{{- printf "%s-grpc" (include "runway-models.rayServiceName" .) }}
{{- end }}

{{/* The parentRefs of a Gateway API route (HTTPRoute, GRPCRoute): httpRoute.parentRefs. */}}
{{- define "runway-models.parentRefs" -}}
{{- range .Values.httpRoute.parentRefs }}
- name: {{ .name | quote }}
  {{- with .namespace }}
  namespace: {{ . | quote }}
  {{- end }}
  {{- with .sectionName }}
  sectionName: {{ . | quote }}
  {{- end }}
{{- end }}
{{- end }}

{{/* Container ports every Ray node's Serve proxies listen on: HTTP, and gRPC when grpc.enabled. */}}
{{- define "runway-models.proxyPorts" -}}
- name: serve
  containerPort: {{ .Values.serve.port }}
{{- if .Values.grpc.enabled }}
- name: grpc
  containerPort: {{ .Values.grpc.port }}
{{- end }}
{{- end }}

{{/* Chart name and version, for the helm.sh/chart label. */}}
{{- define "runway-models.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Common labels. */}}
{{- define "runway-models.labels" -}}
helm.sh/chart: {{ include "runway-models.chart" . }}
{{ include "runway-models.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Selector labels: every Ray pod of this release carries them. */}}
{{- define "runway-models.selectorLabels" -}}
app.kubernetes.io/name: {{ include "runway-models.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* The runway-models image; the tag defaults to the chart's appVersion. */}}
{{- define "runway-models.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* The CUDA build GPU pods run (deploy/Dockerfile with the CUDA base and torch): image.gpuTag, else the tag (or
appVersion) with the suffix serve.registry.GPU_IMAGE_SUFFIX names (tests/deploy compares). */}}
{{- define "runway-models.gpuImage" -}}
{{- $tag := default (printf "%s-gpu" (default .Chart.AppVersion .Values.image.tag)) .Values.image.gpuTag }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}

{{/* Peers of a Gateway: networkPolicy.gatewayFrom, else the namespaces of httpRoute.parentRefs (a ref without
one: the release's own namespace, i.e. a bare podSelector). A YAML list, empty when there are none. */}}
{{- define "runway-models.gatewayPeers" -}}
{{- if .Values.networkPolicy.gatewayFrom }}
{{- toYaml .Values.networkPolicy.gatewayFrom }}
{{- else }}
{{- $seen := dict }}
{{- range .Values.httpRoute.parentRefs }}
{{- $ns := .namespace | default "" }}
{{- if not (hasKey $seen $ns) }}
{{- $_ := set $seen $ns true }}
{{- if $ns }}
- namespaceSelector:
    matchLabels:
      kubernetes.io/metadata.name: {{ $ns | quote }}
{{- else }}
- podSelector: {}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}

{{/* Who may reach the Serve port from outside the release: the ingress controller when the Ingress is on, the
Gateway's proxies when the HTTPRoute is on. A YAML list, empty when neither is on. */}}
{{- define "runway-models.servePeers" -}}
{{- $peers := list }}
{{- if .Values.ingress.enabled }}
{{- $peers = concat $peers .Values.networkPolicy.ingressFrom }}
{{- end }}
{{- if .Values.httpRoute.enabled }}
{{- $peers = concat $peers (include "runway-models.gatewayPeers" . | fromYamlArray) }}
{{- end }}
{{- if $peers }}
{{- toYaml $peers }}
{{- end }}
{{- end }}

{{/* A served model's host in Runway's hosted URL form: <model>.<hosted.domain>. Context: dict root, model. */}}
{{- define "runway-models.hostedHost" -}}
{{- printf "%s.%s" .model.name .root.Values.hosted.domain }}
{{- end }}

{{/* Names of the Docker-only entries the RayService does not run. */}}
{{- define "runway-models.dockerNames" -}}
{{- $names := list }}
{{- range .Values.dockerModels }}
{{- $names = append $names .name }}
{{- end }}
{{- join "," $names }}
{{- end }}

{{/* A Docker-only entry's objects: <fullname>-<name>. Context: dict root, model. */}}
{{- define "runway-models.dockerName" -}}
{{- printf "%s-%s" (include "runway-models.rayServiceName" .root) .model.name | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Selector of a Docker-only entry's pods: an instance label of their own keeps them out of the Ray pods'
Services and policies. Context: dict root, model. */}}
{{- define "runway-models.dockerSelectorLabels" -}}
app.kubernetes.io/name: {{ include "runway-models.name" .root }}
app.kubernetes.io/instance: {{ include "runway-models.dockerName" . }}
{{- end }}

{{/* Labels of a Docker-only entry's objects. Context: dict root, model. */}}
{{- define "runway-models.dockerLabels" -}}
helm.sh/chart: {{ include "runway-models.chart" .root }}
{{ include "runway-models.dockerSelectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/component: docker-model
runway-models/model: {{ .model.name }}
{{- end }}

{{/* Environment of Ray containers: weights at RUNWAY_SHARED; HOME and caches on the writable /tmp. */}}
{{- define "runway-models.env" -}}
- name: RUNWAY_SHARED
  value: {{ .Values.weights.mountPath | quote }}
- name: HOME
  value: /tmp
- name: XDG_CACHE_HOME
  value: /tmp/.cache
- name: RAY_USAGE_STATS_ENABLED
  value: "0"
{{- /* Ray's proxy imports our middlewares from here (JSON errors, socket.io frame gate);
  serve/protocols/proxy.py defines it and a test keeps the two equal. */}}
- name: RAY_SERVE_HTTP_PROXY_CALLBACK_IMPORT_PATH
  value: serve.protocols.proxy:middlewares
{{- /* HAProxy in front of the replicas (serve/front.py HAPROXY_ENV; a test keeps the two equal). */}}
{{- if eq .Values.serve.front "haproxy" }}
- name: RAY_SERVE_ENABLE_HA_PROXY
  value: "1"
{{- end }}
{{- /* glibc arenas: serve/heap.py says why (MALLOC_ENV); a test keeps the two equal. */}}
- name: MALLOC_ARENA_MAX
  value: "2"
{{- if .Values.hosted.tokensSecret }}
{{- /* serve/tokens.py reads a file per model from this folder (TOKENS_DIR_ENV). */}}
- name: RUNWAY_TOKENS_DIR
  value: /etc/runway-models/tokens
{{- end }}
{{- end }}

{{/* Volume mounts of Ray containers. */}}
{{- define "runway-models.volumeMounts" -}}
- name: tmp
  mountPath: /tmp
{{- if .Values.hosted.tokensSecret }}
- name: hosted-tokens
  mountPath: /etc/runway-models/tokens
  readOnly: true
{{- end }}
{{- if eq .Values.weights.source "pvc" }}
- name: weights
  mountPath: {{ .Values.weights.mountPath | quote }}
  readOnly: true
{{- end }}
{{- end }}

{{/* Volumes of Ray pods: /tmp (read-only root filesystem) and the weights claim. */}}
{{- define "runway-models.volumes" -}}
- name: tmp
  emptyDir:
    sizeLimit: {{ toYaml .Values.scratch.sizeLimit }}
{{- if .Values.hosted.tokensSecret }}
- name: hosted-tokens
  secret:
    secretName: {{ .Values.hosted.tokensSecret | quote }}
    defaultMode: 0440
{{- end }}
{{- if eq .Values.weights.source "pvc" }}
- name: weights
  persistentVolumeClaim:
    claimName: {{ .Values.weights.claimName | quote }}
    readOnly: true
{{- end }}
{{- end }}

{{/*
One worker group. Context: dict root (the top context), group (name), pool (its values), resources, image.
*/}}
{{- define "runway-models.workerGroup" -}}
{{- $root := .root }}
{{- $values := $root.Values }}
- groupName: {{ .group }}
  replicas: {{ .pool.minReplicas }}
  minReplicas: {{ .pool.minReplicas }}
  maxReplicas: {{ .pool.maxReplicas }}
  rayStartParams:
    metrics-export-port: {{ $values.serve.metricsPort | quote }}
  template:
    metadata:
      labels:
        {{- include "runway-models.selectorLabels" $root | nindent 8 }}
        app.kubernetes.io/component: ray-worker
        runway-models/pool: {{ .group }}
    spec:
      securityContext:
        {{- toYaml $values.podSecurityContext | nindent 8 }}
      {{- with $values.imagePullSecrets }}
      imagePullSecrets:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      automountServiceAccountToken: false
      {{- with .pool.nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with .pool.tolerations }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      containers:
        - name: ray-worker
          image: {{ .image | quote }}
          imagePullPolicy: {{ $values.image.pullPolicy }}
          ports:
            {{- include "runway-models.proxyPorts" $root | nindent 12 }}
            - name: metrics
              containerPort: {{ $values.serve.metricsPort }}
          env:
            {{- include "runway-models.env" $root | nindent 12 }}
          resources:
            {{- toYaml .resources | nindent 12 }}
          securityContext:
            {{- toYaml $values.securityContext | nindent 12 }}
          volumeMounts:
            {{- include "runway-models.volumeMounts" $root | nindent 12 }}
          livenessProbe:
            httpGet:
              path: /api/local_raylet_healthz
              port: {{ include "runway-models.dashboardAgentPort" $root }}
            initialDelaySeconds: 30
            periodSeconds: 5
            timeoutSeconds: 2
            failureThreshold: 120
          # Ready once this node's Serve proxy is: only then does the serve Service send it traffic.
          readinessProbe:
            httpGet:
              path: /-/healthz
              port: {{ $values.serve.port }}
            initialDelaySeconds: 10
            periodSeconds: 5
            timeoutSeconds: 2
            failureThreshold: 1
      volumes:
        {{- include "runway-models.volumes" $root | nindent 8 }}
{{- end }}

{{/* The Ingresses' tls section (empty when TLS is off). */}}
{{- define "runway-models.ingressTls" -}}
{{- if .Values.ingress.tls.enabled }}
tls:
  - secretName: {{ .Values.ingress.tls.secretName | quote }}
    {{- with .Values.ingress.host }}
    hosts:
      - {{ . | quote }}
    {{- end }}
{{- end }}
{{- end }}
