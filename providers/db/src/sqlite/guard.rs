//! Connection hardening: what keeps a tenant's SQL inside its own database file and within
//! the operator's quotas, and the few raw SQLite calls sqlx does not offer. All `unsafe` of the
//! engine is in this file.
//!
//! Every pooled connection is limited ([`harden`]): strings, blobs and rows to the operator's
//! `sqlite_max_length_bytes` (`SQLITE_LIMIT_LENGTH`), so `randomblob(999999999)` fails with
//! `SQLITE_TOOBIG` before it allocates; and every call runs under a deadline ([`Call`]): a
//! progress handler ends the running statement with `SQLITE_INTERRUPT` once the call's
//! statement timeout has passed, and a call abandoned before it finishes (the runtime's call
//! timeout, a client gone) interrupts its connection. sqlx runs each connection's statements
//! on a worker thread that would otherwise go on running them to their end, however long, after
//! the caller stopped waiting. The process-wide heap limit ([`limit_heap`]) is the backstop.
//!
//! Every pooled connection gets an authorizer ([`harden`]) that SQLite consults
//! while compiling each statement, so a refusal does not depend on parsing SQL text ourselves:
//! - `ATTACH` / `DETACH` are refused, which is what would let a tenant open another file
//!   (another tenant's database among them). `VACUUM` attaches its target (and begins a
//!   transaction) internally, so `VACUUM INTO 'file'` is refused, and plain `VACUUM` with it:
//!   compacting a tenant's file is an operator task.
//! - `load_extension()` is refused (extension loading is also off at the C level; this keeps
//!   it off even if a future sqlx default changed).
//! - Only introspection pragmas are allowed ([`ALLOWED_PRAGMAS`]); a tenant cannot switch the
//!   journal mode, writable_schema, foreign keys and the like.
//! - Transaction control (`BEGIN`, `COMMIT`, `ROLLBACK`, `SAVEPOINT`, `RELEASE`) is refused:
//!   a `COMMIT` inside a `transaction` batch would break its atomicity, and a `BEGIN` through
//!   `query` would leave a pooled connection inside a stale snapshot. The engine opens its own
//!   transactions with a savepoint whose name is random per process ([`savepoint_name`]), the
//!   only savepoint the authorizer lets through.

use std::ffi::{CStr, c_char, c_int, c_void};
use std::hash::{BuildHasher, RandomState};
use std::ops::{Deref, DerefMut};
use std::ptr::{self, NonNull};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use libsqlite3_sys::{
    SQLITE_ATTACH, SQLITE_DENY, SQLITE_DETACH, SQLITE_FUNCTION, SQLITE_LIMIT_LENGTH, SQLITE_OK,
    SQLITE_PRAGMA, SQLITE_SAVEPOINT, SQLITE_TRANSACTION, sqlite3, sqlite3_get_autocommit,
    sqlite3_hard_heap_limit64, sqlite3_interrupt, sqlite3_limit, sqlite3_progress_handler,
    sqlite3_set_authorizer, sqlite3_set_last_insert_rowid,
};
use sqlx::pool::PoolConnection;
use sqlx::{Sqlite, SqliteConnection};

use crate::limits;

/// How many virtual machine instructions SQLite runs between two looks at the deadline: a few
/// microseconds of work, so a runaway statement stops within milliseconds of its deadline at
/// no measurable cost to ordinary ones.
const CHECK_EVERY_OPS: c_int = 1000;

/// Pragmas that only read schema information; `metadata` needs `table_list` and `table_info`.
const ALLOWED_PRAGMAS: [&str; 7] = [
    "table_info",
    "table_xinfo",
    "table_list",
    "index_list",
    "index_info",
    "index_xinfo",
    "foreign_key_list",
];

/// The name of the savepoint the engine wraps a `transaction` batch in. Random per process so
/// tenant SQL cannot name it and release (commit) the batch half-way.
pub(crate) fn savepoint_name() -> &'static str {
    static NAME: OnceLock<String> = OnceLock::new();
    NAME.get_or_init(|| {
        let random = RandomState::new().hash_one(std::process::id());
        format!("switchyard_tx_{random:016x}")
    })
}

/// Installs the authorizer and the length limit on a freshly opened connection (pool
/// `after_connect`).
pub(crate) async fn harden(conn: &mut SqliteConnection) -> Result<(), sqlx::Error> {
    // Computed before taking the handle so the callback never initialises it under SQLite.
    savepoint_name();
    let max_length = limits::sizes().sqlite_max_length_bytes.get();
    let mut handle = conn.lock_handle().await?;
    let db = handle.as_raw_handle().as_ptr();
    // SAFETY: `db` is an open connection that no other thread uses while `handle` is locked;
    // `authorize` is a plain function valid for the program's lifetime and reads no user data,
    // so passing a null user-data pointer is sound.
    let rc = unsafe { sqlite3_set_authorizer(db, Some(authorize), ptr::null_mut()) };
    if rc != SQLITE_OK {
        return Err(sqlx::Error::Configuration(
            format!("sqlite3_set_authorizer failed with code {rc}").into(),
        ));
    }
    // SAFETY: as above; sqlite3_limit only sets a field of the connection (SQLite clamps the
    // value to its compile-time maximum).
    unsafe {
        sqlite3_limit(
            db,
            SQLITE_LIMIT_LENGTH,
            c_int::try_from(max_length).unwrap_or(c_int::MAX),
        )
    };
    Ok(())
}

