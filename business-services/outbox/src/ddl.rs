//! Creating tables that another process may be creating at the same moment.
//!
//! PostgreSQL's `CREATE TABLE IF NOT EXISTS` is not safe against itself: two sessions can both
//! find the name free, and the later one then fails on the catalog's unique index (409
//! `conflict`). A process serialises its own installs; replicas sharing a tenant's database
//! cannot, so an install that lost such a race runs again, and then finds the table.

use std::future::Future;
use std::time::Duration;

use switchyard_contracts::{ErrorCode, Problem};

/// Attempts before the conflict is the caller's: each lost race means another install went
/// through, so a second attempt finds the tables; more only cover several tables at once.
const ATTEMPTS: u32 = 5;

/// Runs `install` again while it fails with `conflict`.
pub async fn create_beside_others<F, Fut>(mut install: F) -> Result<(), Problem>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), Problem>>,
{
    let mut attempt = 1;
    loop {
        match install().await {
            Err(problem) if problem.code == ErrorCode::Conflict && attempt < ATTEMPTS => {
                tokio::time::sleep(Duration::from_millis(20 * u64::from(attempt))).await;
                attempt += 1;
            }
            done => return done,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    #[tokio::test]
    async fn a_lost_race_runs_again_and_other_failures_do_not() {
        let tries = AtomicU32::new(0);
        let raced = create_beside_others(|| async {
            let n = tries.fetch_add(1, Ordering::SeqCst);
            if n < 2 {
                Err(Problem::new(
                    ErrorCode::Conflict,
                    "pg_type_typname_nsp_index",
                ))
            } else {
                Ok(())
            }
        })
        .await;
        assert!(raced.is_ok());
        assert_eq!(tries.load(Ordering::SeqCst), 3);

        let tries = AtomicU32::new(0);
        let refused = create_beside_others(|| async {
            tries.fetch_add(1, Ordering::SeqCst);
            Err(Problem::new(ErrorCode::ParamsInvalid, "bad sql"))
        })
        .await;
        assert_eq!(refused.unwrap_err().code, ErrorCode::ParamsInvalid);
        assert_eq!(tries.load(Ordering::SeqCst), 1);

        let tries = AtomicU32::new(0);
        let endless = create_beside_others(|| async {
            tries.fetch_add(1, Ordering::SeqCst);
            Err(Problem::new(ErrorCode::Conflict, "always"))
        })
        .await;
        assert_eq!(endless.unwrap_err().code, ErrorCode::Conflict);
        assert_eq!(tries.load(Ordering::SeqCst), ATTEMPTS);
    }
}
