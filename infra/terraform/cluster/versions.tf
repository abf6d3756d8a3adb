terraform {
  required_version = ">= 1.5.0"

  # Local state; mlops-lab passes its path at init (-backend-config=path=...) so state lives
  # in the platform home, next to the kubeconfig, never in the checkout.
  backend "local" {}

  required_providers {
    kind = {
      source  = "tehcyx/kind"
      version = "0.8.0"
    }
  }
}
