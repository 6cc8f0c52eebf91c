//! The published document is one a client developer can use as it is: openapi-python-client
//! (PyPI) generates a client from the `/openapi.json` a real `switchyard serve` answers, without
//! a single warning (a warning means an operation or a model left out of the client), and that
//! client drives a short tenant journey: the catalog, a db table written and read, a cache key,
//! a ledger posting read back (`python_client_journey.py`).

use crate::common;

use std::path::Path;
use std::process::{Command, Output};

use common::{Server, tenant_with_key};

const JOURNEY: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/e2e/python_client_journey.py"
);

/// The generator's settings. `application/gzip` (the policy bundle's answer) is bytes to a
/// client: the generator knows only `application/octet-stream` as such, and would otherwise
/// leave that response out with a warning.
const CONFIG: &str = "package_name_override: switchyard_client
content_type_overrides:
  application/gzip: application/octet-stream
";

#[tokio::test(flavor = "multi_thread")]
async fn a_python_client_generated_from_the_served_document_without_warnings_drives_a_tenant_journey()
 {
    let generator = std::env::var("SWITCHYARD_TEST_OPENAPI_PYTHON_CLIENT").expect(
        "SWITCHYARD_TEST_OPENAPI_PYTHON_CLIENT is not set: scripts/test installs \
         openapi-python-client into a venv",
    );
    // The venv's python has the generated client's own dependencies (httpx, attrs), and its
    // bin directory the formatter (ruff) the generator runs on its output.
    let bin = Path::new(&generator).parent().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let key = tenant_with_key(dir.path(), "acme", "*");
    let config = dir.path().join("generator.yaml");
    std::fs::write(&config, CONFIG).unwrap();
    let package = dir.path().join("switchyard_client");

    let generated = run(Command::new(&generator)
        .env("PATH", path_with(bin))
        .args(["generate", "--meta", "none", "--url"])
        .arg(format!("{}/openapi.json", server.base))
        .arg("--output-path")
        .arg(&package)
        .arg("--config")
        .arg(&config));
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&generated.stdout),
        String::from_utf8_lossy(&generated.stderr)
    );
    assert!(
        generated.status.success() && package.join("client.py").is_file(),
        "openapi-python-client failed:\n{said}"
    );
    let warned: Vec<&str> = said
        .lines()
        .filter(|line| {
            let lower = line.to_lowercase();
            lower.contains("warning") || lower.contains("error")
        })
        .collect();
    assert!(
        warned.is_empty(),
        "openapi-python-client warned about the served document:\n{said}"
    );

    let journey = run(Command::new(bin.join("python"))
        .env("SWITCHYARD_URL", &server.base)
        .env("SWITCHYARD_KEY", &key)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .arg(JOURNEY)
        .arg(dir.path()));
    let out = String::from_utf8_lossy(&journey.stdout);
    assert!(
        journey.status.success() && out.lines().last() == Some("journey ok"),
        "the generated client's journey failed:\n{out}\n{}",
        String::from_utf8_lossy(&journey.stderr)
    );
    print!("{out}");
}

fn run(command: &mut Command) -> Output {
    command
        .output()
        .unwrap_or_else(|e| panic!("{command:?} does not run: {e}"))
}

/// `PATH` with `bin` first.
fn path_with(bin: &Path) -> std::ffi::OsString {
    let mut dirs = vec![bin.to_owned()];
    dirs.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    ));
    std::env::join_paths(dirs).unwrap()
}
