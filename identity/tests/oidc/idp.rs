//! A local identity provider for the OIDC tests: real RSA, EC and Ed25519 keys, and a JWKS
//! endpoint on 127.0.0.1:0 whose document a test can swap and whose fetches it counts, so
//! caching and rate limiting are observed from the IdP's side. Shared with the gateway's
//! authentication test (`gateway/tests/oidc.rs`), which includes this file.

use std::convert::Infallible;
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use jsonwebtoken::{Algorithm, EncodingKey, Header, get_current_timestamp};
use openssl::bn::{BigNum, BigNumContext};
use openssl::ec::{EcGroup, EcKey};
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use serde_json::{Value, json};
use switchyard_identity::oidc::{OidcConfig, OidcVerifier};
use switchyard_spi::tenancy::EgressCeiling;
use tokio::net::TcpListener;

pub const ISSUER: &str = "https://idp.example.test";
pub const AUDIENCE: &str = "switchyard";

/// The operator's egress ceiling in these tests: loopback, where the test IdPs listen.
pub fn loopback() -> EgressCeiling {
    EgressCeiling {
        allowed_networks: vec!["127.0.0.0/8".parse().unwrap()],
        allowed_ports: Vec::new(),
    }
}

pub fn b64url(bytes: &[u8]) -> String {
    openssl::base64::encode_block(bytes)
        .trim_end_matches('=')
        .replace('+', "-")
        .replace('/', "_")
}

/// A private key with what a token and a JWKS need to know about it.
pub struct SigningKey {
    pub kid: String,
    pub alg: Algorithm,
    pub pkcs8_pem: Vec<u8>,
    pub jwk: Value,
}

impl SigningKey {
    pub fn rsa(kid: &str, key: &PKey<Private>) -> Self {
        let rsa = key.rsa().unwrap();
        SigningKey {
            kid: kid.to_owned(),
            alg: Algorithm::RS256,
            pkcs8_pem: key.private_key_to_pem_pkcs8().unwrap(),
            jwk: json!({
                "kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
                "n": b64url(&rsa.n().to_vec()), "e": b64url(&rsa.e().to_vec()),
            }),
        }
    }

    pub fn ec(kid: &str) -> Self {
        let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
        let ec = EcKey::generate(&group).unwrap();
        let (mut x, mut y) = (BigNum::new().unwrap(), BigNum::new().unwrap());
        let mut ctx = BigNumContext::new().unwrap();
        ec.public_key()
            .affine_coordinates(&group, &mut x, &mut y, &mut ctx)
            .unwrap();
        let key = PKey::from_ec_key(ec).unwrap();
        SigningKey {
            kid: kid.to_owned(),
            alg: Algorithm::ES256,
            pkcs8_pem: key.private_key_to_pem_pkcs8().unwrap(),
            jwk: json!({
                "kty": "EC", "kid": kid, "crv": "P-256",
                "x": b64url(&x.to_vec_padded(32).unwrap()),
                "y": b64url(&y.to_vec_padded(32).unwrap()),
            }),
        }
    }

    pub fn ed25519(kid: &str) -> Self {
        let key = PKey::generate_ed25519().unwrap();
        SigningKey {
            kid: kid.to_owned(),
            alg: Algorithm::EdDSA,
            pkcs8_pem: key.private_key_to_pem_pkcs8().unwrap(),
            jwk: json!({
                "kty": "OKP", "kid": kid, "crv": "Ed25519",
                "x": b64url(&key.raw_public_key().unwrap()),
            }),
        }
    }

    pub fn sign(&self, claims: &Value) -> String {
        self.sign_as(self.alg, claims)
    }

    /// Signs with this key but writes `alg` into the header, for algorithm-mismatch tests.
    pub fn sign_as(&self, alg: Algorithm, claims: &Value) -> String {
        let mut header = Header::new(alg);
        header.kid = Some(self.kid.clone());
        let key = match self.alg {
            Algorithm::RS256 => EncodingKey::from_rsa_pem(&self.pkcs8_pem),
            Algorithm::ES256 => EncodingKey::from_ec_pem(&self.pkcs8_pem),
            _ => EncodingKey::from_ed_pem(&self.pkcs8_pem),
        }
        .unwrap();
        jsonwebtoken::encode(&header, claims, &key).unwrap()
    }
}

