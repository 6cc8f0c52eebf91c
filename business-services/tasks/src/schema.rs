//! The inbox's one table, created in each tenant's service books on first use.
//!
//! The engine adds `tenant_id` and row-level security itself: no statement of this service
//! names a tenant, so one tenant's tasks cannot be read or decided through another's client.
//! Pooled PostgreSQL tenants may create tables but not indexes, so the lookups the inbox
//! needs are `UNIQUE` constraints inside `CREATE TABLE` (see the ledger's schema).

use switchyard_outbox::Dialect;

/// The statuses a task moves through; `approved`, `rejected` and `cancelled` are final.
pub const STATUSES: [&str; 6] = [
    "open",
    "claimed",
    "escalated",
    "approved",
    "rejected",
    "cancelled",
];

/// `CREATE TABLE IF NOT EXISTS` statements for `db`'s dialect.
pub fn tables(dialect: Dialect) -> Vec<String> {
    let auto = dialect.auto_key();
    vec![format!(
        // `id` orders the inbox and pages it; `task_id` is the creator's idempotency key.
        // `delivered_at` is set once the decision reached the workflow (or at the decision,
        // for a task no workflow waits on): a decided row without it is "decided, not
        // delivered", and the same decision sent again delivers it.
        "CREATE TABLE IF NOT EXISTS task_inbox (
            id {auto},
            task_id VARCHAR(128) NOT NULL UNIQUE,
            workflow VARCHAR(200),
            instance VARCHAR(200),
            kind VARCHAR(64) NOT NULL,
            title VARCHAR(500) NOT NULL,
            data TEXT NOT NULL,
            approver_role VARCHAR(64) NOT NULL,
            escalate_to_role VARCHAR(64),
            role VARCHAR(64) NOT NULL,
            status VARCHAR(16) NOT NULL CHECK (status IN ({statuses})),
            sla_ms BIGINT NOT NULL,
            created_at VARCHAR(40) NOT NULL,
            created_by VARCHAR(300),
            due_at VARCHAR(40) NOT NULL,
            escalated_at VARCHAR(40),
            claimed_by VARCHAR(300),
            claimed_at VARCHAR(40),
            decided_by VARCHAR(300),
            decided_at VARCHAR(40),
            comment VARCHAR(2000),
            delivered_at VARCHAR(40),
            delivery_error VARCHAR(600),
            UNIQUE (status, id),
            UNIQUE (role, id)
        )",
        statuses = STATUSES.map(|s| format!("'{s}'")).join(", "),
    )]
}

/// Every column, in the order the reads name them.
pub const COLUMNS: &str = "id, task_id, workflow, instance, kind, title, data, approver_role, \
    escalate_to_role, role, status, sla_ms, created_at, created_by, due_at, escalated_at, \
    claimed_by, claimed_at, decided_by, decided_at, comment, delivered_at, delivery_error";
