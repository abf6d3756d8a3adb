output "kubeconfig_path" {
  description = "Path of the kubeconfig that reaches the cluster (input of the platform root)."
  value       = kind_cluster.this.kubeconfig_path
}

output "cluster_name" {
  description = "The kind cluster's name, for `kind load docker-image --name`."
  value       = kind_cluster.this.name
}

output "endpoint" {
  description = "The Kubernetes API server's URL."
  value       = kind_cluster.this.endpoint
}

output "port_mappings" {
  description = "Host port -> NodePort table the cluster publishes."
  value       = { for m in var.port_mappings : m.name => { host_port = m.host_port, node_port = m.node_port } }
}
