{{/* The rules between values that the schema cannot say, each refused at install with a
message naming the keys. Included once, from the operator's Deployment. */}}
{{- define "cf.validate" -}}
{{- $v := .Values -}}
{{- $replicas := include "cf.replicas" . | int -}}
{{- if and $v.metrics.serviceMonitor.enabled $v.metrics.podMonitor.enabled -}}
{{- fail "metrics.serviceMonitor.enabled and metrics.podMonitor.enabled are both true: enable one of them, or Prometheus scrapes the operator twice" -}}
{{- end -}}
{{- if and (or $v.metrics.serviceMonitor.enabled $v.metrics.podMonitor.enabled) (not $v.metrics.enabled) -}}
{{- fail "metrics.serviceMonitor/podMonitor.enabled needs metrics.enabled: with metrics off there is nothing to scrape" -}}
{{- end -}}
{{- if and (gt $replicas 1) (not $v.database.existingSecret) -}}
{{- fail "replicaCount > 1 needs PostgreSQL (database.existingSecret): SQLite is one file on one volume" -}}
{{- end -}}
{{- if ge (int $v.leaderElection.renewDeadlineSeconds) (int $v.leaderElection.leaseDurationSeconds) -}}
{{- fail (printf "leaderElection.renewDeadlineSeconds (%v) must be less than leaderElection.leaseDurationSeconds (%v): the old leader must stop before a new one may start" $v.leaderElection.renewDeadlineSeconds $v.leaderElection.leaseDurationSeconds) -}}
{{- end -}}
{{- if ge (int $v.leaderElection.retryPeriodSeconds) (int $v.leaderElection.renewDeadlineSeconds) -}}
{{- fail (printf "leaderElection.retryPeriodSeconds (%v) must be less than leaderElection.renewDeadlineSeconds (%v): the leader must get to renew before its deadline" $v.leaderElection.retryPeriodSeconds $v.leaderElection.renewDeadlineSeconds) -}}
{{- end -}}
{{- if and (gt $replicas 1) (ge (int $v.podDisruptionBudget.minAvailable) $replicas) -}}
{{- fail (printf "podDisruptionBudget.minAvailable (%v) must be less than the replicas (%v), or no node drain could ever evict one" $v.podDisruptionBudget.minAvailable $replicas) -}}
{{- end -}}
{{- if and $v.persistence.existingClaim (not $v.persistence.enabled) -}}
{{- fail "persistence.existingClaim is set but persistence.enabled is false: set persistence.enabled=true to use the claim (without it SQLite would sit on an emptyDir)" -}}
{{- end -}}
{{- if and (not $v.serviceAccount.create) (not $v.serviceAccount.name) -}}
{{- fail "serviceAccount.create is false and serviceAccount.name is empty: name the ServiceAccount to use, or the operator's cluster rights would be bound to the namespace's default one" -}}
{{- end -}}
{{- if and $v.serviceAccount.create (eq (include "cf.serviceAccountName" .) $v.worker.serviceAccountName) (has .Release.Namespace $v.watchNamespaces) -}}
{{- fail (printf "serviceAccount.name and worker.serviceAccountName are both %q in the watched namespace %s: give the operator and its phases different ServiceAccounts" $v.worker.serviceAccountName .Release.Namespace) -}}
{{- end -}}
{{- $names := dict -}}
{{- range $v.extraEnv -}}
{{- if hasKey $names .name -}}
{{- fail (printf "extraEnv names %s twice: each variable once" .name) -}}
{{- end -}}
{{- $_ := set $names .name true -}}
{{- end -}}
{{- end -}}
