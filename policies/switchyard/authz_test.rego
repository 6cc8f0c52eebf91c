# Unit tests of switchyard.authz; every bundle runs them before it is accepted.
package switchyard.authz_test

import data.switchyard.authz

# A clerk of tenant acme querying db/sqlite; tests override the fields they are about.
base := {
	"tenant": "acme",
	"subject": "oidc:ann",
	"roles": ["clerk"],
	"scopes": [],
	"operation": "invoke",
	"domain": "db",
	"provider": "sqlite",
	"action": "query",
	"resource": {"sql": "select 1"},
	"request": {"method": "POST", "path": "/providers/db/sqlite/query", "request_id": "t-1"},
	"target_tenant": "acme",
}

call(overrides) := object.union(base, overrides)

# Tests of the global rules pin the tenant overrides to none, so that a deployment's
# data.json (which may configure tenant "acme") cannot make the bundle's own tests fail.
decide(input_doc) := d if {
	d := authz.decision with input as input_doc with data.switchyard.tenants as {}
}

allowed(input_doc) if decide(input_doc).allow

posting(roles, resource) := call({
	"roles": roles,
	"domain": "ledger",
	"provider": "service",
	"action": "post_journal",
	"resource": resource,
})

threshold_reason := "ledger posting above 10000 needs approver"

test_clerk_may_query if {
	d := decide(base)
	d.allow
	count(d.reasons) == 0
}

test_clerk_may_not_execute if {
	d := decide(call({"action": "execute"}))
	not d.allow
	"no role grants invoke on db/sqlite/execute" in d.reasons
}

test_clerk_may_read_catalogue if {
	allowed(call({"operation": "read", "domain": "", "provider": "", "action": "list"}))
}

test_clerk_may_not_administer if {
	not allowed(call({"operation": "admin", "action": "configure"}))
}

test_auditor_reads_but_does_not_invoke if {
	allowed(call({"roles": ["auditor"], "operation": "read", "action": "describe"}))
	not allowed(call({"roles": ["auditor"]}))
}

test_operator_administers_but_does_not_invoke if {
	allowed(call({"roles": ["operator"], "operation": "admin", "action": "stop"}))
	not allowed(call({"roles": ["operator"]}))
}

test_developer_executes if {
	allowed(call({"roles": ["developer"], "action": "execute"}))
}

test_default_deny_without_roles if {
	d := decide(call({"roles": []}))
	not d.allow
	"no role grants invoke on db/sqlite/query" in d.reasons
}

test_unknown_role_denied if {
	not allowed(call({"roles": ["superuser"]}))
}

test_missing_tenant_denied if {
	d := decide(object.remove(base, ["tenant"]))
	not d.allow
	"missing tenant" in d.reasons
}

test_cross_tenant_denied_even_for_admin if {
	d := decide(call({"roles": ["admin"], "target_tenant": "globex"}))
	not d.allow
	"cross-tenant" in d.reasons
}

test_admin_allowed_in_own_tenant if {
	allowed(call({"roles": ["admin"], "operation": "admin", "action": "configure"}))
}

test_small_posting_by_developer_allowed if {
	allowed(posting(["developer"], {"amount": 10000}))
}

test_large_posting_by_developer_denied if {
	d := decide(posting(["developer"], {"amount": 10000.01}))
	not d.allow
	threshold_reason in d.reasons
}

test_large_posting_as_numeric_string_denied if {
	d := decide(posting(["developer"], {"amount": "25000"}))
	threshold_reason in d.reasons
}

test_large_posting_by_line_sum_denied if {
	lines := [{"account": "1000", "debit": 6000}, {"account": "1100", "debit": "5000"}, {"account": "4000", "credit": 11000}]
	d := decide(posting(["developer"], {"lines": lines}))
	threshold_reason in d.reasons
}

test_small_posting_by_line_sum_allowed if {
	lines := [{"account": "1000", "debit": 600}, {"account": "4000", "credit": 600}]
	allowed(posting(["developer"], {"lines": lines}))
}

test_unreadable_amount_needs_approver if {
	d := decide(posting(["developer"], {"amount": "a lot"}))
	"ledger posting without a numeric amount needs approver" in d.reasons
	allowed(posting(["approver"], {"amount": "a lot"}))
}

