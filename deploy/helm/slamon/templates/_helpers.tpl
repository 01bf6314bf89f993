{{/*
Names, labels, paths and the checks every render runs (slamon.validate).
*/}}

{{- define "slamon.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "slamon.fullname" -}}
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

{{- define "slamon.selectorLabels" -}}
app.kubernetes.io/name: {{ include "slamon.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "slamon.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "slamon.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: slamon
{{- end }}

{{- define "slamon.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "slamon.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "slamon.headlessName" -}}
{{- printf "%s-headless" (include "slamon.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The Secret with the SASL password: the user's, or the chart's. */}}
{{- define "slamon.saslSecretName" -}}
{{- default (printf "%s-kafka" (include "slamon.fullname" .)) .Values.kafka.sasl.existingSecret }}
{{- end }}

{{- define "slamon.webhookSecretName" -}}
{{- default (printf "%s-webhooks" (include "slamon.fullname" .)) .Values.webhooks.existingSecret }}
{{- end }}

{{- define "slamon.portalSecretName" -}}
{{- default (printf "%s-portal" (include "slamon.fullname" .)) .Values.portal.existingSecret }}
{{- end }}

{{- define "slamon.saslEnabled" -}}
{{- if hasPrefix "SASL_" .Values.kafka.securityProtocol }}true{{ end }}
{{- end }}

{{- define "slamon.tlsEnabled" -}}
{{- if and (has .Values.kafka.securityProtocol (list "SSL" "SASL_SSL")) .Values.kafka.tls.existingSecret }}true{{ end }}
{{- end }}

{{- define "slamon.webhooksEnabled" -}}
{{- if or .Values.webhooks.existingSecret .Values.webhooks.secrets }}true{{ end }}
{{- end }}

{{- define "slamon.portalEnabled" -}}
{{- if .Values.portal.customers }}true{{ end }}
{{- end }}

{{/* The policies the ConfigMap carries: the values', or the chart's copy of config/policies.yaml. */}}
{{- define "slamon.policies" -}}
{{- if .Values.policies }}{{ .Values.policies }}{{ else }}{{ .Files.Get "files/policies.yaml" }}{{ end }}
{{- end }}

{{/* The tokens file of the portal: each customer's token is a file of the portal Secret. */}}
{{- define "slamon.portalTokens" -}}
# Written by the slamon chart: each customer's token is a file of the Secret
# {{ include "slamon.portalSecretName" . }}, mounted at /run/secrets/slamon/portal.
customers:
{{- range .Values.portal.customers }}
  {{ . | quote }}: {file: {{ printf "/run/secrets/slamon/portal/%s" . | quote }}}
{{- end }}
{{- end }}

{{/*
Every check of the values, failing the render with what to change. Settings the chart owns
may not be set through .Values.settings: two sources of one setting would disagree.
*/}}
{{- define "slamon.validate" -}}
{{- $replicas := int .Values.replicas }}
{{- $partitions := int .Values.partitions }}
{{- if lt $partitions 1 }}
{{- fail (printf "partitions must be at least 1, got %d" $partitions) }}
{{- end }}
{{- if gt $replicas $partitions }}
{{- fail (printf "replicas (%d) exceeds partitions (%d): a worker owns whole partitions of the events topic, so %d workers would sit idle; raise partitions (a migration for existing topics, see README \"Kubernetes\") or lower replicas" $replicas $partitions (sub $replicas $partitions)) }}
{{- end }}
{{- $owned := list "broker" "policies" "sources" "portal_tokens" "partitions" "data_dir" "store" "worker_id" "web_host" "web_port" "security_protocol" "sasl_mechanism" "sasl_username" "sasl_password" "sasl_password_file" "ssl_cafile" "ssl_certfile" "ssl_keyfile" "ssl_key_password" }}
{{- range $key, $value := .Values.settings }}
{{- if has $key $owned }}
{{- fail (printf "settings.%s is set by the chart; use the chart's own value for it (kafka.*, partitions, webPort, policies, sources, portal.*; see values.yaml)" $key) }}
{{- end }}
{{- end }}
{{- if not (has .Values.kafka.securityProtocol (list "PLAINTEXT" "SSL" "SASL_PLAINTEXT" "SASL_SSL")) }}
{{- fail (printf "kafka.securityProtocol %q is not one of PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL" .Values.kafka.securityProtocol) }}
{{- end }}
{{- if include "slamon.saslEnabled" . }}
{{- if not (and .Values.kafka.sasl.mechanism .Values.kafka.sasl.username) }}
{{- fail (printf "kafka.securityProtocol %s needs kafka.sasl.mechanism and kafka.sasl.username" .Values.kafka.securityProtocol) }}
{{- end }}
{{- if not (or .Values.kafka.sasl.existingSecret .Values.kafka.sasl.password) }}
{{- fail (printf "kafka.securityProtocol %s needs the password: kafka.sasl.existingSecret (a Secret with key %q) or kafka.sasl.password" .Values.kafka.securityProtocol .Values.kafka.sasl.passwordKey) }}
{{- end }}
{{- end }}
{{- if ne (not .Values.kafka.tls.certKey) (not .Values.kafka.tls.keyKey) }}
{{- fail "kafka.tls.certKey and kafka.tls.keyKey go together: a client certificate needs its key" }}
{{- end }}
{{- if and .Values.portal.customers (not (or .Values.portal.existingSecret .Values.portal.tokens)) }}
{{- fail "portal.customers needs the tokens: portal.existingSecret (keys = customer names) or portal.tokens" }}
{{- end }}
{{- range $customer, $token := .Values.portal.tokens }}
{{- if not (has $customer $.Values.portal.customers) }}
{{- fail (printf "portal.tokens.%s: %s is not in portal.customers" $customer $customer) }}
{{- end }}
{{- end }}
{{- end }}
