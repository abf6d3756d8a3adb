variable "kubeconfig_path" {
  type        = string
  description = "Kubeconfig of the cluster to install into (the cluster root's kubeconfig_path output). Passed in, never read from the other root's state, so each root can be applied and destroyed alone."
  default     = "~/.kube/config"
}

variable "kubeconfig_context" {
  type        = string
  description = "Context inside the kubeconfig; null uses its current context."
  default     = null
}

variable "platform_namespace" {
  type        = string
  description = "Namespace of the platform's own workloads (k8s/base)."
  default     = "mlops-lab"
}

variable "monitoring_namespace" {
  type        = string
  description = "Namespace of kube-prometheus-stack."
  default     = "monitoring"
}

variable "release_name" {
  type        = string
  description = "Helm release name of kube-prometheus-stack. ServiceMonitors and PrometheusRules are selected by the label release=<this>, so k8s/ must use the same value."
  default     = "kps"
}

variable "chart_version" {
  type        = string
  description = "kube-prometheus-stack chart version (exact: an upgrade changes CRDs and default rules)."
  default     = "65.1.1"
}

variable "chart_repository" {
  type        = string
  description = "Helm repository holding kube-prometheus-stack."
  default     = "https://prometheus-community.github.io/helm-charts"
}

variable "prometheus_node_port" {
  type        = number
  description = "NodePort of Prometheus; the cluster root maps it to host port 9090."
  default     = 30070
}

variable "alertmanager_node_port" {
  type        = number
  description = "NodePort of Alertmanager; the cluster root maps it to host port 9093."
  default     = 30073
}

variable "grafana_node_port" {
  type        = number
  description = "NodePort of Grafana; the cluster root maps it to host port 3001."
  default     = 30001
}

variable "grafana_admin_password" {
  type        = string
  description = "Grafana admin password. mlops-lab passes the one the local runtime keeps under its data dir; null generates one (see the grafana_admin_password output)."
  default     = null
  sensitive   = true
}
