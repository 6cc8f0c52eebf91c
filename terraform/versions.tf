terraform {
  # 1.11: write-only arguments, which keep the Secret's values out of the state and the plan
  # (kubernetes_secret_v1.data_wo below).
  required_version = ">= 1.11.0"

  required_providers {
    kubernetes = {
      source = "hashicorp/kubernetes"
      # data_wo on kubernetes_secret_v1 came in 2.36; 3.x is what this module was written against.
      version = "~> 3.2"
    }
  }
}
