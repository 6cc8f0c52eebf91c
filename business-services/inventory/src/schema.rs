//! The service's tables, created in each tenant's database on its first call.
//!
//! Pooled PostgreSQL tenants may create tables but not indexes (see the db/postgres docs), so
//! every index a read needs is a `PRIMARY KEY` or `UNIQUE` constraint inside `CREATE TABLE`.
//! Identifiers are `TEXT`: a recursive CTE's column type comes from its first term, and a
//! bound parameter is `text`, so `VARCHAR` columns would not unify with it on PostgreSQL. The
//! engine adds `tenant_id` and row-level security itself; no statement here names a tenant.
//!
//! There are no foreign keys: master data (items, warehouses, bins) and lots are only ever
//! inserted, so a reference checked once before a write stays valid, and bulk genealogy loads
//! are not slowed by per-row reference checks.

use switchyard_outbox::Dialect;
use switchyard_service_kit::money::LIMIT;

/// `CREATE TABLE IF NOT EXISTS` statements.
pub fn tables(dialect: Dialect) -> Vec<String> {
    let auto = dialect.auto_key();
    vec![
        // Master data. `uom` is a UN/ECE Recommendation 20 code (EPCIS requires one).
        "CREATE TABLE IF NOT EXISTS inv_item (
            item TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            uom TEXT NOT NULL,
            gtin TEXT UNIQUE,
            created_at TEXT NOT NULL
        )"
        .into(),
        "CREATE TABLE IF NOT EXISTS inv_warehouse (
            warehouse TEXT PRIMARY KEY,
            name TEXT NOT NULL
        )"
        .into(),
        "CREATE TABLE IF NOT EXISTS inv_bin (
            warehouse TEXT NOT NULL,
            bin TEXT NOT NULL,
            PRIMARY KEY (warehouse, bin)
        )"
        .into(),
        // The event store: one row per operation and stream it touches. `UNIQUE (stream, seq)`
        // is the optimistic lock of a stream (see engine.rs).
        format!(
            "CREATE TABLE IF NOT EXISTS inv_event (
                id {auto},
                event_id TEXT NOT NULL,
                stream TEXT NOT NULL,
                seq BIGINT NOT NULL,
                event_type TEXT NOT NULL,
                payload TEXT NOT NULL,
                recorded_at TEXT NOT NULL,
                UNIQUE (stream, seq)
            )"
        ),
        // The stream heads: quantity and value of an item in a warehouse (moving average
        // cost = value / on_hand) and the stream's last seq.
        format!(
            "CREATE TABLE IF NOT EXISTS stock_value (
                item TEXT NOT NULL,
                warehouse TEXT NOT NULL,
                on_hand BIGINT NOT NULL,
                value BIGINT NOT NULL,
                seq BIGINT NOT NULL,
                PRIMARY KEY (item, warehouse),
                CHECK (on_hand >= 0 AND on_hand <= {LIMIT} AND value >= 0 AND value <= {LIMIT})
            )"
        ),
        // The stock snapshot. The CHECK is what refuses negative stock (see engine.rs):
        // `lot` is '' for stock not tracked by lot.
        format!(
            "CREATE TABLE IF NOT EXISTS stock_bin (
                item TEXT NOT NULL,
                warehouse TEXT NOT NULL,
                bin TEXT NOT NULL,
                lot TEXT NOT NULL,
                on_hand BIGINT NOT NULL,
                reserved BIGINT NOT NULL,
                updated_at TEXT NOT NULL,
                PRIMARY KEY (item, warehouse, bin, lot),
                UNIQUE (lot, item, warehouse, bin),
                CHECK (on_hand >= 0 AND reserved >= 0 AND on_hand - reserved >= 0
                       AND on_hand <= {LIMIT})
            )"
        ),
        // Lots: what was received or made, and the details its children inherit.
        "CREATE TABLE IF NOT EXISTS inv_lot (
            lot TEXT PRIMARY KEY,
            item TEXT NOT NULL,
            quantity BIGINT NOT NULL,
            origin TEXT NOT NULL
                CHECK (origin IN ('received', 'split', 'merge', 'production', 'external')),
            warehouse TEXT NOT NULL,
            bin TEXT NOT NULL,
            supplier TEXT,
            supplier_lot TEXT,
            expires_on TEXT,
            quality TEXT,
            created_at TEXT NOT NULL,
            event_id TEXT NOT NULL,
            UNIQUE (expires_on, lot)
        )"
        .into(),
        // Genealogy: a transformation consumes lots (`in`) and makes lots (`out`). The two
        // keys are the two directions a trace walks: from a lot to its transformations, and
        // from a transformation to its other side.
        "CREATE TABLE IF NOT EXISTS inv_transformation (
            id TEXT PRIMARY KEY,
            kind TEXT NOT NULL CHECK (kind IN ('split', 'merge', 'production')),
            job TEXT,
            order_ref TEXT,
            operator TEXT,
            equipment TEXT,
            occurred_at TEXT NOT NULL,
            UNIQUE (occurred_at, id)
        )"
        .into(),
        "CREATE TABLE IF NOT EXISTS lot_edge (
            transformation_id TEXT NOT NULL,
            direction TEXT NOT NULL CHECK (direction IN ('in', 'out')),
            lot TEXT NOT NULL,
            quantity BIGINT NOT NULL CHECK (quantity > 0),
            PRIMARY KEY (lot, direction, transformation_id),
            UNIQUE (transformation_id, direction, lot)
        )"
        .into(),
        // Where lots ended: shipped to customers, or wasted.
        "CREATE TABLE IF NOT EXISTS inv_shipment (
            event_id TEXT NOT NULL,
            lot TEXT NOT NULL,
            quantity BIGINT NOT NULL,
            shipment TEXT NOT NULL,
            customer TEXT NOT NULL,
            order_ref TEXT,
            occurred_at TEXT NOT NULL,
            PRIMARY KEY (lot, event_id)
        )"
        .into(),
        "CREATE TABLE IF NOT EXISTS inv_waste (
            event_id TEXT NOT NULL,
            lot TEXT NOT NULL,
            quantity BIGINT NOT NULL,
            reason TEXT NOT NULL,
            operator TEXT,
            equipment TEXT,
            job TEXT,
            occurred_at TEXT NOT NULL,
            PRIMARY KEY (lot, event_id),
            UNIQUE (occurred_at, event_id, lot)
        )"
        .into(),
        // Requests made idempotent by the caller's `request_id` (a saga's step): the first
        // one's answer, written in the same transaction as its movement, so the same request
        // again (after a crash between the movement and the caller's record of it) moves
        // nothing and answers the same.
        "CREATE TABLE IF NOT EXISTS inv_request (
            request_id TEXT PRIMARY KEY,
            result TEXT NOT NULL
        )"
        .to_owned(),
        // The lot events in EPCIS terms (receiving, transformation, shipping, waste), each
        // exactly as exported; imported documents land here too.
        format!(
            "CREATE TABLE IF NOT EXISTS lot_event (
                id {auto},
                event_id TEXT NOT NULL UNIQUE,
                kind TEXT NOT NULL,
                event_time TEXT NOT NULL,
                record_time TEXT NOT NULL,
                payload TEXT NOT NULL,
                UNIQUE (event_time, id)
            )"
        ),
    ]
}
