//! Switchyard `db` providers: one module per database engine, each serving the same `db`
//! domain contract (`contracts/schemas/domains/db.json`).
//!
//! Engines live side by side (like Apache OpenDAL's services) so a caller never learns which
//! one answers: `db/sqlite` today, a server engine later, each passing the same conformance
//! suite under `tests/conformance`. An engine adds only its own config schema and
//! capabilities; params, results and error codes are the domain's.

pub mod sqlite;

pub use sqlite::SqliteFactory;
