{{- define "alecton.labels" -}}
app.kubernetes.io/name: alecton-operator
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/part-of: alecton
helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version }}
{{- end -}}

{{- define "alecton.webLabels" -}}
app.kubernetes.io/name: alecton-web
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/part-of: alecton
helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version }}
{{- end -}}
