{{/* The chart name, or nameOverride. */}}
{{- define "cf.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Object names: release name + chart name, unless one contains the other. At most 55
characters, so that every name made from it ("-metrics", "-worker", "-leader", "-admin")
stays within Kubernetes' 63: a longer one keeps its first 46 characters and a hash of the
whole, so that two long releases never share a name. */}}
{{- define "cf.fullname" -}}
{{- $full := "" -}}
{{- if .Values.fullnameOverride -}}
{{- $full = .Values.fullnameOverride -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- $full = ternary .Release.Name (printf "%s-%s" .Release.Name $name) (contains $name .Release.Name) -}}
{{- end -}}
{{- if gt (len $full) 55 -}}
{{- printf "%s-%s" ($full | trunc 46 | trimSuffix "-") ($full | sha256sum | trunc 8) -}}
{{- else -}}
{{- $full -}}
{{- end -}}
{{- end -}}

{{- define "cf.selectorLabels" -}}
app.kubernetes.io/name: {{ include "cf.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "cf.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "cf.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "cf.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "cf.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* repository:tag, or repository@digest when a digest is given. */}}
{{- define "cf.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{- define "cf.workerImage" -}}
{{- default (include "cf.image" .) .Values.worker.image -}}
{{- end -}}

{{/* The ClusterRole the operator binds to the workers' ServiceAccount (cluster-wide mode). */}}
{{- define "cf.workerClusterRole" -}}
{{- printf "%s-worker" (include "cf.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* What a phase's worker may do: renew its heartbeat Lease and read its own Job.
     The same rules as collectionflow.specs.rbac.WORKER_RULES (a test holds them equal). */}}
{{- define "cf.workerRules" -}}
# A phase's worker creates its heartbeat Lease at its first beat and patches its renewTime.
- apiGroups: [coordination.k8s.io]
  resources: [leases]
  verbs: [create, patch]
{{- end -}}

{{/* What the operator does in a namespace it watches, each rule with its reason. */}}
{{- define "cf.operatorRules" -}}
# The flows: listed and watched; patched to remove consumed annotations and to take off the
# finalizer earlier versions put on them.
- apiGroups: [flows.collectionflow.io]
  resources: [collectionflows]
  verbs: [get, list, watch, patch]
# The flow's status (phase, progress, conditions, history), written as a merge patch.
- apiGroups: [flows.collectionflow.io]
  resources: [collectionflows/status]
  verbs: [patch]
# A Job per phase attempt: watched for completion, created, deleted when a stalled attempt is
# replaced.
- apiGroups: [batch]
  resources: [jobs]
  verbs: [get, list, watch, create, delete]
# The pods of phase Jobs: watched (our label, finished ones only) for their results, and listed
# for one Job before a stall or a finished Job is acted on.
- apiGroups: [""]
  resources: [pods]
  verbs: [list, watch]
# The heartbeat Lease of each attempt (its worker creates it): watched (our label only) as
# evidence for the stall sweep, read again before a stall is acted on. Never written here: the
# leader Lease is a Role of the release's namespace, an in-process phase beats through a file.
- apiGroups: [coordination.k8s.io]
  resources: [leases]
  verbs: [get, list, watch]
# Events on the flows (PhaseStarted, FlowStalled, ...), posted by the operator.
- apiGroups: [""]
  resources: [events]
  verbs: [create]
{{- end -}}

{{- define "cf.watchNamespaceArgs" -}}
{{- range .Values.watchNamespaces }}
- --namespace={{ . }}
{{- end }}
{{- end -}}

{{/* Operator replicas: replicaCount, or 2 with PostgreSQL and 1 with SQLite. */}}
{{- define "cf.replicas" -}}
{{- if kindIs "invalid" .Values.replicaCount -}}
{{- ternary 2 1 (not (empty .Values.database.existingSecret)) -}}
{{- else -}}
{{- .Values.replicaCount -}}
{{- end -}}
{{- end -}}
