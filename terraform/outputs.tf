output "namespace" {
  description = "The namespace everything was created in."
  value       = var.namespace
}

output "deployment_name" {
  description = "The Deployment running `switchyard serve`."
  value       = kubernetes_deployment_v1.switchyard.metadata[0].name
}

output "service_name" {
  description = "The ClusterIP Service in front of the pods (port 80 to the pods' 8080)."
  value       = kubernetes_service_v1.switchyard.metadata[0].name
}

output "url" {
  description = "The gateway's address inside the cluster."
  value       = "http://${kubernetes_service_v1.switchyard.metadata[0].name}.${var.namespace}.svc.cluster.local"
}

output "secret_name" {
  description = "The Secret holding store-url (and redis-url, vault-token, metrics-token when given)."
  value       = kubernetes_secret_v1.switchyard.metadata[0].name
}

output "gateway_config_map_name" {
  description = "The ConfigMap with gateway.toml."
  value       = kubernetes_config_map_v1.gateway.metadata[0].name
}

output "termination_grace_period_seconds" {
  description = "The pods' grace period: the gateway config's drain_timeout_ms plus 20 s."
  value       = local.termination_grace_period_seconds
}