test_unreadable_line_needs_approver if {
	lines := [{"account": "1000", "debit": "plenty"}, {"account": "4000", "credit": 1}]
	d := decide(posting(["developer"], {"lines": lines}))
	"ledger posting without a numeric amount needs approver" in d.reasons
}

test_approver_posts_above_threshold if {
	allowed(posting(["approver"], {"amount": 250000}))
}

test_admin_posts_above_threshold if {
	allowed(posting(["admin"], {"amount": 250000}))
}

# A call of the task inbox's `action` by a caller with `roles` and `scopes`.
task_call(action, roles, scopes) := call({
	"roles": roles,
	"scopes": scopes,
	"domain": "tasks",
	"provider": "service",
	"action": action,
	"resource": {"task_id": "t-1"},
})

task_reason := "claiming or deciding a task needs approver"

test_approver_claims_and_decides_tasks if {
	every action in ["list", "get", "claim", "approve", "reject"] {
		allowed(task_call(action, ["approver"], []))
	}
}

test_admin_decides_tasks if {
	allowed(task_call("approve", ["admin"], []))
	allowed(task_call("reject", [], ["*"]))
}

test_developer_may_not_decide_tasks if {
	every action in ["claim", "approve", "reject"] {
		d := decide(task_call(action, ["developer"], []))
		not d.allow
		task_reason in d.reasons
	}
	# A key whose scopes make it a developer is refused the same way.
	d := decide(task_call("approve", [], ["invoke"]))
	task_reason in d.reasons
}

test_developer_creates_escalates_and_cancels_tasks if {
	every action in ["create", "list", "escalate", "cancel"] {
		allowed(task_call(action, ["developer"], []))
	}
}

test_approver_may_not_create_or_cancel_tasks if {
	not allowed(task_call("create", ["approver"], []))
	not allowed(task_call("cancel", ["approver"], []))
}

test_clerk_may_not_decide_tasks if {
	not allowed(task_call("approve", ["clerk"], []))
}

test_approver_of_another_tenant_may_not_decide if {
	d := decide(object.union(task_call("approve", ["approver"], []), {"target_tenant": "globex"}))
	"cross-tenant" in d.reasons
}

test_clerk_may_not_post if {
	not allowed(posting(["clerk"], {"amount": 5}))
}

test_scope_star_maps_to_admin if {
	allowed(call({"roles": [], "scopes": ["*"], "operation": "admin", "action": "configure"}))
}

test_scope_admin_maps_to_operator if {
	allowed(call({"roles": [], "scopes": ["admin"], "operation": "admin", "action": "start"}))
	not allowed(call({"roles": [], "scopes": ["admin"]}))
}

test_scope_read_maps_to_auditor if {
	allowed(call({"roles": [], "scopes": ["read"], "operation": "read", "action": "health"}))
	not allowed(call({"roles": [], "scopes": ["read"]}))
}

test_scope_invoke_maps_to_developer if {
	allowed(call({"roles": [], "scopes": ["invoke"], "action": "execute"}))
}

test_scope_invoke_domain_limited_to_domain if {
	allowed(call({"roles": [], "scopes": ["invoke:db"], "action": "execute"}))
	not allowed(call({"roles": [], "scopes": ["invoke:db"], "domain": "cache", "provider": "redis", "action": "get"}))
}

test_scope_invoke_provider_limited_to_provider if {
	allowed(call({"roles": [], "scopes": ["invoke:db/sqlite"]}))
	not allowed(call({"roles": [], "scopes": ["invoke:db/sqlite"], "provider": "postgres"}))
}

test_scopes_do_not_widen_a_tokens_roles if {
	not allowed(call({"roles": ["clerk"], "scopes": ["read", "invoke"], "action": "execute"}))
	allowed(call({"roles": ["clerk"], "scopes": ["read", "invoke"], "action": "query"}))
}

test_scope_audit_maps_to_auditor if {
	allowed(call({"roles": [], "scopes": ["audit"], "operation": "audit", "domain": "", "provider": "", "action": "decisions"}))
	not allowed(call({"roles": [], "scopes": ["audit"], "action": "query"}))
}

