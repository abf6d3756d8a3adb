output "platform_namespace" {
  description = "Namespace for the platform's workloads (kubectl apply -k k8s/overlays/kind)."
  value       = kubernetes_namespace.platform.metadata[0].name
}

output "monitoring_namespace" {
  description = "Namespace of kube-prometheus-stack."
  value       = kubernetes_namespace.monitoring.metadata[0].name
}

output "release_name" {
  description = "Helm release name: the release label ServiceMonitors and PrometheusRules need."
  value       = helm_release.kube_prometheus_stack.name
}

output "chart_version" {
  description = "The kube-prometheus-stack chart version installed."
  value       = helm_release.kube_prometheus_stack.version
}

output "node_ports" {
  description = "NodePorts of Prometheus, Alertmanager and Grafana."
  value = {
    prometheus   = var.prometheus_node_port
    alertmanager = var.alertmanager_node_port
    grafana      = var.grafana_node_port
  }
}

output "grafana_admin_password" {
  description = "Grafana's admin password (sensitive: `terraform output -raw grafana_admin_password`)."
  value       = local.grafana_admin_password
  sensitive   = true
}
