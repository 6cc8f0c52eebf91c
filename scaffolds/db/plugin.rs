//! `db/__NAME__`: a db provider plugin (query, execute, transaction, metadata) on SQLite,
//! called through `libsqlite3-sys` (the SQLite the workspace already builds): one in-memory
//! database per tenant, owned by the engine, so a tenant's new instance (a reconfigure) keeps
//! its tables and no tenant can name another's. Open a file per tenant instead for data that
//! must survive the process. The runtime checks params and results against the db contract,
//! so only what the schemas cannot say is checked here.

use std::collections::HashMap;
use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::ptr;
use std::sync::{Arc, Mutex, MutexGuard};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use libsqlite3_sys as ffi;
use serde_json::{Map, Value, json};
use switchyard_plugin_abi::{Call, Instance, Plugin, PluginError, export_plugin};

/// One tenant's open database. Only used under its mutex.
struct Db(*mut ffi::sqlite3);

// SAFETY: the handle is opened in serialized mode and every use holds the mutex around it.
unsafe impl Send for Db {}

impl Drop for Db {
    fn drop(&mut self) {
        // SAFETY: the handle came from sqlite3_open_v2, is closed once, and every statement on it is finalized first (a `Statement` borrows the `Db`).
        unsafe { ffi::sqlite3_close(self.0) };
    }
}

pub struct Engine {
    databases: Mutex<HashMap<String, Arc<Mutex<Db>>>>,
}

impl Plugin for Engine {
    type Instance = Tenant;

    fn new() -> Self {
        Engine {
            databases: Mutex::default(),
        }
    }

    fn descriptor(&self) -> Value {
        json!({
            "domain": "db",
            "name": "__NAME__",
            "version": env!("CARGO_PKG_VERSION"),
            "summary": "db/__NAME__: SQLite, one in-memory database per tenant (a plugin skeleton)",
            "capabilities": ["dialect:sqlite", "metadata", "transactions"],
            "actions": ["query", "execute", "transaction", "metadata"],
            "config_schema": {"type": "object", "additionalProperties": false, "properties": {}}
        })
    }

    fn start(&self, tenant: &str, _config: Value) -> Result<Tenant, PluginError> {
        let mut databases = self.databases.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(db) = databases.get(tenant) {
            return Ok(Tenant { db: db.clone() });
        }
        let mut handle = ptr::null_mut();
        let flags = ffi::SQLITE_OPEN_READWRITE
            | ffi::SQLITE_OPEN_CREATE
            | ffi::SQLITE_OPEN_MEMORY
            | ffi::SQLITE_OPEN_FULLMUTEX;
        // SAFETY: a valid C string and an out pointer; a handle is returned even on failure.
        let opened =
            unsafe { ffi::sqlite3_open_v2(c":memory:".as_ptr(), &mut handle, flags, ptr::null()) };
        let db = Db(handle);
        if opened != ffi::SQLITE_OK {
            return Err(PluginError::new("provider_unavailable", message(&db)));
        }
        exec(&db, "PRAGMA foreign_keys = ON")?;
        let db = Arc::new(Mutex::new(db));
        databases.insert(tenant.to_owned(), db.clone());
        Ok(Tenant { db })
    }
}

/// One tenant's database.
pub struct Tenant {
    db: Arc<Mutex<Db>>,
}

fn message(db: &Db) -> String {
    // SAFETY: sqlite3_errmsg answers a string owned by the handle, valid until the next call.
    unsafe { CStr::from_ptr(ffi::sqlite3_errmsg(db.0)) }
        .to_string_lossy()
        .into_owned()
}

/// The error of the last call on `db`: a constraint violation is a conflict, anything else a
/// statement that failed, about the field at `pointer`.
fn failed(db: &Db, pointer: &str) -> PluginError {
    // SAFETY: a live handle.
    let code = unsafe { ffi::sqlite3_extended_errcode(db.0) } & 0xff;
    let kind = if code == ffi::SQLITE_CONSTRAINT {
        "conflict"
    } else {
        "statement_failed"
    };
    PluginError::field(kind, pointer, message(db))
}

