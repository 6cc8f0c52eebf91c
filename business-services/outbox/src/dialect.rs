//! The few SQL differences between the db engines the outbox and inbox tables live in. Each
//! engine takes its own SQL through the db contract, so the text must be the engine's own.

use switchyard_contracts::{ErrorCode, Problem};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
    Mysql,
}

impl Dialect {
    /// The dialect of a db provider id such as `db/postgres`.
    pub fn of(db: &str) -> Result<Self, Problem> {
        match db {
            "db/sqlite" => Ok(Dialect::Sqlite),
            "db/postgres" => Ok(Dialect::Postgres),
            "db/mysql" => Ok(Dialect::Mysql),
            other => Err(Problem::new(
                ErrorCode::RequestInvalid,
                format!(
                    "the outbox has no SQL dialect for {other:?}; it runs on db/sqlite, db/postgres and db/mysql"
                ),
            )),
        }
    }

    /// The `n`th (1-based) positional parameter.
    pub fn param(self, n: usize) -> String {
        match self {
            Dialect::Sqlite => format!("?{n}"),
            Dialect::Postgres => format!("${n}"),
            Dialect::Mysql => "?".into(),
        }
    }

    /// `count` parameters from `first` on, comma-separated.
    pub fn params(self, first: usize, count: usize) -> String {
        (first..first + count)
            .map(|n| self.param(n))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// An integer primary key the database numbers in insertion order.
    pub fn auto_key(self) -> &'static str {
        match self {
            Dialect::Sqlite => "INTEGER PRIMARY KEY",
            Dialect::Postgres => "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
            Dialect::Mysql => "BIGINT AUTO_INCREMENT PRIMARY KEY",
        }
    }

    /// What a `SELECT` of constants needs before its `WHERE`: MySQL has no `SELECT … WHERE`
    /// without a table.
    pub fn no_table(self) -> &'static str {
        match self {
            Dialect::Mysql => " FROM DUAL",
            Dialect::Sqlite | Dialect::Postgres => "",
        }
    }

    /// A column type for long text (payloads, header maps).
    pub fn long_text(self) -> &'static str {
        match self {
            Dialect::Mysql => "LONGTEXT",
            Dialect::Sqlite | Dialect::Postgres => "TEXT",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_follow_the_engine() {
        assert_eq!(Dialect::Sqlite.params(2, 3), "?2, ?3, ?4");
        assert_eq!(Dialect::Postgres.params(1, 2), "$1, $2");
        assert_eq!(Dialect::Mysql.params(5, 2), "?, ?");
    }

    #[test]
    fn unknown_engines_are_refused_by_name() {
        let problem = Dialect::of("db/oracle").unwrap_err();
        assert_eq!(problem.code, ErrorCode::RequestInvalid);
        assert!(problem.detail.contains("db/oracle"));
    }
}
