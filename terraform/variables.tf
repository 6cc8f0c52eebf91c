variable "namespace" {
  description = "Namespace to deploy into; it must exist (examples/basic creates one)."
  type        = string
  default     = "switchyard"

  validation {
    condition     = can(regex("^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$", var.namespace)) && var.namespace != "default"
    error_message = "namespace must be a DNS label, and not \"default\"."
  }
}

variable "name" {
  description = "Name of the Deployment, Service, HPA, PDB, NetworkPolicy, ServiceAccount and Secret, and the app.kubernetes.io/name label."
  type        = string
  default     = "switchyard"
}

variable "image" {
  description = "The image scripts/image built, as pushed to a registry the cluster pulls from, pinned by digest: REGISTRY/switchyard@sha256:DIGEST (podman push --digestfile FILE prints it)."
  type        = string

  validation {
    condition     = can(regex("^[^@\\s]+@sha256:[0-9a-f]{64}$", var.image))
    error_message = "image must be pinned by digest: REGISTRY/switchyard@sha256:<64 hex digits>."
  }
}

variable "replicas" {
  description = "Replicas at least (the HPA's minReplicas; the Deployment starts with this many)."
  type        = number
  default     = 3

  validation {
    condition     = var.replicas >= 1 && floor(var.replicas) == var.replicas
    error_message = "replicas must be a whole number of at least 1."
  }
}

variable "max_replicas" {
  description = "The HPA's maxReplicas."
  type        = number
  default     = 12

  validation {
    condition     = var.max_replicas >= 1 && floor(var.max_replicas) == var.max_replicas
    error_message = "max_replicas must be a whole number of at least 1."
  }
}

variable "cpu_target_utilization" {
  description = "Average CPU utilization (percent of the request) the HPA keeps."
  type        = number
  default     = 70
}

variable "resources" {
  description = "The container's requests and limits. An idle `serve` holds about 400 MiB."
  type = object({
    requests = object({ cpu = string, memory = string })
    limits   = object({ cpu = string, memory = string })
  })
  default = {
    requests = { cpu = "1", memory = "1Gi" }
    limits   = { cpu = "2", memory = "2Gi" }
  }
}

# The Secret's values. Ephemeral: they reach the cluster through the write-only data_wo and are
# never written to the state or the plan; bump secret_revision to send changed values.

variable "store_url" {
  description = "The platform store, postgres://USER:PASSWORD@HOST:5432/DB, shared by every replica (SWITCHYARD_STORE_URL, read from the mounted Secret through a secret://file/ reference)."
  type        = string
  sensitive   = true
  ephemeral   = true
}

variable "postgres_url" {
  description = "db/postgres's superuser URL of a dedicated database, postgres://USER:PASSWORD@HOST:5432/DB (SWITCHYARD_POSTGRES_URL). The business services' books live there: replicas share the store, so their default db/sqlite (a file in the pod) is refused at start-up."
  type        = string
  sensitive   = true
  ephemeral   = true
}

variable "postgres_app_password" {
  description = "The password db/postgres gives the tenants' roles (SWITCHYARD_POSTGRES_APP_PASSWORD)."
  type        = string
  sensitive   = true
  ephemeral   = true
}

variable "redis_url" {
  description = "redis://[:PASSWORD@]HOST:6379 of the platform's Redis (SWITCHYARD_REDIS_URL, registers cache/redis); null leaves it unregistered. In the Secret: the URL may hold a password."
  type        = string
  default     = null
  sensitive   = true
  ephemeral   = true
}

variable "vault_token" {
  description = "Token for VAULT_ADDR (VAULT_TOKEN), for secret://vault/... references; null without Vault."
  type        = string
  default     = null
  sensitive   = true
  ephemeral   = true
}

variable "metrics_token" {
  description = "Bearer token a scraper must present on /metrics (SWITCHYARD_METRICS_TOKEN); null: /metrics answers loopback only."
  type        = string
  default     = null
  sensitive   = true
  ephemeral   = true
}

variable "secret_revision" {
  description = "Increment to push changed store_url, postgres_url, postgres_app_password, redis_url, vault_token or metrics_token to the Secret (write-only values cannot be compared)."
  type        = number
  default     = 1
}

# Settings and endpoints without credentials: the ConfigMap.

variable "kafka_brokers" {
  description = "Bootstrap servers, HOST:PORT each (SWITCHYARD_KAFKA_BROKERS, registers bus/kafka); the lifecycle and orders events then go to bus/kafka. Empty: bus/kafka unregistered, lifecycle events off."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for broker in var.kafka_brokers : can(regex("^[^,:/ ]+:[0-9]{1,5}$", broker))])
    error_message = "each of kafka_brokers must be HOST:PORT."
  }
}

variable "vault_addr" {
  description = "Vault's address, http(s)://HOST:8200 (VAULT_ADDR); null without Vault."
  type        = string
  default     = null

  validation {
    condition     = var.vault_addr == null || can(regex("^https?://", var.vault_addr))
    error_message = "vault_addr must start with http:// or https://."
  }
}

variable "gateway_config" {
  description = "The gateway config (TOML) passed as --config; null uses deploy/kubernetes/base/gateway.toml, the file the kustomize base mounts."
  type        = string
  default     = null
}

variable "egress_ports" {
  description = "TCP ports the pods may open connections to besides DNS: the store (5432), Redis (6379), Kafka (9092), Vault (8200). Add 443 for webhooks, AI providers, OIDC or S3."
  type        = list(number)
  default     = [5432, 6379, 9092, 8200]
}