fn exec(db: &Db, sql: &str) -> Result<(), PluginError> {
    let sql = CString::new(sql).map_err(|e| PluginError::new("statement_failed", e.to_string()))?;
    // SAFETY: a live handle and a C string; no callback.
    let done =
        unsafe { ffi::sqlite3_exec(db.0, sql.as_ptr(), None, ptr::null_mut(), ptr::null_mut()) };
    if done == ffi::SQLITE_OK {
        Ok(())
    } else {
        Err(failed(db, "/sql"))
    }
}

/// Refuses, when preparing, the statements that would end a batch's transaction early.
extern "C" fn deny_transaction_control(
    _: *mut c_void,
    action: c_int,
    _: *const c_char,
    _: *const c_char,
    _: *const c_char,
    _: *const c_char,
) -> c_int {
    if action == ffi::SQLITE_TRANSACTION || action == ffi::SQLITE_SAVEPOINT {
        ffi::SQLITE_DENY
    } else {
        ffi::SQLITE_OK
    }
}

/// A prepared statement, finalized when dropped.
struct Statement<'a> {
    db: &'a Db,
    raw: *mut ffi::sqlite3_stmt,
    pointer: String,
}

impl Drop for Statement<'_> {
    fn drop(&mut self) {
        // SAFETY: prepared by sqlite3_prepare_v2 and finalized once.
        unsafe { ffi::sqlite3_finalize(self.raw) };
    }
}

impl<'a> Statement<'a> {
    /// One statement of `sql` with `params` bound; `at` is the JSON pointer of the statement
    /// (`/sql`, `/statements/1/sql`), its params beside it.
    fn new(db: &'a Db, sql: &str, params: &Value, at: &str) -> Result<Self, PluginError> {
        let mut raw = ptr::null_mut();
        let mut tail = ptr::null();
        // SAFETY: the text and its length; SQLite reads no further than the length.
        let prepared = unsafe {
            ffi::sqlite3_prepare_v2(
                db.0,
                sql.as_ptr().cast(),
                sql.len() as c_int,
                &mut raw,
                &mut tail,
            )
        };
        let statement = Statement {
            db,
            raw,
            pointer: at.to_owned(),
        };
        if prepared != ffi::SQLITE_OK {
            return Err(failed(db, at));
        }
        // SAFETY: `tail` points into `sql` at or before its end.
        let rest = unsafe { tail.cast::<u8>().offset_from(sql.as_ptr()) } as usize;
        if raw.is_null() || !sql[rest..].trim().is_empty() {
            return Err(PluginError::field(
                "statement_failed",
                at,
                "give exactly one SQL statement",
            ));
        }
        let params_at = format!("{}/params", at.trim_end_matches("/sql"));
        for (i, value) in params.as_array().into_iter().flatten().enumerate() {
            statement.bind(i, value, &params_at)?;
        }
        Ok(statement)
    }

    fn bind(&self, i: usize, value: &Value, at: &str) -> Result<(), PluginError> {
        let n = (i + 1) as c_int;
        // SAFETY: a live statement; SQLITE_TRANSIENT makes SQLite copy the text.
        let bound = unsafe {
            match value {
                Value::Null => ffi::sqlite3_bind_null(self.raw, n),
                Value::Bool(b) => ffi::sqlite3_bind_int64(self.raw, n, i64::from(*b)),
                Value::Number(number) => match (number.as_i64(), number.as_f64()) {
                    (Some(int), _) => ffi::sqlite3_bind_int64(self.raw, n, int),
                    (None, _) if number.is_u64() => {
                        return Err(PluginError::field(
                            "params_invalid",
                            &format!("{at}/{i}"),
                            "an integer beyond 64 bits cannot be bound",
                        ));
                    }
                    (None, Some(float)) => ffi::sqlite3_bind_double(self.raw, n, float),
                    (None, None) => ffi::sqlite3_bind_null(self.raw, n),
                },
                Value::String(text) => ffi::sqlite3_bind_text(
                    self.raw,
                    n,
                    text.as_ptr().cast(),
                    text.len() as c_int,
                    ffi::SQLITE_TRANSIENT(),
                ),
                _ => ffi::SQLITE_MISMATCH,
            }
        };
        if bound == ffi::SQLITE_OK {
            Ok(())
        } else {
            Err(failed(self.db, &format!("{at}/{i}")))
        }
    }

