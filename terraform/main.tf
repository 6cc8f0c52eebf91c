# switchyard on Kubernetes: `switchyard serve` (gateway and provider runtime in one process) on
# port 8080, the same shape as deploy/kubernetes/base: Deployment, Service, HPA,
# PodDisruptionBudget, NetworkPolicy, ServiceAccount, Secret and ConfigMaps.
#
# One difference from the kustomize manifests: the hashicorp/kubernetes provider (3.2) cannot
# express the preStop `sleep` action (its lifecycle handlers are exec, http_get and
# tcp_socket) and the image has no shell or sleep binary, so these pods get no preStop delay.
# On deletion the gateway starts draining at once: requests already in flight finish, and a
# request that reaches the pod before every proxy has dropped its endpoint is answered
# 503 shutting_down (retryable) instead of being served.

locals {
  labels = {
    "app.kubernetes.io/name"       = var.name
    "app.kubernetes.io/part-of"    = "switchyard"
    "app.kubernetes.io/component"  = "gateway"
    "app.kubernetes.io/managed-by" = "terraform"
  }
  selector = {
    "app.kubernetes.io/name" = var.name
    "switchyard.dev/track"   = "stable"
  }

  gateway_config = coalesce(var.gateway_config, file("${path.module}/../deploy/kubernetes/base/gateway.toml"))
  # [limits] drain_timeout_ms of the config (default 40000 in gateway/src/config.rs): on
  # SIGTERM the gateway waits that long at most for requests in flight, then exits within 1 s.
  drain_timeout_ms = try(
    tonumber(replace(regex("(?m)^\\s*drain_timeout_ms\\s*=\\s*([0-9_]+)", local.gateway_config)[0], "_", "")),
    40000,
  )
  termination_grace_period_seconds = ceil(local.drain_timeout_ms / 1000) + 20

  # Replicas share the store, so the lifecycle bus cannot be the default bus/embedded (a file
  # in the pod, refused at start-up): bus/kafka with Kafka, else off.
  settings = merge(
    { "lifecycle-bus" = length(var.kafka_brokers) > 0 ? "bus/kafka" : "off" },
    length(var.kafka_brokers) > 0 ? {
      "kafka-brokers" = join(",", var.kafka_brokers)
      "orders-bus"    = "bus/kafka"
    } : {},
    var.vault_addr != null ? { "vault-addr" = var.vault_addr } : {},
  )

  data_dir      = "/var/lib/switchyard"
  secrets_mount = "/var/run/secrets/switchyard"
}

resource "kubernetes_service_account_v1" "switchyard" {
  metadata {
    name      = var.name
    namespace = var.namespace
    labels    = local.labels
  }
  # switchyard calls no Kubernetes API.
  automount_service_account_token = false
}

resource "kubernetes_secret_v1" "switchyard" {
  metadata {
    name      = var.name
    namespace = var.namespace
    labels    = local.labels
  }
  # Write-only: the values reach the API server but never the state or the plan. Absent keys
  # leave their variables unset in the pods (the references are optional).
  data_wo = {
    for key, value in {
      "store-url"             = var.store_url
      "postgres-url"          = var.postgres_url
      "postgres-app-password" = var.postgres_app_password
      "redis-url"             = var.redis_url
      "vault-token"           = var.vault_token
      "metrics-token"         = var.metrics_token
    } : key => value if value != null
  }
  data_wo_revision = var.secret_revision
}

resource "kubernetes_config_map_v1" "gateway" {
  metadata {
    name      = "${var.name}-gateway"
    namespace = var.namespace
    labels    = local.labels
  }
  data = {
    "gateway.toml" = local.gateway_config
  }
}

resource "kubernetes_config_map_v1" "settings" {
  metadata {
    name      = "${var.name}-settings"
    namespace = var.namespace
    labels    = local.labels
  }
  data = local.settings
}

