//! The orders' tables, created in each tenant's database on first use. The engine adds
//! `tenant_id` and row-level security itself: no statement here names a tenant.

use switchyard_outbox::Dialect;

/// `CREATE TABLE IF NOT EXISTS` statements; the same SQL serves every dialect the kit runs on.
pub fn tables(_: Dialect) -> Vec<String> {
    TABLES.map(str::to_owned).to_vec()
}

const TABLES: [&str; 5] = [
    "CREATE TABLE IF NOT EXISTS ord_customer (
        customer VARCHAR(200) PRIMARY KEY,
        name TEXT NOT NULL,
        created_at VARCHAR(40) NOT NULL
    )",
    "CREATE TABLE IF NOT EXISTS ord_order (
        order_id VARCHAR(64) PRIMARY KEY,
        customer TEXT NOT NULL,
        warehouse VARCHAR(64) NOT NULL,
        bin VARCHAR(64) NOT NULL,
        currency VARCHAR(3) NOT NULL,
        total TEXT NOT NULL,
        status VARCHAR(16) NOT NULL,
        content TEXT NOT NULL,
        category TEXT,
        risk TEXT,
        created_at VARCHAR(40) NOT NULL,
        updated_at VARCHAR(40) NOT NULL
    )",
    "CREATE TABLE IF NOT EXISTS ord_line (
        order_id VARCHAR(64) NOT NULL,
        line INTEGER NOT NULL,
        item VARCHAR(64) NOT NULL,
        quantity TEXT NOT NULL,
        unit_price TEXT NOT NULL,
        currency VARCHAR(3) NOT NULL,
        PRIMARY KEY (order_id, line)
    )",
    "CREATE TABLE IF NOT EXISTS ord_step (
        order_id VARCHAR(64) NOT NULL,
        name VARCHAR(64) NOT NULL,
        step_order INTEGER NOT NULL,
        status VARCHAR(8) NOT NULL,
        error TEXT,
        detail TEXT,
        updated_at VARCHAR(40) NOT NULL,
        PRIMARY KEY (order_id, name)
    )",
    // How many creations of an order id failed after reserving stock. The inventory answers
    // a reservation's request id (`order:<id>/a<attempt>/reserve:<line>`) once and for all,
    // so a creation after a failed one (whose reservations were given back) must use new ids;
    // a creation retried after a crash uses the same ones and reserves nothing twice.
    "CREATE TABLE IF NOT EXISTS ord_attempt (
        order_id VARCHAR(64) NOT NULL PRIMARY KEY,
        failed INTEGER NOT NULL
    )",
];
