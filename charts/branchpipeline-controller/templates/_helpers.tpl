{{/* Chart name, truncated to the 63 characters of a DNS label. */}}
{{- define "branchpipeline.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name: <release> when the release name already contains the chart name, else
<release>-<chart>. Cluster-scoped objects (ClusterRole, ClusterRoleBinding) carry it, so
two releases never share one.
*/}}
{{- define "branchpipeline.fullname" -}}
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

{{- define "branchpipeline.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "branchpipeline.selectorLabels" -}}
app.kubernetes.io/name: {{ include "branchpipeline.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "branchpipeline.labels" -}}
helm.sh/chart: {{ include "branchpipeline.chart" . }}
{{ include "branchpipeline.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: branchpipeline
{{- end }}

{{- define "branchpipeline.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "branchpipeline.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "branchpipeline.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/*
The namespaces the controller watches, comma-separated, or "" for all of them. Each gets a
Role and a RoleBinding, and the binary one watch per namespace (--namespace).
*/}}
{{- define "branchpipeline.watchNamespaces" -}}
{{- .Values.watchNamespaces | default list | uniq | join "," }}
{{- end }}

{{/*
The rules for BranchPipelines and their Events: in a ClusterRole when every namespace is
watched, in a Role in the watched namespace otherwise. Nothing else: the controller reads
no Secrets and writes only events.k8s.io Events.
*/}}
{{- define "branchpipeline.rules" -}}
- apiGroups: ["branchpipeline.dev"]
  resources: ["branchpipelines"]
  verbs: ["get", "list", "watch", "patch", "update"]
- apiGroups: ["branchpipeline.dev"]
  resources: ["branchpipelines/status"]
  verbs: ["get", "patch", "update"]
- apiGroups: ["branchpipeline.dev"]
  resources: ["branchpipelines/finalizers"]
  verbs: ["update"]
# Runs: followed, owned by their BranchPipeline (patch), trimmed to the history limit and
# removed with it (delete). Creating them is for release managers, not the controller.
- apiGroups: ["branchpipeline.dev"]
  resources: ["branchpipelineruns"]
  verbs: ["get", "list", "watch", "patch", "delete"]
- apiGroups: ["branchpipeline.dev"]
  resources: ["branchpipelineruns/status"]
  verbs: ["get", "patch", "update"]
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
{{- end }}
