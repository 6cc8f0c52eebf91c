//! The S3-compatible server the suite runs `storage/s3` against, and a fresh bucket on it for
//! every test; for the +stable check, an s3s-fs server of the subject's own to restart.
//!
//! `scripts/test` starts s3s-fs and exports `SWITCHYARD_TEST_S3_URL`,
//! `SWITCHYARD_TEST_S3_ACCESS_KEY` and `SWITCHYARD_TEST_S3_SECRET_KEY`; without them every
//! test of the suite fails with a message rather than silently passing without the engine.

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use switchyard_provider_storage::S3Settings;
use tempfile::TempDir;

use crate::private::{Private, S3S_ACCESS_KEY, S3S_SECRET_KEY, s3s_fs};

const URL_VARIABLE: &str = "SWITCHYARD_TEST_S3_URL";
const ACCESS_KEY_VARIABLE: &str = "SWITCHYARD_TEST_S3_ACCESS_KEY";
const SECRET_KEY_VARIABLE: &str = "SWITCHYARD_TEST_S3_SECRET_KEY";

/// The region the suite signs for; s3s-fs accepts any.
const REGION: &str = "us-east-1";

fn variable(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: run scripts/test (it starts an s3s-fs server and sets \
             {URL_VARIABLE}, {ACCESS_KEY_VARIABLE} and {SECRET_KEY_VARIABLE}), or point them at \
             an S3-compatible server whose credentials may create buckets"
        )
    })
}

/// A bucket created for one engine of one test. Buckets are left behind: the test server's
/// data directory is thrown away with the server.
pub struct TestBucket {
    url: String,
    name: String,
    access_key: String,
    secret_key: String,
}

impl TestBucket {
    /// Creates a bucket with a name no other test (or test process) uses, through the S3 API
    /// (CreateBucket, signed by curl's own SigV4 implementation).
    pub fn create() -> TestBucket {
        Self::create_on(
            &variable(URL_VARIABLE),
            variable(ACCESS_KEY_VARIABLE),
            variable(SECRET_KEY_VARIABLE),
        )
    }

    /// [`TestBucket::create`] on the server at `url`, with these credentials.
    pub fn create_on(url: &str, access_key: String, secret_key: String) -> TestBucket {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let url = url.trim_end_matches('/').to_owned();
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock after 1970")
            .subsec_nanos();
        let name = format!(
            "sy-{}-{}-{nanos}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        );
        let bucket = TestBucket {
            url,
            name,
            access_key,
            secret_key,
        };
        let (status, body) = bucket.signed_curl("PUT", &format!("{}/{}", bucket.url, bucket.name));
        assert_eq!(
            status, 200,
            "CreateBucket {} on {}: HTTP {status}: {body}",
            bucket.name, bucket.url
        );
        bucket
    }

    /// The engine's settings for this bucket, with the suite's credentials.
    pub fn settings(&self) -> S3Settings {
        S3Settings::new(&self.url, &self.name, &self.access_key, &self.secret_key)
            .with_region(REGION)
    }

    /// Sends one SigV4-signed request with curl and answers (status, body). The credentials go
    /// through curl's config on stdin, not its command line, so `ps` never shows them.
    fn signed_curl(&self, method: &str, url: &str) -> (u16, String) {
        let mut curl = Command::new("curl")
            .args(["--silent", "--show-error", "--config", "-"])
            .args(["--aws-sigv4", &format!("aws:amz:{REGION}:s3")])
            // s3s-fs requires the payload hash header, which curl only signs when given.
            .args(["--header", "x-amz-content-sha256: UNSIGNED-PAYLOAD"])
            .args(["--request", method, "--write-out", "\n%{http_code}", url])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("curl runs (scripts/deps.sh installs it)");
        let config = format!("user = \"{}:{}\"\n", self.access_key, self.secret_key);
        curl.stdin
            .take()
            .expect("stdin is piped")
            .write_all(config.as_bytes())
            .expect("write curl's config");
        let output = curl.wait_with_output().expect("curl finishes");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let (body, status) = stdout.rsplit_once('\n').unwrap_or(("", &stdout));
        let status = status.trim().parse().unwrap_or_else(|_| {
            panic!(
                "curl {method} {url}: {}",
                String::from_utf8_lossy(&output.stderr)
            )
        });
        (status, body.to_owned())
    }
}

/// An s3s-fs server of one subject's own, over a temp dir, which the +stable check restarts
/// (the shared test server cannot be).
pub struct PrivateS3 {
    pub server: Private,
    _dir: TempDir,
}

impl PrivateS3 {
    pub fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().to_owned();
        let server = Private::start("s3s-fs", move |port| s3s_fs(port, &path));
        PrivateS3 { server, _dir: dir }
    }

    /// A fresh bucket on this server.
    pub fn bucket(&self) -> TestBucket {
        TestBucket::create_on(
            &format!("http://127.0.0.1:{}", self.server.port()),
            S3S_ACCESS_KEY.into(),
            S3S_SECRET_KEY.into(),
        )
    }
}
