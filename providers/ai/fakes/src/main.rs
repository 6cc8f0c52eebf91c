//! `switchyard-ai-fake`: the fake AI upstream as its own process, for the benchmark (which
//! points LiteLLM and Switchyard at the same one) and tests in other languages.
//!
//! ```text
//! switchyard-ai-fake [--listen 127.0.0.1:PORT] [--slow-ms N] [--record-limit N] [--api-key KEY]
//! ```
//!
//! `--listen` defaults to 127.0.0.1:0 (a free port); `--slow-ms` to `FAKE_SLOW_MS`, else 2000.
//! Prints `listening on <addr>` once bound, then serves until killed.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use switchyard_ai_fakes::{FakeAi, FakeAiSettings};

const USAGE: &str = "usage: switchyard-ai-fake [--listen 127.0.0.1:PORT] [--slow-ms N] [--record-limit N] [--api-key KEY]";

#[tokio::main]
async fn main() -> ExitCode {
    let (listen, settings) = match parse(std::env::args().skip(1)) {
        Ok(parsed) => parsed,
        Err(message) => {
            eprintln!("{message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let fake = match FakeAi::bind(listen, settings).await {
        Ok(fake) => fake,
        Err(e) => {
            eprintln!("switchyard-ai-fake: cannot listen on {listen}: {e}");
            return ExitCode::FAILURE;
        }
    };
    // The line a parent process waits for (stdout is flushed at each line by println).
    println!("listening on {}", fake.addr());
    std::future::pending::<()>().await;
    ExitCode::SUCCESS
}

fn parse(mut args: impl Iterator<Item = String>) -> Result<(SocketAddr, FakeAiSettings), String> {
    let mut listen = SocketAddr::from(([127, 0, 0, 1], 0));
    let mut settings = FakeAiSettings::default();
    if let Ok(ms) = std::env::var("FAKE_SLOW_MS") {
        settings.slow_first_token = Duration::from_millis(
            ms.parse()
                .map_err(|_| format!("FAKE_SLOW_MS={ms:?} is not a number of milliseconds"))?,
        );
    }
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let bad = |what: &str| format!("{flag} {value:?} is not {what}");
        match flag.as_str() {
            "--listen" => {
                listen = value
                    .parse()
                    .map_err(|_| bad("an address like 127.0.0.1:8080"))?
            }
            "--slow-ms" => {
                settings.slow_first_token =
                    Duration::from_millis(value.parse().map_err(|_| bad("a number"))?);
            }
            "--record-limit" => {
                settings.record_limit = value.parse().map_err(|_| bad("a number"))?
            }
            "--api-key" => settings.api_key = Some(value),
            _ => return Err(format!("unknown argument {flag}")),
        }
    }
    Ok((listen, settings))
}
