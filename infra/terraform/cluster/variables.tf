variable "cluster_name" {
  type        = string
  description = "Name of the kind cluster (and of its Docker container, <name>-control-plane)."
  default     = "mlops-lab"
}

variable "node_image" {
  type        = string
  description = "kind node image: pins the Kubernetes version the platform is tested against. By digest, as kind's release notes give it (kind v0.25.0's image for Kubernetes 1.31.2): a tag can be pushed again."
  default     = "kindest/node:v1.31.2@sha256:18fbefc20a7113353c7b75b5c869d7145a6abd6269154825872dc59c1329912e"
}

variable "kubeconfig_path" {
  type        = string
  description = "Where the cluster's kubeconfig is written. mlops-lab passes a file under its data dir so the learner's ~/.kube/config is never touched."
  default     = null
}

variable "listen_address" {
  type        = string
  description = "Host address the mapped ports listen on. 127.0.0.1 keeps the unauthenticated UIs off the network, as the local runtime does."
  default     = "127.0.0.1"
}

variable "port_mappings" {
  type = list(object({
    name      = string
    host_port = number
    node_port = number
  }))
  description = "Host port -> NodePort for every UI and API: host ports are the local runtime's ports, so the CLI and the labs work unchanged against 127.0.0.1. mlops-lab generates them from k8s/overlays/kind/ports.json and the monitoring NodePorts; the default is the same table."
  default = [
    { name = "mlflow", host_port = 5000, node_port = 30050 },
    { name = "prefect", host_port = 4200, node_port = 30042 },
    { name = "serving", host_port = 3000, node_port = 30000 },
    { name = "drift-monitor", host_port = 8001, node_port = 30081 },
    { name = "alert-receiver", host_port = 8002, node_port = 30082 },
    { name = "flows", host_port = 8003, node_port = 30083 },
    { name = "prometheus", host_port = 9090, node_port = 30070 },
    { name = "alertmanager", host_port = 9093, node_port = 30073 },
    { name = "grafana", host_port = 3001, node_port = 30001 },
  ]

  validation {
    condition     = alltrue([for m in var.port_mappings : m.node_port >= 30000 && m.node_port <= 30085])
    error_message = "Every node_port must be in 30000-30085, the band of the NodePort range that random allocation avoids (Kubernetes 1.29+, KEP-3668): a fixed port above it can be taken by a Service created earlier."
  }
}