/// Caps the heap every SQLite connection of the process may use together. Past it an
/// allocation fails and the statement ends with `SQLITE_NOMEM`; the process keeps running.
pub(crate) fn limit_heap(bytes: u64) {
    // SAFETY: sqlite3_hard_heap_limit64 takes SQLite's memory mutex itself and may be called
    // from any thread at any time.
    unsafe { sqlite3_hard_heap_limit64(i64::try_from(bytes).unwrap_or(i64::MAX)) };
}

/// Milliseconds on a process-wide monotonic clock. Deadlines are kept in this unit so that one
/// fits in the progress handler's user-data pointer, which then points at nothing and needs no
/// memory kept alive for SQLite.
fn clock_ms() -> usize {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    let elapsed = EPOCH.get_or_init(Instant::now).elapsed().as_millis();
    usize::try_from(elapsed).unwrap_or(usize::MAX)
}

/// SQLite's progress handler: non-zero ends the running statement with `SQLITE_INTERRUPT`.
/// The user data is the deadline itself (see [`clock_ms`]), not a pointer to it.
unsafe extern "C" fn past_deadline(deadline: *mut c_void) -> c_int {
    c_int::from(clock_ms() > deadline.addr())
}

/// One call's hold on a pooled connection: while it lasts, the connection's statements run
/// under the call's deadline, and dropping it before [`Call::finish`] (the call's future
/// abandoned mid-statement) interrupts the statement still running on sqlx's worker thread.
pub(crate) struct Call {
    // Declared first so it drops first: the connection it interrupts is still open then.
    watch: Watch,
    conn: PoolConnection<Sqlite>,
}

impl Call {
    /// Arms `conn` with a deadline `timeout` from now.
    pub async fn begin(
        mut conn: PoolConnection<Sqlite>,
        timeout: Duration,
    ) -> Result<Call, sqlx::Error> {
        let millis = usize::try_from(timeout.as_millis()).unwrap_or(usize::MAX);
        let deadline = clock_ms().saturating_add(millis);
        let db = set_deadline(&mut conn, deadline).await?;
        Ok(Call {
            watch: Watch {
                db: RawConnection(db),
                finished: false,
            },
            conn,
        })
    }

    /// Lifts the deadline, for the clean-up a call does after its statements failed (a
    /// rollback must run even when the deadline is what failed them).
    pub async fn lift_deadline(&mut self) -> Result<(), sqlx::Error> {
        set_deadline(&mut self.conn, usize::MAX).await.map(drop)
    }

    /// The call ended by itself: nothing to interrupt when it is dropped.
    pub fn finish(&mut self) {
        self.watch.finished = true;
    }
}

impl Deref for Call {
    type Target = SqliteConnection;

    fn deref(&self) -> &SqliteConnection {
        &self.conn
    }
}

impl DerefMut for Call {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        &mut self.conn
    }
}

/// Installs the progress handler with `deadline` (in [`clock_ms`] units) and returns the raw
/// connection, for [`Watch`].
async fn set_deadline(
    conn: &mut SqliteConnection,
    deadline: usize,
) -> Result<NonNull<sqlite3>, sqlx::Error> {
    let mut handle = conn.lock_handle().await?;
    let db = handle.as_raw_handle();
    // SAFETY: `db` is open and exclusively ours while `handle` is locked; `past_deadline` is a
    // plain function valid for the program's lifetime, and its user data is a number it never
    // dereferences.
    unsafe {
        sqlite3_progress_handler(
            db.as_ptr(),
            CHECK_EVERY_OPS,
            Some(past_deadline),
            ptr::without_provenance_mut(deadline),
        )
    };
    Ok(db)
}

/// Interrupts its connection when dropped unfinished; only ever part of a [`Call`].
struct Watch {
    db: RawConnection,
    finished: bool,
}

impl Drop for Watch {
    fn drop(&mut self) {
        if !self.finished {
            // SAFETY: the connection is open: a `Watch` lives in a `Call`, which drops it
            // before the connection. sqlite3_interrupt is documented as safe to call from
            // any thread while another runs a statement on the connection; when none runs,
            // it is cleared as the next statement starts.
            unsafe { sqlite3_interrupt(self.db.0.as_ptr()) };
        }
    }
}

/// A connection handle that moves between threads with its [`Call`].
struct RawConnection(NonNull<sqlite3>);

