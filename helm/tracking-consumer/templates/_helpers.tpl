{{/* Chart name, truncated to the 63 characters a DNS label allows. */}}
{{- define "tracking-consumer.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Fully qualified app name: the release name, unless it already contains the chart name. */}}
{{- define "tracking-consumer.fullname" -}}
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

{{- define "tracking-consumer.selectorLabels" -}}
app.kubernetes.io/name: {{ include "tracking-consumer.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "tracking-consumer.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "tracking-consumer.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: consumer
{{- end }}

{{- define "tracking-consumer.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "tracking-consumer.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The Secret holding the Redo API secret: the user's, or the one this chart creates. */}}
{{- define "tracking-consumer.redoSecretName" -}}
{{- default (printf "%s-redo" (include "tracking-consumer.fullname" .)) .Values.redo.existingSecret }}
{{- end }}

{{/*
The autoscaler's ceiling: the configured maximum, or the partition count when unset. A ceiling
above the partition count would only add idle members, so it is refused.
Call with (dict "max" <value or nil> "what" <values path> "root" $).
*/}}
{{- define "tracking-consumer.replicaCeiling" -}}
{{- $partitions := int .root.Values.kafka.partitions }}
{{- if and (not (kindIs "invalid" .max)) (gt (int .max) $partitions) }}
{{- fail (printf "%s (%d) exceeds kafka.partitions (%d): members beyond the partition count get no partition" .what (int .max) $partitions) }}
{{- end }}
{{- if kindIs "invalid" .max }}{{ $partitions }}{{ else }}{{ int .max }}{{ end }}
{{- end }}
