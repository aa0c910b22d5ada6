{{- define "eniway.labels" -}}
app.kubernetes.io/name: eniway
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end }}

{{- define "eniway.selector" -}}
app.kubernetes.io/name: eniway
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "eniway.secretName" -}}
{{- if .Values.credentials.existingSecret -}}{{ .Values.credentials.existingSecret }}{{- else -}}eniway-credentials{{- end -}}
{{- end }}

{{- define "eniway.useSecret" -}}
{{- if or .Values.credentials.existingSecret .Values.credentials.accessKeyId -}}true{{- end -}}
{{- end }}

{{/* The daemon's configuration file: the user's `config` plus the keys the chart owns. */}}
{{- define "eniway.config" -}}
{{- $c := deepCopy .Values.config -}}
{{- $cloud := get $c "cloud" | default dict -}}
{{- range $k, $v := $cloud }}{{ if eq (toString $v) "" }}{{ $_ := unset $cloud $k }}{{ end }}{{ end -}}
{{- if include "eniway.useSecret" . }}{{ $_ := set $cloud "credentialsFile" "/etc/eniway/credentials/credentials.json" }}{{ end -}}
{{- if .Values.credentials.ramRole }}{{ $_ := set $cloud "ramRole" .Values.credentials.ramRole }}{{ end -}}
{{- $_ := set $c "cloud" $cloud -}}
{{- $k8s := get $c "kubernetes" | default dict -}}
{{- $_ := set $k8s "enabled" true -}}
{{- $_ := set $c "kubernetes" $k8s -}}
{{- $_ := set $c "socket" (printf "%s/eniway.sock" .Values.paths.socketDir) -}}
{{- $_ := set $c "stateDir" .Values.paths.stateDir -}}
{{- $_ := set $c "http" (dict "listen" .Values.metrics.listen) -}}
{{- $cni := get $c "cni" | default dict -}}
{{- $_ := set $cni "confDir" "/host/cni/net.d" -}}
{{- $_ := set $c "cni" $cni -}}
{{- toYaml $c -}}
{{- end }}
