# switchyard in its own namespace of the cluster your kubeconfig points at, on an existing
# PostgreSQL (the platform store) and, optionally, Redis, Kafka and Vault.
#
#   cd terraform/examples/basic
#   terraform init
#   export TF_VAR_store_url='postgres://switchyard:PASSWORD@postgres.db.svc.cluster.local:5432/platform'
#   export TF_VAR_postgres_url='postgres://postgres:PASSWORD@postgres.db.svc.cluster.local:5432/books'
#   export TF_VAR_postgres_app_password='...'
#   terraform apply -var image=REGISTRY/switchyard@sha256:DIGEST
#
# The credentials are ephemeral all the way down: they are in neither the state nor the plan.

terraform {
  required_version = ">= 1.11.0"

  required_providers {
    kubernetes = {
      source  = "hashicorp/kubernetes"
      version = "~> 3.2"
    }
  }
}

provider "kubernetes" {
  config_path    = var.kubeconfig
  config_context = var.kube_context
}

variable "kubeconfig" {
  description = "Path of the kubeconfig to use."
  type        = string
  default     = "~/.kube/config"
}

variable "kube_context" {
  description = "Context of the kubeconfig; null for its current context."
  type        = string
  default     = null
}

variable "image" {
  description = "The pushed image, by digest: REGISTRY/switchyard@sha256:DIGEST."
  type        = string
}

variable "store_url" {
  description = "postgres://USER:PASSWORD@HOST:5432/DB of the platform store."
  type        = string
  sensitive   = true
  ephemeral   = true
}

variable "postgres_url" {
  description = "postgres://USER:PASSWORD@HOST:5432/DB of a dedicated database for db/postgres (the business services' books)."
  type        = string
  sensitive   = true
  ephemeral   = true
}

variable "postgres_app_password" {
  description = "The password db/postgres gives the tenants' roles."
  type        = string
  sensitive   = true
  ephemeral   = true
}

variable "redis_url" {
  description = "redis://HOST:6379 of the platform's Redis, or null."
  type        = string
  default     = null
  sensitive   = true
  ephemeral   = true
}

resource "kubernetes_namespace_v1" "switchyard" {
  metadata {
    name = "switchyard"
    labels = {
      "pod-security.kubernetes.io/enforce" = "restricted"
    }
  }
}

module "switchyard" {
  source = "../.."

  namespace     = kubernetes_namespace_v1.switchyard.metadata[0].name
  image         = var.image
  replicas      = 3
  max_replicas  = 12
  store_url             = var.store_url
  postgres_url          = var.postgres_url
  postgres_app_password = var.postgres_app_password
  redis_url             = var.redis_url
  kafka_brokers = ["kafka-0.kafka.kafka.svc.cluster.local:9092", "kafka-1.kafka.kafka.svc.cluster.local:9092"]
  vault_addr    = "http://vault.vault.svc.cluster.local:8200"
  resources = {
    requests = { cpu = "1", memory = "1Gi" }
    limits   = { cpu = "2", memory = "2Gi" }
  }
}

output "url" {
  description = "The gateway inside the cluster."
  value       = module.switchyard.url
}
