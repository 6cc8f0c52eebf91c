//! The ledger's tables, created in each tenant's database on first use.
//!
//! Pooled PostgreSQL tenants may create tables but not indexes (see the db/postgres docs), so
//! every index the reads need is declared as a `UNIQUE` constraint inside `CREATE TABLE`; one
//! that ends with the primary key (`UNIQUE (account, id)`) is always satisfied and exists only
//! for its index. The engine adds `tenant_id` and row-level security itself: no statement here
//! or anywhere in the ledger names a tenant.
//!
//! `gl_entry` and `gl_seal` declare no foreign keys: every row of theirs is written in the
//! statement (or batch) that writes its journal's header, whose guard has proved the lines'
//! accounts (ADR 29), and a foreign key check per row was a third of a posting's execution
//! time on PostgreSQL. Books created before keep theirs (pooled tenants cannot `ALTER`); they
//! only cost time. `rebuild` and `verify` find rows written behind the ledger's back.

use switchyard_outbox::Dialect;

use crate::amount::TOTAL_LIMIT;

/// `CREATE TABLE IF NOT EXISTS` statements in dependency order.
pub fn tables(dialect: Dialect) -> Vec<String> {
    let auto = dialect.auto_key();
    vec![
        // The chart of accounts. Rows are only ever inserted.
        "CREATE TABLE IF NOT EXISTS gl_account (
            code VARCHAR(64) PRIMARY KEY,
            name VARCHAR(200) NOT NULL,
            account_type VARCHAR(16) NOT NULL
                CHECK (account_type IN ('asset', 'liability', 'equity', 'income', 'expense')),
            currency VARCHAR(3) NOT NULL,
            parent VARCHAR(64) REFERENCES gl_account (code),
            created_at VARCHAR(40) NOT NULL
        )"
        .into(),
        // One row: the time through which the books are closed.
        "CREATE TABLE IF NOT EXISTS gl_period (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            closed_through VARCHAR(40) NOT NULL,
            closed_at VARCHAR(40) NOT NULL
        )"
        .into(),
        // Journal headers. `reverses` is UNIQUE: a journal is reversed at most once.
        // `in_open_period` is the period guard (see `posting::header_statement`).
        "CREATE TABLE IF NOT EXISTS gl_journal (
            journal_id VARCHAR(64) PRIMARY KEY,
            posting_time VARCHAR(40) NOT NULL,
            memo VARCHAR(500),
            external_ref VARCHAR(128),
            reverses VARCHAR(64) UNIQUE REFERENCES gl_journal (journal_id),
            fingerprint VARCHAR(64) NOT NULL,
            recorded_at VARCHAR(40) NOT NULL,
            in_open_period INTEGER NOT NULL
        )"
        .into(),
        // The event store: the source of truth every projection can be rebuilt from.
        format!(
            "CREATE TABLE IF NOT EXISTS acc_event (
                id {auto},
                stream VARCHAR(80) NOT NULL,
                seq INTEGER NOT NULL,
                event_type VARCHAR(64) NOT NULL,
                payload TEXT NOT NULL,
                recorded_at VARCHAR(40) NOT NULL,
                UNIQUE (stream, seq)
            )"
        ),
        // The general-ledger projection: one row per journal line, amounts in scaled units.
        format!(
            "CREATE TABLE IF NOT EXISTS gl_entry (
                id {auto},
                journal_id VARCHAR(64) NOT NULL,
                line_no INTEGER NOT NULL,
                account VARCHAR(64) NOT NULL,
                currency VARCHAR(3) NOT NULL,
                debit BIGINT NOT NULL,
                credit BIGINT NOT NULL,
                posting_time VARCHAR(40) NOT NULL,
                memo VARCHAR(500),
                CHECK ((debit > 0 AND credit = 0) OR (debit = 0 AND credit > 0)),
                UNIQUE (journal_id, line_no),
                UNIQUE (account, id),
                UNIQUE (account, posting_time, id)
            )"
        ),
        // The hash chain's lanes (see `chain`): each lane's last link, and the one before it,
        // which PostgreSQL's upsert hands to the journal's seal (RETURNING gives new values).
        "CREATE TABLE IF NOT EXISTS gl_chain (
            lane INTEGER PRIMARY KEY,
            seq BIGINT NOT NULL,
            head_journal VARCHAR(64) NOT NULL,
            head_hash VARCHAR(64) NOT NULL,
            prev_journal VARCHAR(64),
            prev_hash VARCHAR(64) NOT NULL
        )"
        .into(),
        // One link per journal: its place in its lane, the journal before it and the hashes.
        "CREATE TABLE IF NOT EXISTS gl_seal (
            journal_id VARCHAR(64) PRIMARY KEY,
            lane INTEGER NOT NULL,
            seq BIGINT NOT NULL,
            prev_journal VARCHAR(64),
            prev_hash VARCHAR(64) NOT NULL,
            hash VARCHAR(64) NOT NULL,
            UNIQUE (lane, seq)
        )"
        .into(),
        // The balance projection, incremented in SQL by every posting.
        format!(
            "CREATE TABLE IF NOT EXISTS gl_balance (
                account VARCHAR(64) NOT NULL REFERENCES gl_account (code),
                currency VARCHAR(3) NOT NULL,
                debit_total BIGINT NOT NULL CHECK (debit_total BETWEEN 0 AND {TOTAL_LIMIT}),
                credit_total BIGINT NOT NULL CHECK (credit_total BETWEEN 0 AND {TOTAL_LIMIT}),
                PRIMARY KEY (account, currency)
            )"
        ),
    ]
}
