{{/* fullname prefixes every object's name: the release name, with the chart's name unless it already holds it. */}}
{{- define "stripe-operator.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "stripe-operator.serviceAccountName" -}}
{{- include "stripe-operator.fullname" . }}-controller-manager
{{- end -}}

{{/* selectorLabels select the manager's pods. */}}
{{- define "stripe-operator.selectorLabels" -}}
app.kubernetes.io/name: stripe-operator
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: manager
{{- end -}}

{{- define "stripe-operator.labels" -}}
app.kubernetes.io/name: stripe-operator
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* args are the operator's arguments: config/default's, plus a flag for each value that differs from the
operator's default. */}}
{{- define "stripe-operator.args" -}}
- --leader-elect
- --health-probe-bind-address=:8081
- --metrics-bind-address=:8080
- --webhook-bind-address=:9443
{{- $secret := .Values.credentials.secretName }}
{{- if or (ne .Release.Namespace "stripe-operator-system") (ne $secret "stripe-credentials") }}
- --credentials-secret={{ .Release.Namespace }}/{{ $secret }}
{{- end }}
{{- if ne $secret "stripe-credentials" }}
- --namespace-credentials-name={{ $secret }}
{{- end }}
{{- if .Values.allowLiveMode }}
- --allow-live-mode
{{- end }}
{{- with .Values.webhookPublicURL }}
- --webhook-public-url={{ . }}
{{- end }}
{{- with .Values.resyncInterval }}
- --resync-interval={{ . }}
{{- end }}
{{- with .Values.rateBudget.testRate }}
- --stripe-test-rate={{ . }}
{{- end }}
{{- with .Values.rateBudget.liveRate }}
- --stripe-live-rate={{ . }}
{{- end }}
{{- with .Values.rateBudget.searchRate }}
- --stripe-search-rate={{ . }}
{{- end }}
{{- with .Values.workers }}
- --max-concurrent-reconciles={{ . }}
{{- end }}
{{- with .Values.logLevel }}
- --zap-log-level={{ . }}
{{- end }}
{{- range .Values.extraArgs }}
- {{ . }}
{{- end }}
{{- end -}}
