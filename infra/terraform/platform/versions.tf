terraform {
  required_version = ">= 1.5.0"

  # Local state; mlops-lab passes its path at init (-backend-config=path=...) so state lives
  # in the platform home, next to the kubeconfig, never in the checkout.
  backend "local" {}

  required_providers {
    helm = {
      source  = "hashicorp/helm"
      version = "2.16.1"
    }
    kubernetes = {
      source  = "hashicorp/kubernetes"
      version = "2.33.0"
    }
    random = {
      source  = "hashicorp/random"
      version = "3.6.3"
    }
  }
}