resource "kubernetes_deployment_v1" "switchyard" {
  # checkov:skip=CKV_K8S_14: the image is the caller's var.image, whose validation accepts only REGISTRY/NAME@sha256:DIGEST; checkov cannot see a variable without a default
  # checkov:skip=CKV_K8S_43: the image is the caller's var.image, whose validation accepts only REGISTRY/NAME@sha256:DIGEST; checkov cannot see a variable without a default
  metadata {
    name      = var.name
    namespace = var.namespace
    labels    = merge(local.labels, { "switchyard.dev/track" = "stable" })
  }

  spec {
    replicas               = var.replicas
    revision_history_limit = 5

    selector {
      match_labels = local.selector
    }

    strategy {
      type = "RollingUpdate"
      rolling_update {
        max_unavailable = "0"
        max_surge       = "1"
      }
    }

    template {
      metadata {
        labels = merge(local.labels, local.selector)
        annotations = {
          # A changed config (or Secret revision) rolls the pods, as kustomize's hashed names do.
          "switchyard.dev/gateway-config-sha256" = sha256(local.gateway_config)
          "switchyard.dev/settings-sha256"       = sha256(jsonencode(local.settings))
          "switchyard.dev/secret-revision"       = tostring(var.secret_revision)
        }
      }

      spec {
        service_account_name             = kubernetes_service_account_v1.switchyard.metadata[0].name
        automount_service_account_token  = false
        enable_service_links             = false
        termination_grace_period_seconds = local.termination_grace_period_seconds

        security_context {
          run_as_non_root = true
          run_as_user     = 10001
          run_as_group    = 10001
          fs_group        = 10001
          seccomp_profile {
            type = "RuntimeDefault"
          }
        }

        topology_spread_constraint {
          max_skew           = 1
          topology_key       = "kubernetes.io/hostname"
          when_unsatisfiable = "ScheduleAnyway"
          label_selector {
            match_labels = { "app.kubernetes.io/name" = var.name }
          }
        }

        container {
          name              = "switchyard"
          image             = var.image
          image_pull_policy = "Always"
          args              = ["serve", "--listen", "0.0.0.0:8080", "--config", "/etc/switchyard/gateway.toml"]

          port {
            name           = "http"
            container_port = 8080
            protocol       = "TCP"
          }

          env {
            name  = "SWITCHYARD_DATA_DIR"
            value = local.data_dir
          }
          # A reference: the store's password is in a mounted file, not in the environment.
          env {
            name  = "SWITCHYARD_STORE_URL"
            value = "secret://file${local.secrets_mount}/store-url"
          }
          # The business services' books on db/postgres: their default, db/sqlite, is a file
          # in the pod, which a shared store refuses at start-up.
          env {
            name = "SWITCHYARD_POSTGRES_URL"
            value_from {
              secret_key_ref {
                name = kubernetes_secret_v1.switchyard.metadata[0].name
                key  = "postgres-url"
              }
            }
          }
          env {
            name = "SWITCHYARD_POSTGRES_APP_PASSWORD"
            value_from {
              secret_key_ref {
                name = kubernetes_secret_v1.switchyard.metadata[0].name
                key  = "postgres-app-password"
              }
            }
          }
          env {
            name  = "SWITCHYARD_LEDGER_DB"
            value = "db/postgres"
          }
          env {
            name  = "SWITCHYARD_INVENTORY_DB"
            value = "db/postgres"
          }
          env {
            name  = "SWITCHYARD_ORDERS_DB"
            value = "db/postgres"
          }
          env {
            name = "SWITCHYARD_LIFECYCLE_BUS"
            value_from {
              config_map_key_ref {
                name     = kubernetes_config_map_v1.settings.metadata[0].name
                key      = "lifecycle-bus"
                optional = true
              }
            }
          }
          env {
            name = "SWITCHYARD_ORDERS_BUS"
            value_from {
              config_map_key_ref {
                name     = kubernetes_config_map_v1.settings.metadata[0].name
                key      = "orders-bus"
                optional = true
              }
            }
          }
          env {
            name = "SWITCHYARD_REDIS_URL"
            value_from {
              secret_key_ref {
                name     = kubernetes_secret_v1.switchyard.metadata[0].name
                key      = "redis-url"
                optional = true
              }
            }
          }
          env {
            name = "SWITCHYARD_KAFKA_BROKERS"
            value_from {
              config_map_key_ref {
                name     = kubernetes_config_map_v1.settings.metadata[0].name
                key      = "kafka-brokers"
                optional = true
              }
            }
          }
          env {
            name = "VAULT_ADDR"
            value_from {
              config_map_key_ref {
                name     = kubernetes_config_map_v1.settings.metadata[0].name
                key      = "vault-addr"
                optional = true
              }
            }
          }
          env {
            name = "VAULT_TOKEN"
            value_from {
              secret_key_ref {
                name     = kubernetes_secret_v1.switchyard.metadata[0].name
                key      = "vault-token"
                optional = true
              }
            }
          }
          env {
            name = "SWITCHYARD_METRICS_TOKEN"
            value_from {
              secret_key_ref {
                name     = kubernetes_secret_v1.switchyard.metadata[0].name
                key      = "metrics-token"
                optional = true
              }
            }
          }

          startup_probe {
            http_get {
              path = "/healthz"
              port = "http"
            }
            period_seconds    = 2
            timeout_seconds   = 2
            failure_threshold = 30
          }
          liveness_probe {
            http_get {
              path = "/healthz"
              port = "http"
            }
            period_seconds    = 10
            timeout_seconds   = 2
            failure_threshold = 3
          }
          # 503 from the first moment of the drain.
          readiness_probe {
            http_get {
              path = "/readyz"
              port = "http"
            }
            period_seconds    = 5
            timeout_seconds   = 2
            failure_threshold = 2
          }

          resources {
            requests = var.resources.requests
            limits   = var.resources.limits
          }

          security_context {
            run_as_non_root            = true
            run_as_user                = 10001
            run_as_group               = 10001
            allow_privilege_escalation = false
            read_only_root_filesystem  = true
            privileged                 = false
            capabilities {
              drop = ["ALL"]
            }
            seccomp_profile {
              type = "RuntimeDefault"
            }
          }

          volume_mount {
            name       = "data"
            mount_path = local.data_dir
          }
          volume_mount {
            name       = "tmp"
            mount_path = "/tmp"
          }
          volume_mount {
            name       = "gateway-config"
            mount_path = "/etc/switchyard"
            read_only  = true
          }
          volume_mount {
            name       = "store-url"
            mount_path = local.secrets_mount
            read_only  = true
          }
        }

        volume {
          name = "data"
          empty_dir {
            size_limit = "1Gi"
          }
        }
        volume {
          name = "tmp"
          empty_dir {
            size_limit = "256Mi"
          }
        }
        volume {
          name = "gateway-config"
          config_map {
            name = kubernetes_config_map_v1.gateway.metadata[0].name
            items {
              key  = "gateway.toml"
              path = "gateway.toml"
            }
          }
        }
        volume {
          name = "store-url"
          secret {
            secret_name  = kubernetes_secret_v1.switchyard.metadata[0].name
            default_mode = "0440"
            items {
              key  = "store-url"
              path = "store-url"
            }
          }
        }
      }
    }
  }

  lifecycle {
    # The HPA owns the replica count once it runs.
    ignore_changes = [spec[0].replicas]
  }
}