/// RSA key generation is the slow part; one key serves the whole test binary.
pub static RSA_KEY: LazyLock<PKey<Private>> =
    LazyLock::new(|| PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap());

pub struct Keys {
    pub rsa: SigningKey,
    pub ec: SigningKey,
    pub ed: SigningKey,
}

impl Keys {
    pub fn new() -> Self {
        Keys {
            rsa: SigningKey::rsa("rsa-1", &RSA_KEY),
            ec: SigningKey::ec("ec-1"),
            ed: SigningKey::ed25519("ed-1"),
        }
    }

    pub fn jwks(&self) -> Value {
        jwks(&[&self.rsa, &self.ec, &self.ed])
    }
}

pub fn jwks(keys: &[&SigningKey]) -> Value {
    json!({ "keys": keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>() })
}

/// A JWKS endpoint whose answer the test controls and whose fetches it counts.
pub struct Idp {
    pub url: String,
    pub body: Arc<Mutex<String>>,
    pub status: Arc<AtomicU16>,
    pub fetches: Arc<AtomicUsize>,
}

impl Idp {
    pub async fn start(document: &Value) -> Self {
        Self::start_with_delay(document, Duration::ZERO).await
    }

    pub async fn start_with_delay(document: &Value, delay: Duration) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/jwks", listener.local_addr().unwrap());
        let body = Arc::new(Mutex::new(document.to_string()));
        let status = Arc::new(AtomicU16::new(200));
        let fetches = Arc::new(AtomicUsize::new(0));
        let (served_body, served_status, counted) =
            (Arc::clone(&body), Arc::clone(&status), Arc::clone(&fetches));
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (body, status, fetches) = (
                    Arc::clone(&served_body),
                    Arc::clone(&served_status),
                    Arc::clone(&counted),
                );
                let service = service_fn(move |_request: Request<Incoming>| {
                    let (body, status, fetches) =
                        (Arc::clone(&body), Arc::clone(&status), Arc::clone(&fetches));
                    async move {
                        fetches.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(delay).await;
                        let text = body.lock().unwrap().clone();
                        let response = Response::builder()
                            .status(status.load(Ordering::SeqCst))
                            .header("content-type", "application/json")
                            .body(Full::new(Bytes::from(text)))
                            .unwrap();
                        Ok::<_, Infallible>(response)
                    }
                });
                tokio::spawn(async move {
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Idp {
            url,
            body,
            status,
            fetches,
        }
    }

    pub fn publish(&self, document: &Value) {
        *self.body.lock().unwrap() = document.to_string();
    }

    pub fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }

    pub fn verifier(&self) -> OidcVerifier {
        self.verifier_with(json!({}))
    }

    /// A verifier for this IdP; `overrides` replaces or adds config fields.
    pub fn verifier_with(&self, overrides: Value) -> OidcVerifier {
        let mut config = json!({ "issuer": ISSUER, "audience": AUDIENCE, "jwks_url": self.url });
        config
            .as_object_mut()
            .unwrap()
            .extend(overrides.as_object().unwrap().clone());
        OidcVerifier::new(
            serde_json::from_value::<OidcConfig>(config).unwrap(),
            &loopback(),
        )
        .unwrap()
    }
}

pub fn claims() -> Value {
    let now = get_current_timestamp();
    json!({
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "alice",
        "tenant": "acme",
        "scope": "read invoke:db",
        "roles": ["admin", "auditor"],
        "iat": now,
        "exp": now + 300,
    })
}

pub fn claims_with(changes: Value) -> Value {
    let mut claims = claims();
    for (name, value) in changes.as_object().unwrap() {
        if value.is_null() {
            claims.as_object_mut().unwrap().remove(name);
        } else {
            claims[name] = value.clone();
        }
    }
    claims
}
