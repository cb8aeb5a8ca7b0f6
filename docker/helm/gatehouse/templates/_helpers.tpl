{{- /*
Only Go text/template built-ins in this chart (no Sprig functions such as toYaml, include,
default or nindent): the chart's test renders it with Go's own text/template, exactly as Helm's
engine does, and every value has its default in values.yaml. Helpers therefore carry their
indentation: each says where it goes.
*/ -}}

{{- /* Labels of every object, under metadata.labels (4 spaces). */ -}}
{{- define "gatehouse.labels" }}
    app.kubernetes.io/name: {{ .Chart.Name }}
    app.kubernetes.io/instance: {{ .Release.Name }}
    app.kubernetes.io/version: {{ printf "%q" .Chart.AppVersion }}
    app.kubernetes.io/managed-by: {{ .Release.Service }}
    helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version }}
{{- end }}

{{- /* Pod template labels besides the component, under spec.template.metadata (6 spaces). */ -}}
{{- define "gatehouse.podLabels" }}
      labels:
        app.kubernetes.io/name: {{ .Chart.Name }}
        app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- /* podAnnotations, under spec.template.metadata (6 spaces), after the component label. */ -}}
{{- define "gatehouse.podAnnotations" }}
{{- if .Values.podAnnotations }}
      annotations:
{{- range $k, $v := .Values.podAnnotations }}
        {{ $k }}: {{ printf "%q" (print $v) }}
{{- end }}
{{- end }}
{{- end }}

{{- /* Selector labels besides the component, under matchLabels (6 spaces). */ -}}
{{- define "gatehouse.selector" }}
      app.kubernetes.io/name: {{ .Chart.Name }}
      app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- /* Pod spec fields shared by every role, under spec.template.spec (6 spaces). */ -}}
{{- define "gatehouse.podSpec" }}
      securityContext:
        runAsNonRoot: {{ .Values.podSecurityContext.runAsNonRoot }}
        runAsUser: {{ .Values.podSecurityContext.runAsUser }}
        runAsGroup: {{ .Values.podSecurityContext.runAsGroup }}
        fsGroup: {{ .Values.podSecurityContext.fsGroup }}
        seccompProfile:
          type: {{ .Values.podSecurityContext.seccompProfile.type }}
      automountServiceAccountToken: false
{{- if .Values.image.pullSecrets }}
      imagePullSecrets:
{{- range .Values.image.pullSecrets }}
        - name: {{ . }}
{{- end }}
{{- end }}
      volumes:
        - name: tmp
          emptyDir: {}
{{- end }}

{{- /* Container fields shared by every role, under a container (10 spaces). */ -}}
{{- define "gatehouse.container" }}
          image: {{ printf "%q" (printf "%s:%s" .Values.image.repository .Values.image.tag) }}
          imagePullPolicy: {{ .Values.image.pullPolicy }}
          securityContext:
            allowPrivilegeEscalation: false
            readOnlyRootFilesystem: true
            capabilities:
              drop: ["ALL"]
          volumeMounts:
            - name: tmp
              mountPath: /tmp
{{- end }}

{{- /* The environment of the API, the workers and the gateway, under env (10 spaces). */ -}}
{{- define "gatehouse.env" }}
            - name: DATABASE_URL
              valueFrom: { secretKeyRef: { name: {{ .Values.existingSecret }}, key: DATABASE_URL } }
            - name: REDIS_URL
              valueFrom: { secretKeyRef: { name: {{ .Values.existingSecret }}, key: REDIS_URL } }
            - name: SECRETS_KEY
              valueFrom: { secretKeyRef: { name: {{ .Values.existingSecret }}, key: SECRETS_KEY } }
            - name: PUBLIC_GATEWAY_URL
              value: {{ printf "%q" .Values.publicGatewayUrl }}
            - name: PUBLIC_API_URL
              value: {{ printf "%q" .Values.publicApiUrl }}
            - name: CONSOLE_PUBLIC_URL
              value: {{ printf "%q" .Values.consolePublicUrl }}
{{- range $k, $v := .Values.env }}
            - name: {{ $k }}
              value: {{ printf "%q" (print $v) }}
{{- end }}
{{- end }}

{{- /* requests/limits of one role (pass .Values.<role>.resources), under resources (12 spaces). */ -}}
{{- define "gatehouse.resources" }}
            requests:
              cpu: {{ .requests.cpu }}
              memory: {{ .requests.memory }}
            limits:
              memory: {{ .limits.memory }}
{{- end }}
