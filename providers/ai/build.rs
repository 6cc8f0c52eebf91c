//! Tells the tests whether an OpenAI-compatible server was named when they were built: with
//! `SWITCHYARD_TEST_OPENAI_URL` set (and not empty) the tests see `cfg(openai_server)` and run
//! ai/openai against it; without it those tests are reported as ignored with the reason
//! ("skipped: no OpenAI-compatible server"), so a run without a server never looks like a pass.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(openai_server)");
    println!("cargo::rerun-if-env-changed=SWITCHYARD_TEST_OPENAI_URL");
    if std::env::var("SWITCHYARD_TEST_OPENAI_URL").is_ok_and(|url| !url.trim().is_empty()) {
        println!("cargo::rustc-cfg=openai_server");
    }
}
