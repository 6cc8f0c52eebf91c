//! A database-name prefix of its own for one test, for the engines that give every tenant a
//! database and an account on one shared server (db/mysql, db/mssql): what the engine created
//! under the prefix is dropped with it, by the engine's `cleanup`. A test crate declares it
//! once, as `mod prefix`, beside the engines' support modules that use it.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Drops the tenant databases and accounts under a prefix.
pub type Cleanup = fn(String) -> Pin<Box<dyn Future<Output = Result<(), BoxError>>>>;

pub struct TestPrefix {
    pub prefix: String,
    cleanup: Cleanup,
}

impl TestPrefix {
    /// A prefix no other test or process uses: `sy_<purpose>_<pid>_<n>_<nanos>_`.
    pub fn new(purpose: &str, cleanup: Cleanup) -> TestPrefix {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock after 1970")
            .subsec_nanos();
        TestPrefix {
            prefix: format!(
                "sy_{purpose}_{}_{}_{nanos}_",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::SeqCst)
            ),
            cleanup,
        }
    }
}

impl Drop for TestPrefix {
    /// Drops on a thread of its own: `Drop` cannot await, and the test's runtime may be the
    /// one running this.
    fn drop(&mut self) {
        let (prefix, cleanup) = (self.prefix.clone(), self.cleanup);
        let dropped = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?
                .block_on(cleanup(prefix))
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!(
                "could not drop test databases {}*: {dropped:?}",
                self.prefix
            );
        }
    }
}
