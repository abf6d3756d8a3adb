"""The Kubernetes runtimes: the platform as Deployments on a kind cluster (``kind``) or on any
cluster KUBECONFIG points at (``kube``)."""
