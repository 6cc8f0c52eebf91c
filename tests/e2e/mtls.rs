//! Service-to-service calls over mutual TLS: a client certificate signed by the configured CA
//! is an identity (its O names the tenant); anything else never gets an HTTP answer.

use crate::common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;

use common::{Server, free_port, tenant_with_key};
use openssl::asn1::Asn1Time;
use openssl::bn::{BigNum, MsbOption};
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::ssl::{SslConnector, SslFiletype, SslMethod, SslVerifyMode};
use openssl::x509::extension::{BasicConstraints, SubjectAlternativeName};
use openssl::x509::{X509, X509NameBuilder};

struct Issued {
    cert: X509,
    key: PKey<Private>,
}

fn issue(
    common_name: &str,
    organization: Option<&str>,
    issuer: Option<&Issued>,
    ca: bool,
) -> Issued {
    let key = PKey::from_ec_key(
        openssl::ec::EcKey::generate(
            &openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1).unwrap(),
        )
        .unwrap(),
    )
    .unwrap();
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_text("CN", common_name).unwrap();
    if let Some(o) = organization {
        name.append_entry_by_text("O", o).unwrap();
    }
    let name = name.build();
    let mut builder = X509::builder().unwrap();
    builder.set_version(2).unwrap();
    let mut serial = BigNum::new().unwrap();
    serial.rand(64, MsbOption::MAYBE_ZERO, false).unwrap();
    builder
        .set_serial_number(&serial.to_asn1_integer().unwrap())
        .unwrap();
    builder.set_subject_name(&name).unwrap();
    builder
        .set_issuer_name(issuer.map_or(&name, |i| i.cert.subject_name()))
        .unwrap();
    builder.set_pubkey(&key).unwrap();
    builder
        .set_not_before(&Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    builder
        .set_not_after(&Asn1Time::days_from_now(1).unwrap())
        .unwrap();
    if ca {
        builder
            .append_extension(BasicConstraints::new().critical().ca().build().unwrap())
            .unwrap();
    } else {
        let san = SubjectAlternativeName::new()
            .ip("127.0.0.1")
            .dns("localhost")
            .build(&builder.x509v3_context(issuer.map(|i| i.cert.as_ref()), None))
            .unwrap();
        builder.append_extension(san).unwrap();
    }
    builder
        .sign(issuer.map_or(&key, |i| &i.key), MessageDigest::sha256())
        .unwrap();
    Issued {
        cert: builder.build(),
        key,
    }
}

fn write(dir: &Path, name: &str, issued: &Issued) -> (String, String) {
    let cert = dir.join(format!("{name}.crt"));
    let key = dir.join(format!("{name}.key"));
    std::fs::write(&cert, issued.cert.to_pem().unwrap()).unwrap();
    std::fs::write(&key, issued.key.private_key_to_pem_pkcs8().unwrap()).unwrap();
    (
        cert.to_str().unwrap().to_owned(),
        key.to_str().unwrap().to_owned(),
    )
}

/// GET over TLS with an optional client certificate; the status line, or the failure.
fn get(port: u16, path: &str, client: Option<(&str, &str)>) -> Result<String, String> {
    let mut connector = SslConnector::builder(SslMethod::tls()).unwrap();
    connector.set_verify(SslVerifyMode::NONE); // the server's identity is not under test here
    if let Some((cert, key)) = client {
        connector.set_certificate_chain_file(cert).unwrap();
        connector
            .set_private_key_file(key, SslFiletype::PEM)
            .unwrap();
    }
    let stream = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    let mut tls = connector
        .build()
        .connect("localhost", stream)
        .map_err(|e| e.to_string())?;
    write!(
        tls,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut answer = String::new();
    tls.read_to_string(&mut answer).map_err(|e| e.to_string())?;
    answer
        .lines()
        .next()
        .map(str::to_owned)
        .filter(|l| l.starts_with("HTTP/"))
        .ok_or_else(|| "no HTTP answer".to_owned())
}

#[test]
fn only_client_certificates_from_the_configured_ca_get_in() {
    let dir = tempfile::tempdir().unwrap();
    let ca = issue("Switchyard test CA", None, None, true);
    let server_cert = issue("localhost", None, Some(&ca), false);
    let acme_client = issue("billing-service", Some("acme"), Some(&ca), false);
    let rogue_ca = issue("Rogue CA", None, None, true);
    let rogue_client = issue("billing-service", Some("acme"), Some(&rogue_ca), false);
    let (ca_file, _) = write(dir.path(), "ca", &ca);
    let (server_crt, server_key) = write(dir.path(), "server", &server_cert);
    let (acme_crt, acme_key) = write(dir.path(), "acme", &acme_client);
    let (rogue_crt, rogue_key) = write(dir.path(), "rogue", &rogue_client);

    let tls_port = free_port();
    let config = dir.path().join("gateway.toml");
    std::fs::write(
        &config,
        format!(
            "[mtls]\nlisten = \"127.0.0.1:{tls_port}\"\ncert_file = \"{server_crt}\"\nkey_file = \"{server_key}\"\nclient_ca_file = \"{ca_file}\"\nscopes = \"read\"\n"
        ),
    )
    .unwrap();
    let _server = Server::start_with(dir.path(), &["--config", config.to_str().unwrap()]);
    tenant_with_key(dir.path(), "acme", "*");

    let status = get(tls_port, "/providers", Some((&acme_crt, &acme_key))).unwrap();
    assert!(status.contains(" 200 "), "{status}");
    // The certificate's scopes are `read`: reading works, administration does not.
    let status = get(
        tls_port,
        "/providers/db/sqlite/health",
        Some((&acme_crt, &acme_key)),
    )
    .unwrap();
    assert!(status.contains(" 200 "), "{status}");

    let rogue = get(tls_port, "/providers", Some((&rogue_crt, &rogue_key)));
    assert!(
        rogue.is_err(),
        "a certificate from an unknown CA got {rogue:?}"
    );
    let anonymous = get(tls_port, "/providers", None);
    assert!(
        anonymous.is_err(),
        "a client without a certificate got {anonymous:?}"
    );
}