test_malformed_invoke_scope_grants_nothing if {
	not allowed(call({"roles": [], "scopes": ["invoke:"]}))
	not allowed(call({"roles": [], "scopes": ["invoke:db/sqlite/query"]}))
	not allowed(call({"roles": [], "scopes": ["invoke:"], "operation": "read", "domain": "", "provider": "", "action": "list"}))
	not allowed(call({"roles": [], "scopes": ["invoke:/"], "operation": "read", "domain": "", "provider": "", "action": "list"}))
	not allowed(call({"roles": [], "scopes": ["invoke:db/"], "provider": ""}))
}

test_roles_win_over_scopes if {
	not allowed(call({"roles": ["auditor"], "scopes": ["invoke:db"]}))
	allowed(call({"roles": [], "scopes": ["invoke:db"]}))
}

test_tenant_override_replaces_role if {
	tenants := {"acme": {"roles": {"clerk": [{"operation": "invoke", "domain": "db", "provider": "*", "action": "*"}]}}}
	authz.allow with input as call({"action": "execute"}) with data.switchyard.tenants as tenants
	not authz.allow with input as call({"tenant": "globex", "target_tenant": "globex", "action": "execute"}) with data.switchyard.tenants as tenants
}

test_tenant_override_adds_role if {
	tenants := {"acme": {"roles": {"cashier": [{"operation": "invoke", "domain": "cache", "provider": "*", "action": "set"}]}}}
	authz.allow with input as call({"roles": ["cashier"], "domain": "cache", "provider": "redis", "action": "set"}) with data.switchyard.tenants as tenants
}

test_tenant_deny_actions if {
	tenants := {"acme": {"deny_actions": ["db/*/query"]}}
	d := authz.decision with input as call({"roles": ["admin"]}) with data.switchyard.tenants as tenants
	not d.allow
	"db/sqlite/query is disabled for tenant acme" in d.reasons
}

ai_call(alias, tokens) := call({
	"roles": ["admin"], "domain": "ai", "provider": "gateway", "action": "chat_completions",
	"ai": {"model": alias, "alias": alias, "max_tokens": null, "estimated_tokens": tokens},
})

test_tenant_ai_rules_decide_per_model_and_size if {
	tenants := {"acme": {"ai": {"deny_models": ["big"], "max_estimated_tokens": 100}}}
	authz.allow with input as ai_call("small", 10) with data.switchyard.tenants as tenants
	refused := authz.decision with input as ai_call("big", 10) with data.switchyard.tenants as tenants
	"model big is disabled for tenant acme" in refused.reasons
	too_big := authz.decision with input as ai_call("small", 101) with data.switchyard.tenants as tenants
	not too_big.allow
	# Another tenant's rules do not apply.
	authz.allow with input as object.union(ai_call("big", 101), {"tenant": "globex", "target_tenant": "globex"}) with data.switchyard.tenants as tenants
}

test_warehouse_listed_allowed if {
	allowed(call({
		"roles": ["warehouse_clerk"], "domain": "inventory", "provider": "service",
		"action": "adjust_stock", "resource": {"warehouse": "central", "sku": "A-1", "delta": -2},
	}))
}

test_warehouse_not_listed_denied if {
	not allowed(call({
		"roles": ["warehouse_clerk"], "domain": "inventory", "provider": "service",
		"action": "adjust_stock", "resource": {"warehouse": "harbour", "sku": "A-1", "delta": -2},
	}))
	not allowed(call({
		"roles": ["warehouse_clerk"], "domain": "inventory", "provider": "service",
		"action": "adjust_stock", "resource": {},
	}))
}

# The tenant's API keys (GET/POST /keys): only a role granted every operation manages them, so
# the console's key form is refused to operators and developers by this engine, not by a page.
key_request(roles) := call({
	"roles": roles,
	"operation": "keys",
	"domain": "",
	"provider": "",
	"action": "",
	"resource": {},
	"request": {"method": "POST", "path": "/keys", "request_id": "t-keys"},
})

test_admin_manages_keys if {
	allowed(key_request(["admin"]))
}

test_operator_and_developer_do_not_manage_keys if {
	not allowed(key_request(["operator"]))
	not allowed(key_request(["developer"]))
}
