{{/* Names and labels. */}}
{{- define "tickflow.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "tickflow.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* Selector labels of one component (a stage, gateway, bootstrap): call with (list $ "candles"). */}}
{{- define "tickflow.selectorLabels" -}}
{{- $root := index . 0 -}}
app.kubernetes.io/name: {{ $root.Chart.Name }}
app.kubernetes.io/instance: {{ $root.Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{- define "tickflow.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{- define "tickflow.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- .Values.serviceAccount.name | default (include "tickflow.fullname" .) -}}
{{- else -}}
{{- .Values.serviceAccount.name | default "default" -}}
{{- end -}}
{{- end -}}

{{- define "tickflow.secretName" -}}
{{- .Values.secrets.existingSecret | default (printf "%s-secrets" (include "tickflow.fullname" .)) -}}
{{- end -}}

{{/* The NATS URL: nats.url when given, else the service of the NATS subchart (its fullname rule). */}}
{{- define "tickflow.natsUrl" -}}
{{- if .Values.nats.url -}}
{{- .Values.nats.url -}}
{{- else if .Values.nats.enabled -}}
{{- $name := "nats" -}}
{{- if .Values.nats.fullnameOverride -}}
{{- $name = .Values.nats.fullnameOverride -}}
{{- else if contains "nats" .Release.Name -}}
{{- $name = .Release.Name -}}
{{- else -}}
{{- $name = printf "%s-nats" .Release.Name -}}
{{- end -}}
{{- printf "nats://%s:4222" ($name | trunc 63 | trimSuffix "-") -}}
{{- else -}}
{{- fail "nats.url is required when nats.enabled is false (the URL of an existing NATS server)" -}}
{{- end -}}
{{- end -}}

{{- define "tickflow.useCreds" -}}
{{- if or .Values.nats.auth.creds .Values.nats.auth.useCreds -}}true{{- end -}}
{{- end -}}

{{/* Secret-backed environment: every key optional, so an existingSecret may hold only some. */}}
{{- define "tickflow.secretEnv" -}}
{{- $secret := include "tickflow.secretName" . -}}
{{- range $key := list "NATS_USER" "NATS_PASSWORD" "NATS_TOKEN" "TICKFLOW_ADMIN_TOKEN" "DATABASE_URL" "CRYPTOPANIC_TOKEN" "CRYPTOCOMPARE_API_KEY" }}
- name: {{ $key }}
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: {{ $key }}
      optional: true
{{- end }}
{{- end -}}

{{/* Everything a Tickflow container gets: settings, secrets, writable /tmp, NATS creds and TLS files. */}}
{{- define "tickflow.containerCommon" -}}
image: {{ include "tickflow.image" . }}
imagePullPolicy: {{ .Values.image.pullPolicy }}
securityContext:
  {{- toYaml .Values.securityContext | nindent 2 }}
envFrom:
  - configMapRef:
      name: {{ include "tickflow.fullname" . }}-settings
volumeMounts:
  - name: tmp
    mountPath: /tmp
  {{- if include "tickflow.useCreds" . }}
  - name: nats-creds
    mountPath: /etc/tickflow/nats-creds
    readOnly: true
  {{- end }}
  {{- if .Values.nats.tls.enabled }}
  - name: nats-tls
    mountPath: /etc/tickflow/nats-tls
    readOnly: true
  {{- end }}
{{- end -}}

{{- define "tickflow.podCommon" -}}
serviceAccountName: {{ include "tickflow.serviceAccountName" . }}
automountServiceAccountToken: false
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
volumes:
  - name: tmp
    emptyDir: {}
  {{- if include "tickflow.useCreds" . }}
  - name: nats-creds
    secret:
      secretName: {{ include "tickflow.secretName" . }}
      items:
        - key: nats.creds
          path: nats.creds
  {{- end }}
  {{- if .Values.nats.tls.enabled }}
  - name: nats-tls
    secret:
      secretName: {{ required "nats.tls.secretName is required when nats.tls.enabled is true" .Values.nats.tls.secretName }}
  {{- end }}
{{- end -}}

{{/* Stage- or gateway-specific non-secret env (values are quoted strings). */}}
{{- define "tickflow.extraEnv" -}}
{{- range $k, $v := . }}
- name: {{ $k }}
  value: {{ $v | toString | quote }}
{{- end }}
{{- end -}}
