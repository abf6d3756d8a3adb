variable "cluster_name" {
  type        = string
  description = "Name of the kind cluster (and of its Docker container, <name>-control-plane)."
  default     = "mlops-lab"
}

variable "node_image" {
  type        = string
  description = "kind node image: pins the Kubernetes version the platform is tested against."
  default     = "kindest/node:v1.31.2"
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
    { name = "mlflow", host_port = 5000, node_port = 30500 },
    { name = "prefect", host_port = 4200, node_port = 30420 },
    { name = "serving", host_port = 3000, node_port = 30300 },
    { name = "drift-monitor", host_port = 8001, node_port = 30801 },
    { name = "alert-receiver", host_port = 8002, node_port = 30802 },
    { name = "flows", host_port = 8003, node_port = 30803 },
    { name = "prometheus", host_port = 9090, node_port = 30909 },
    { name = "alertmanager", host_port = 9093, node_port = 30993 },
    { name = "grafana", host_port = 3001, node_port = 30301 },
  ]

  validation {
    condition     = alltrue([for m in var.port_mappings : m.node_port >= 30000 && m.node_port <= 32767])
    error_message = "Every node_port must be in the NodePort range 30000-32767."
  }
}
