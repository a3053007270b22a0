{{/* Names and labels shared by the templates. */}}

{{- define "entry.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "entry.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "entry.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "entry.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* Selects the broker pods. */}}
{{- define "entry.selectorLabels" -}}
app.kubernetes.io/name: {{ include "entry.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: broker
{{- end -}}

{{/* Selects the bundled Redis pod. */}}
{{- define "entry.redisSelectorLabels" -}}
app.kubernetes.io/name: {{ include "entry.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: redis
{{- end -}}

{{- define "entry.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "entry.fullname" .) .Values.serviceAccount.name -}}
{{- else if .Values.kubernetes.enabled -}}
{{- /* The chart binds pods/exec to it: never to the namespace's `default`, which every pod may use. */ -}}
{{- required "serviceAccount.name: with serviceAccount.create=false and kubernetes.enabled, name the ServiceAccount to bind (not the namespace's default)" .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The Secret holding the token verification key: the user's, or the chart's. */}}
{{- define "entry.authSecretName" -}}
{{- default (printf "%s-auth" (include "entry.fullname" .)) .Values.auth.existingSecret -}}
{{- end -}}

{{- define "entry.redisName" -}}
{{- printf "%s-redis" (include "entry.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The Secret with the bundled Redis's password. */}}
{{- define "entry.redisAuthName" -}}
{{- printf "%s-auth" (include "entry.redisName" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
The bundled Redis's password: redis.bundled.password, else the one in the cluster's Secret (kept
across upgrades), else a new one. Decided once per render (kept on .Values), so that the Secret
and both pods' checksums agree.
*/}}
{{- define "entry.redisPassword" -}}
{{- if not (hasKey .Values "__redisPassword") -}}
{{- $pw := .Values.redis.bundled.password -}}
{{- if not $pw -}}
{{- $existing := lookup "v1" "Secret" .Release.Namespace (include "entry.redisAuthName" .) -}}
{{- if and $existing $existing.data (hasKey $existing.data "password") -}}
{{- $pw = index $existing.data "password" | b64dec -}}
{{- else -}}
{{- $pw = randAlphaNum 32 -}}
{{- end -}}
{{- end -}}
{{- $_ := set .Values "__redisPassword" $pw -}}
{{- end -}}
{{- index .Values "__redisPassword" -}}
{{- end -}}

{{/* Whether the brokers use Redis, and whether it is the bundled one. */}}
{{- define "entry.redisBundled" -}}
{{- if and .Values.redis.bundled.enabled (not .Values.redis.url) (not .Values.redis.existingSecret) -}}true{{- end -}}
{{- end -}}

{{- define "entry.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