    fn read_only(&self) -> bool {
        // SAFETY: a live statement.
        unsafe { ffi::sqlite3_stmt_readonly(self.raw) != 0 }
    }

    /// The next row, `None` when done.
    fn step(&self) -> Result<Option<Vec<Value>>, PluginError> {
        // SAFETY: a live statement; column accessors are used only on a row.
        unsafe {
            match ffi::sqlite3_step(self.raw) {
                ffi::SQLITE_DONE => Ok(None),
                ffi::SQLITE_ROW => Ok(Some(
                    (0..ffi::sqlite3_column_count(self.raw))
                        .map(|c| self.value(c))
                        .collect(),
                )),
                _ => Err(failed(self.db, &self.pointer)),
            }
        }
    }

    /// # Safety
    /// Only on a row, for a column below the count.
    unsafe fn value(&self, c: c_int) -> Value {
        unsafe {
            match ffi::sqlite3_column_type(self.raw, c) {
                ffi::SQLITE_INTEGER => json!(ffi::sqlite3_column_int64(self.raw, c)),
                ffi::SQLITE_FLOAT => json!(ffi::sqlite3_column_double(self.raw, c)),
                ffi::SQLITE_TEXT | ffi::SQLITE_BLOB => {
                    let is_text = ffi::sqlite3_column_type(self.raw, c) == ffi::SQLITE_TEXT;
                    let data = if is_text {
                        ffi::sqlite3_column_text(self.raw, c)
                    } else {
                        ffi::sqlite3_column_blob(self.raw, c).cast()
                    };
                    let len = ffi::sqlite3_column_bytes(self.raw, c) as usize;
                    let bytes = if data.is_null() {
                        &[][..]
                    } else {
                        std::slice::from_raw_parts(data, len)
                    };
                    if is_text {
                        json!(String::from_utf8_lossy(bytes))
                    } else {
                        json!(STANDARD.encode(bytes))
                    }
                }
                _ => Value::Null,
            }
        }
    }

    /// Each column's name and declared type (`None` for an expression).
    fn columns(&self) -> Vec<(String, Option<String>)> {
        // SAFETY: a live statement; the strings are copied before the next call.
        unsafe {
            (0..ffi::sqlite3_column_count(self.raw))
                .map(|c| {
                    let text = |p: *const c_char| {
                        (!p.is_null()).then(|| CStr::from_ptr(p).to_string_lossy().into_owned())
                    };
                    (
                        text(ffi::sqlite3_column_name(self.raw, c)).unwrap_or_default(),
                        text(ffi::sqlite3_column_decltype(self.raw, c)),
                    )
                })
                .collect()
        }
    }
}