// SAFETY: the handle is only used for sqlite3_interrupt, which SQLite allows from any thread.
unsafe impl Send for RawConnection {}
// SAFETY: as above; nothing reads through the pointer.
unsafe impl Sync for RawConnection {}

/// Whether the connection is inside a transaction (pool `after_release` uses it to discard a
/// connection a cancelled `transaction` call left open, instead of handing it to the next one).
pub(crate) async fn in_transaction(conn: &mut SqliteConnection) -> Result<bool, sqlx::Error> {
    let mut handle = conn.lock_handle().await?;
    let db = handle.as_raw_handle().as_ptr();
    // SAFETY: `db` is open and exclusively ours while `handle` is locked; the call only reads
    // the connection's autocommit flag.
    Ok(unsafe { sqlite3_get_autocommit(db) } == 0)
}

/// Sets the connection's last-insert rowid to 0 before a statement runs, so that afterwards a
/// non-zero value means this statement inserted (SQLite otherwise keeps the previous
/// statement's value, which would report an id for an UPDATE).
pub(crate) async fn forget_last_insert_rowid(
    conn: &mut SqliteConnection,
) -> Result<(), sqlx::Error> {
    let mut handle = conn.lock_handle().await?;
    let db = handle.as_raw_handle().as_ptr();
    // SAFETY: `db` is open and exclusively ours while `handle` is locked; the call only writes
    // the connection's last-insert rowid.
    unsafe { sqlite3_set_last_insert_rowid(db, 0) };
    Ok(())
}

/// The authorizer SQLite calls for every action while compiling a statement.
unsafe extern "C" fn authorize(
    _user_data: *mut c_void,
    action: c_int,
    arg1: *const c_char,
    arg2: *const c_char,
    _database: *const c_char,
    _trigger_or_view: *const c_char,
) -> c_int {
    // SAFETY: SQLite passes either null or a NUL-terminated string that stays valid for the
    // duration of this call; the borrowed `CStr`s do not outlive it.
    let text = |p: *const c_char| (!p.is_null()).then(|| unsafe { CStr::from_ptr(p) }.to_bytes());
    if allows(action, text(arg1), text(arg2)) {
        SQLITE_OK
    } else {
        SQLITE_DENY
    }
}

/// The policy itself, free of FFI so it can be unit-tested.
fn allows(action: c_int, arg1: Option<&[u8]>, arg2: Option<&[u8]>) -> bool {
    match action {
        SQLITE_ATTACH | SQLITE_DETACH | SQLITE_TRANSACTION => false,
        // arg1: BEGIN / RELEASE / ROLLBACK, arg2: the savepoint name.
        SQLITE_SAVEPOINT => arg2.is_some_and(|name| name == savepoint_name().as_bytes()),
        // arg1: the pragma name.
        SQLITE_PRAGMA => arg1.is_some_and(|name| {
            ALLOWED_PRAGMAS
                .iter()
                .any(|allowed| name.eq_ignore_ascii_case(allowed.as_bytes()))
        }),
        // arg2: the function name.
        SQLITE_FUNCTION => !arg2.is_some_and(|name| name.eq_ignore_ascii_case(b"load_extension")),
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use libsqlite3_sys::{SQLITE_INSERT, SQLITE_READ};

    /// An authorizer call: action code, arg1, arg2.
    type Call<'a> = (c_int, Option<&'a [u8]>, Option<&'a [u8]>);

    #[test]
    fn policy_refuses_escapes_and_transaction_control() {
        let refused: [Call; 8] = [
            (SQLITE_ATTACH, Some(b"/data/other.db"), None),
            (SQLITE_ATTACH, Some(b""), None),
            (SQLITE_DETACH, Some(b"o"), None),
            (SQLITE_TRANSACTION, Some(b"COMMIT"), None),
            (SQLITE_SAVEPOINT, Some(b"RELEASE"), Some(b"mine")),
            (SQLITE_PRAGMA, Some(b"journal_mode"), Some(b"delete")),
            (SQLITE_PRAGMA, Some(b"writable_schema"), Some(b"1")),
            (SQLITE_FUNCTION, None, Some(b"LOAD_EXTENSION")),
        ];
        for (action, arg1, arg2) in refused {
            assert!(!allows(action, arg1, arg2), "{action} {arg1:?} {arg2:?}");
        }
    }

    #[test]
    fn policy_allows_ordinary_sql_and_the_engines_own_savepoint() {
        let name = savepoint_name().as_bytes();
        let allowed: [Call; 5] = [
            (SQLITE_READ, Some(b"t"), Some(b"a")),
            (SQLITE_INSERT, Some(b"t"), None),
            (SQLITE_FUNCTION, None, Some(b"lower")),
            (SQLITE_PRAGMA, Some(b"TABLE_INFO"), Some(b"t")),
            (SQLITE_SAVEPOINT, Some(b"BEGIN"), Some(name)),
        ];
        for (action, arg1, arg2) in allowed {
            assert!(allows(action, arg1, arg2), "{action} {arg1:?} {arg2:?}");
        }
    }
}
