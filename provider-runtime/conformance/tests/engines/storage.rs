//! The storage engines: fs in a temp dir of its own per subject (the fixture knows where it
//! keeps a tenant's files, for the checks that plant links there), and s3 on a fresh bucket of
//! the test S3 server per subject, so no check sees another's objects; its +stable check gets an
//! s3s-fs server of its own to restart.

mod s3;

use std::sync::Arc;

use switchyard_conformance::Subject;
use switchyard_conformance::storage::Fixture;
use switchyard_provider_storage::{FsFactory, MemoryStorageFactory, S3Factory, S3Settings};
use switchyard_spi::ProviderFactory;

use crate::Enrolled;
use crate::private::restart_on_a_thread;

pub fn enrolled() -> Vec<Enrolled> {
    vec![
        Enrolled::new("storage/fs", || async {
            let dir = tempfile::tempdir().expect("temp dir");
            let root = dir.path().join("storage");
            let objects = root.clone();
            let fs = move || -> Arc<dyn ProviderFactory> { Arc::new(FsFactory::new(root.clone())) };
            Subject::new(fs())
                .with_reopen(fs)
                .with_fixture(Fixture {
                    local_objects: Some(Arc::new(move |tenant| {
                        objects.join(tenant).join("objects")
                    })),
                })
                .providing("local_objects")
                .keeping(dir)
        }),
        // The bucket stays on the server; the server's data directory goes with the server.
        Enrolled::new("storage/s3", || async {
            let settings = s3::TestBucket::create().settings();
            let s3 = move || -> Arc<dyn ProviderFactory> { s3_factory(&settings) };
            Subject::new(s3()).with_reopen(s3)
        })
        .with_stable(|| async {
            let server = Arc::new(s3::PrivateS3::start());
            let settings = server.bucket().settings();
            Subject::new(s3_factory(&settings))
                .with_backing_restart({
                    let server = server.clone();
                    move || restart_on_a_thread(server.clone(), |s| s.server.restart())
                })
                .keeping(server)
        }),
        Enrolled::new("storage/memory", || async {
            Subject::new(Arc::new(MemoryStorageFactory::new(1 << 20)))
        }),
    ]
}

fn s3_factory(settings: &S3Settings) -> Arc<dyn ProviderFactory> {
    Arc::new(S3Factory::new(settings.clone()).expect("an HTTP client for S3"))
}