impl Tenant {
    fn lock(&self) -> MutexGuard<'_, Db> {
        self.db.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn total_changes(db: &Db) -> i64 {
    // SAFETY: a live handle.
    unsafe { ffi::sqlite3_total_changes64(db.0) }
}

fn execute(db: &Db, sql: &str, params: &Value, at: &str) -> Result<Value, PluginError> {
    let before = total_changes(db);
    let statement = Statement::new(db, sql, params, at)?;
    while statement.step()?.is_some() {}
    let affected = total_changes(db) - before;
    let trimmed = sql.trim_start().to_ascii_uppercase();
    let inserted =
        affected > 0 && (trimmed.starts_with("INSERT") || trimmed.starts_with("REPLACE"));
    // SAFETY: a live handle.
    let last = inserted.then(|| unsafe { ffi::sqlite3_last_insert_rowid(db.0) });
    Ok(json!({"rows_affected": affected, "last_insert_id": last}))
}

fn query(db: &Db, p: &Value) -> Result<Value, PluginError> {
    let max_rows = p["max_rows"].as_u64().unwrap_or(10_000) as usize;
    let statement = Statement::new(
        db,
        p["sql"].as_str().unwrap_or_default(),
        &p["params"],
        "/sql",
    )?;
    if !statement.read_only() {
        return Err(PluginError::field(
            "statement_failed",
            "/sql",
            "query runs statements that only read; use execute to write",
        ));
    }
    let mut rows = Vec::new();
    while let Some(row) = statement.step()? {
        rows.push(row);
        if rows.len() > max_rows {
            break;
        }
    }
    let truncated = rows.len() > max_rows;
    rows.truncate(max_rows);
    let columns = statement.columns();
    let kind = |c: usize| {
        let value = rows.iter().map(|r| &r[c]).find(|v| !v.is_null());
        match value {
            Some(Value::Number(n)) if n.is_f64() => "REAL",
            Some(Value::Number(_)) => "INTEGER",
            Some(_) => "TEXT",
            None => "NULL",
        }
    };
    let described: Vec<Value> = columns
        .iter()
        .enumerate()
        .map(|(c, (name, declared))| json!({"name": name, "type": declared.as_deref().unwrap_or_else(|| kind(c))}))
        .collect();
    let objects: Vec<Value> = rows
        .into_iter()
        .map(|row| {
            let fields: Map<String, Value> = columns
                .iter()
                .map(|(name, _)| name.clone())
                .zip(row)
                .collect();
            Value::Object(fields)
        })
        .collect();
    Ok(
        json!({"columns": described, "row_count": objects.len(), "rows": objects, "truncated": truncated}),
    )
}

fn transaction(db: &Db, p: &Value) -> Result<Value, PluginError> {
    exec(db, "BEGIN")?;
    // SAFETY: a live handle and a callback that outlives it (a plain function).
    unsafe { ffi::sqlite3_set_authorizer(db.0, Some(deny_transaction_control), ptr::null_mut()) };
    let mut results = Vec::new();
    let mut outcome = Ok(());
    for (i, statement) in p["statements"].as_array().into_iter().flatten().enumerate() {
        let sql = statement["sql"].as_str().unwrap_or_default();
        match execute(
            db,
            sql,
            &statement["params"],
            &format!("/statements/{i}/sql"),
        ) {
            Ok(result) => results.push(result),
            Err(e) => {
                outcome = Err(e);
                break;
            }
        }
    }
    // SAFETY: a live handle; removes the authorizer.
    unsafe { ffi::sqlite3_set_authorizer(db.0, None, ptr::null_mut()) };
    match outcome {
        Ok(()) => {
            exec(db, "COMMIT")?;
            Ok(json!({"results": results}))
        }
        Err(e) => {
            exec(db, "ROLLBACK")?;
            Err(e)
        }
    }
}

fn metadata(db: &Db, p: &Value) -> Result<Value, PluginError> {
    let names = Statement::new(
        db,
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
        &Value::Null,
        "/table",
    )?;
    let mut tables = Vec::new();
    while let Some(row) = names.step()? {
        tables.push(row[0].as_str().unwrap_or_default().to_owned());
    }
    if let Some(wanted) = p["table"].as_str() {
        if !tables.iter().any(|t| t == wanted) {
            return Err(PluginError::new(
                "resource_not_found",
                format!("no table {wanted}"),
            ));
        }
        tables = vec![wanted.to_owned()];
    }
    let mut described = Vec::new();
    for table in tables {
        let info = Statement::new(
            db,
            "SELECT name, type, \"notnull\", pk FROM pragma_table_info(?1)",
            &json!([table]),
            "/table",
        )?;
        let mut columns = Vec::new();
        while let Some(c) = info.step()? {
            let (not_null, pk) = (c[2].as_i64() == Some(1), c[3].as_i64().unwrap_or(0) > 0);
            columns.push(json!({"name": c[0], "type": c[1], "nullable": !not_null && !pk, "primary_key": pk}));
        }
        described.push(json!({"name": table, "columns": columns}));
    }
    Ok(json!({"tables": described}))
}

impl Instance for Tenant {
    fn invoke(&self, call: Call) -> Result<Value, PluginError> {
        let p = &call.params;
        let db = self.lock();
        match call.action.as_str() {
            "query" => query(&db, p),
            "execute" => execute(
                &db,
                p["sql"].as_str().unwrap_or_default(),
                &p["params"],
                "/sql",
            ),
            "transaction" => transaction(&db, p),
            "metadata" => metadata(&db, p),
            other => Err(PluginError::new(
                "action_not_found",
                format!("db/__NAME__ has no action {other:?}"),
            )),
        }
    }
}

export_plugin!(Engine);
