# Authorization of every gateway request.
#
# The gateway asks for `data.switchyard.authz.decision` with an input describing who calls
# (tenant, subject, roles, scopes), what is called (operation, domain, provider, action),
# the call's parameters (resource) and the tenant the call acts on (target_tenant).
# The answer is {"allow": bool, "reasons": set of strings}; reasons explain every denial so
# that operators can tell a missing permission from a business rule.
#
# Configuration lives in data.json under `data.switchyard` (the bundle's only root):
#   roles         role name -> permissions {operation, domain, provider, action}; each field is a
#                 value or "*"; an optional `warehouses` list restricts inventory calls to the
#                 listed `resource.warehouse` values.
#   scope_roles   API-key scope -> roles. Keys carry scopes, not roles. `invoke:<domain>` and
#                 `invoke:<domain>/<provider>` grant `developer` restricted to that part of the
#                 catalogue (so such a key cannot list the whole catalogue either).
#   thresholds    business limits (ledger_approval_amount).
#   tenants       per-tenant overrides: `roles` adds roles or replaces a role by name for that
#                 tenant only; `deny_actions` lists "<domain>/<provider>/<action>" patterns
#                 ("*" per segment) the tenant refuses whatever the caller's roles; `ai` holds
#                 its AI gateway rules: `deny_models` (aliases refused) and
#                 `max_estimated_tokens` (the largest prompt a call may send, as
#                 `input.ai.estimated_tokens` estimates it).
package switchyard.authz

default allow := false

# Allowed only when some role grants the call and no rule objects to it.
allow if {
	granted
	count(reasons) == 0
}

decision := {"allow": allow, "reasons": reasons}

tenant_config := object.get(data.switchyard.tenants, input.tenant, {})

# A tenant's definition of a role wins over the global one of the same name.
role_permissions(role) := permissions if {
	permissions := tenant_config.roles[role]
} else := data.switchyard.roles[role]

# A grant is a role plus the part of the catalogue it applies to ("*" = everywhere).
grants contains {"role": role, "domain": "*", "provider": "*"} if {
	some role in object.get(input, "roles", [])
}

# Scopes stand in for roles only when the caller has none (API keys, certificates): a token's
# roles are its authority, and its OAuth scopes must not widen them.
roleless if count(object.get(input, "roles", [])) == 0

grants contains {"role": role, "domain": "*", "provider": "*"} if {
	roleless
	some scope in object.get(input, "scopes", [])
	some role in data.switchyard.scope_roles[scope]
}

grants contains {"role": "developer", "domain": target[0], "provider": target[1]} if {
	roleless
	some scope in object.get(input, "scopes", [])
	startswith(scope, "invoke:")
	target := scope_target(substring(scope, count("invoke:"), -1))
}

scope_target(rest) := [rest, "*"] if {
	not contains(rest, "/")
	rest != ""
}

scope_target(rest) := parts if {
	parts := split(rest, "/")
	count(parts) == 2
	parts[0] != ""
	parts[1] != ""
}

effective_roles := {grant.role | some grant in grants}

# Values a permission field may hold to match this request; built once per evaluation so that
# the permission loop in `granted` only tests set membership.
operation_patterns := {"*", input.operation}

domain_patterns := {"*", input.domain}

provider_patterns := {"*", input.provider}

action_patterns := {"*", input.action}

# The hot loop of every decision: cheap grant checks first, then each permission of the role.
granted if {
	some grant in grants
	grant.domain in domain_patterns
	grant.provider in provider_patterns
	some permission in role_permissions(grant.role)
	permission.operation in operation_patterns
	permission.domain in domain_patterns
	permission.provider in provider_patterns
	permission.action in action_patterns
	warehouse_allowed(permission)
}

warehouse_allowed(permission) if not permission.warehouses

warehouse_allowed(permission) if input.resource.warehouse in permission.warehouses

valid_tenant if {
	is_string(input.tenant)
	input.tenant != ""
}

reasons contains "missing tenant" if not valid_tenant

# A tenant's admin is still only an admin of that tenant.
reasons contains "cross-tenant" if {
	valid_tenant
	object.get(input, "target_tenant", input.tenant) != input.tenant
}

reasons contains msg if {
	not granted
	msg := sprintf("no role grants %s on %s/%s/%s", [input.operation, input.domain, input.provider, input.action])
}

reasons contains msg if {
	some pattern in object.get(tenant_config, "deny_actions", [])
	denied_by_pattern(pattern)
	msg := sprintf("%s/%s/%s is disabled for tenant %s", [input.domain, input.provider, input.action, input.tenant])
}

# An AI call (`input.ai`, set for ai/gateway and /v1) to an alias the tenant refuses.
reasons contains msg if {
	input.ai.alias in object.get(object.get(tenant_config, "ai", {}), "deny_models", [])
	msg := sprintf("model %s is disabled for tenant %s", [input.ai.alias, input.tenant])
}

# An AI prompt larger than the tenant allows, judged before anything is reserved or sent.
reasons contains msg if {
	limit := object.get(tenant_config, "ai", {}).max_estimated_tokens
	input.ai.estimated_tokens > limit
	msg := sprintf("the prompt (about %d tokens) exceeds the %d tenant %s allows", [input.ai.estimated_tokens, limit, input.tenant])
}

denied_by_pattern(pattern) if {
	parts := split(pattern, "/")
	count(parts) == 3
	parts[0] in domain_patterns
	parts[1] in provider_patterns
	parts[2] in action_patterns
}

# Four-eyes rule: large journal postings need an approver (admins may always post).
ledger_posting if {
	input.domain == "ledger"
	input.action == "post_journal"
}

approval_threshold := data.switchyard.thresholds.ledger_approval_amount

may_approve if "approver" in effective_roles

may_approve if "admin" in effective_roles

# Human tasks: claiming and deciding a task of the inbox (`/services/tasks/...`) needs an
# approver (admins may always), whatever else the caller's roles grant; creating, escalating
# and cancelling are the workflow's, granted like any other invocation.
task_decision if {
	input.domain == "tasks"
	input.provider == "service"
	input.action in {"claim", "approve", "reject"}
}

reasons contains "claiming or deciding a task needs approver" if {
	task_decision
	not may_approve
}

reasons contains msg if {
	ledger_posting
	not may_approve
	posting_amount > approval_threshold
	msg := sprintf("ledger posting above %v needs approver", [approval_threshold])
}

# An amount the policy cannot read is treated as large rather than waved through.
reasons contains "ledger posting without a numeric amount needs approver" if {
	ledger_posting
	not may_approve
	not posting_amount
}

posting_amount := numeric(input.resource.amount)

# Read by its literal path, as every input field here is: the gateway caches decisions by the
# fields a policy reads, and listing the resource's keys would make the whole resource one.
amount_given if {
	_ = input.resource.amount
}

posting_amount := total if {
	not amount_given
	lines := input.resource.lines
	is_array(lines)
	debits := [numeric(object.get(line, "debit", 0)) | some line in lines]
	count(debits) == count(lines)
	total := sum(debits)
}

# Numbers, and strings that spell a decimal number (JSON clients often send money as strings).
numeric(x) := x if is_number(x)

numeric(x) := to_number(x) if {
	is_string(x)
	regex.match(`^-?[0-9]+(\.[0-9]+)?$`, x)
}