resource "kubernetes_service_v1" "switchyard" {
  metadata {
    name      = var.name
    namespace = var.namespace
    labels    = local.labels
  }
  spec {
    type     = "ClusterIP"
    selector = { "app.kubernetes.io/name" = var.name }
    port {
      name        = "http"
      port        = 80
      target_port = "http"
      protocol    = "TCP"
    }
  }
}

resource "kubernetes_horizontal_pod_autoscaler_v2" "switchyard" {
  metadata {
    name      = var.name
    namespace = var.namespace
    labels    = local.labels
  }
  spec {
    min_replicas = var.replicas
    max_replicas = max(var.max_replicas, var.replicas)

    scale_target_ref {
      api_version = "apps/v1"
      kind        = "Deployment"
      name        = kubernetes_deployment_v1.switchyard.metadata[0].name
    }

    metric {
      type = "Resource"
      resource {
        name = "cpu"
        target {
          type                = "Utilization"
          average_utilization = var.cpu_target_utilization
        }
      }
    }

    behavior {
      # Each pod removed drains for up to the drain timeout: scale down slowly.
      scale_down {
        stabilization_window_seconds = 300
        policy {
          type           = "Pods"
          value          = 1
          period_seconds = 60
        }
      }
    }
  }
}

resource "kubernetes_pod_disruption_budget_v1" "switchyard" {
  metadata {
    name      = var.name
    namespace = var.namespace
    labels    = local.labels
  }
  spec {
    max_unavailable = "1"
    selector {
      match_labels = { "app.kubernetes.io/name" = var.name }
    }
  }
}

resource "kubernetes_network_policy_v1" "switchyard" {
  metadata {
    name      = var.name
    namespace = var.namespace
    labels    = local.labels
  }
  spec {
    pod_selector {
      match_labels = { "app.kubernetes.io/name" = var.name }
    }
    policy_types = ["Ingress", "Egress"]

    ingress {
      ports {
        port     = "8080"
        protocol = "TCP"
      }
    }

    egress {
      ports {
        port     = "53"
        protocol = "UDP"
      }
      ports {
        port     = "53"
        protocol = "TCP"
      }
    }

    egress {
      dynamic "ports" {
        for_each = var.egress_ports
        content {
          port     = tostring(ports.value)
          protocol = "TCP"
        }
      }
    }
  }
}
