provider "kubernetes" {
  config_path    = pathexpand(var.kubeconfig_path)
  config_context = var.kubeconfig_context
}

provider "helm" {
  kubernetes {
    config_path    = pathexpand(var.kubeconfig_path)
    config_context = var.kubeconfig_context
  }
}

# The labels of k8s/base/namespace.yaml, so the namespace enforces Pod Security `restricted` from
# the moment it exists, before the platform's manifests are applied.
resource "kubernetes_namespace" "platform" {
  metadata {
    name = var.platform_namespace
    labels = {
      "app.kubernetes.io/part-of"          = "mlops-lab"
      "pod-security.kubernetes.io/enforce" = "restricted"
      "pod-security.kubernetes.io/audit"   = "restricted"
      "pod-security.kubernetes.io/warn"    = "restricted"
    }
  }
}

resource "kubernetes_namespace" "monitoring" {
  metadata {
    name   = var.monitoring_namespace
    labels = { "app.kubernetes.io/part-of" = "mlops-lab" }
  }
}

resource "random_password" "grafana" {
  length  = 24
  special = false
}

locals {
  grafana_admin_password = coalesce(var.grafana_admin_password, random_password.grafana.result)
  # Ours are picked up by label in every namespace; the chart's own carry the same label.
  by_release = { matchLabels = { release = var.release_name } }

  values = {
    # kind runs etcd, the scheduler, the controller manager and kube-proxy where Prometheus
    # cannot scrape them: their targets would only ever be down and page.
    kubeEtcd              = { enabled = false }
    kubeControllerManager = { enabled = false }
    kubeScheduler         = { enabled = false }
    kubeProxy             = { enabled = false }

    prometheus = {
      service = { type = "NodePort", nodePort = var.prometheus_node_port }
      prometheusSpec = {
        serviceMonitorSelector          = local.by_release
        serviceMonitorNamespaceSelector = {}
        podMonitorSelector              = local.by_release
        podMonitorNamespaceSelector     = {}
        ruleSelector                    = local.by_release
        ruleNamespaceSelector           = {}
        # Same interval as the local runtime's scrape config, so rules' windows mean the same.
        scrapeInterval = "15s"
        retention      = "7d"
        resources = {
          requests = { cpu = "100m", memory = "400Mi" }
          limits   = { memory = "1Gi" }
        }
      }
    }

    alertmanager = {
      service = { type = "NodePort", nodePort = var.alertmanager_node_port }
      alertmanagerSpec = {
        alertmanagerConfigSelector          = local.by_release
        alertmanagerConfigNamespaceSelector = {}
        # Our alerts come from the platform namespace's targets; without this the operator
        # would add a namespace matcher to every route of an AlertmanagerConfig.
        alertmanagerConfigMatcherStrategy = { type = "None" }
      }
    }

    grafana = {
      adminPassword = local.grafana_admin_password
      service       = { type = "NodePort", nodePort = var.grafana_node_port }
      "grafana.ini" = {
        # Same as the local runtime: dashboards readable without a login, editing needs admin.
        "auth.anonymous" = { enabled = true, org_role = "Viewer" }
      }
      sidecar = {
        dashboards = {
          enabled         = true
          label           = "grafana_dashboard"
          labelValue      = "1"
          searchNamespace = "ALL"
        }
      }
    }
  }
}

resource "helm_release" "kube_prometheus_stack" {
  name       = var.release_name
  namespace  = kubernetes_namespace.monitoring.metadata[0].name
  repository = var.chart_repository
  chart      = "kube-prometheus-stack"
  version    = var.chart_version
  values     = [yamlencode(local.values)]
  wait       = true
  timeout    = 900
}
