//! Step 5, for service-to-service calls: mutual TLS for service-to-service calls.
//!
//! The TLS listener requires a client certificate signed by the configured CA, so a
//! connection without one, or with one from another CA, never completes its handshake. A
//! verified certificate names its tenant in the subject's Organization (O); its serial number
//! is the subject; its scopes come from config, since certificates carry no scopes.

use std::path::PathBuf;

use pingora::listeners::tls::TlsSettings;
use pingora::protocols::tls::SslDigest;
use pingora::tls::error::ErrorStack;
use pingora::tls::ssl::{SslVerifyMode, SslVersion};
use serde::Deserialize;
use switchyard_contracts::{ErrorCode, Problem, Scopes, TenantId};
use switchyard_identity::Identity;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MtlsConfig {
    /// Address of the TLS listener, e.g. `127.0.0.1:8443`.
    pub listen: String,
    /// The server's certificate chain (PEM).
    pub cert_file: PathBuf,
    /// The server's private key (PEM).
    pub key_file: PathBuf,
    /// CA certificates (PEM) that sign acceptable client certificates.
    pub client_ca_file: PathBuf,
    /// Scopes granted to every verified client certificate.
    #[serde(default = "all_scopes")]
    pub scopes: String,
}

fn all_scopes() -> String {
    "*".into()
}

/// Why the mTLS listener cannot be set up; each names the file or setting at fault.
#[derive(Debug, thiserror::Error)]
pub enum MtlsError {
    #[error("{} is not UTF-8", .0.display())]
    NotUtf8(PathBuf),
    #[error("mTLS listener certificate: {0}")]
    Certificate(#[source] Box<pingora::Error>),
    #[error("mTLS listener minimum TLS version: {0}")]
    Protocol(#[source] ErrorStack),
    #[error("client CA {}: {source}", path.display())]
    ClientCa {
        path: PathBuf,
        #[source]
        source: ErrorStack,
    },
}

/// TLS settings for the mTLS listener: TLS 1.2+, client certificate required and verified.
pub fn tls_settings(config: &MtlsConfig) -> Result<TlsSettings, MtlsError> {
    let path = |p: &PathBuf| {
        p.to_str()
            .map(str::to_owned)
            .ok_or_else(|| MtlsError::NotUtf8(p.clone()))
    };
    let mut tls = TlsSettings::intermediate(&path(&config.cert_file)?, &path(&config.key_file)?)
        .map_err(MtlsError::Certificate)?;
    tls.set_min_proto_version(Some(SslVersion::TLS1_2))
        .map_err(MtlsError::Protocol)?;
    tls.set_ca_file(&config.client_ca_file)
        .map_err(|source| MtlsError::ClientCa {
            path: config.client_ca_file.clone(),
            source,
        })?;
    tls.set_verify(SslVerifyMode::PEER | SslVerifyMode::FAIL_IF_NO_PEER_CERT);
    Ok(tls)
}

/// The identity a verified client certificate stands for.
pub fn identity(digest: &SslDigest, scopes: &Scopes) -> Result<Identity, Problem> {
    let refuse = |why: &str| {
        Problem::new(
            ErrorCode::Unauthenticated,
            format!("client certificate: {why}"),
        )
    };
    let organization = digest
        .organization
        .as_deref()
        .ok_or_else(|| refuse("no Organization (O) naming the tenant"))?;
    let tenant = TenantId::parse(organization)
        .map_err(|_| refuse("its Organization (O) is not a tenant id"))?;
    let serial = digest
        .serial_number
        .as_deref()
        .ok_or_else(|| refuse("no serial number"))?;
    Ok(Identity {
        tenant,
        subject: format!("cert:{serial}"),
        scopes: scopes.clone(),
        roles: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(organization: Option<&str>, serial: Option<&str>) -> SslDigest {
        SslDigest::new(
            "TLS_AES_128_GCM_SHA256",
            "TLSv1.3",
            organization.map(Into::into),
            serial.map(Into::into),
            vec![],
        )
    }

    #[test]
    fn the_organization_names_the_tenant_and_the_serial_the_subject() {
        let scopes = Scopes::parse("invoke").unwrap();
        let id = identity(&digest(Some("acme"), Some("0A1B")), &scopes).unwrap();
        assert_eq!(
            (id.tenant.as_str(), id.subject.as_str()),
            ("acme", "cert:0A1B")
        );
        for (org, serial) in [
            (None, Some("1")),
            (Some("Not A Tenant"), Some("1")),
            (Some("acme"), None),
        ] {
            assert_eq!(
                identity(&digest(org, serial), &scopes).unwrap_err().code,
                ErrorCode::Unauthenticated
            );
        }
    }
}
