//! A local identity provider: a fresh P-256 signing key and a JWKS endpoint on 127.0.0.1,
//! served for as long as the test's runtime lives.

use std::convert::Infallible;
use std::time::{SystemTime, UNIX_EPOCH};

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Response, header};
use hyper_util::rt::TokioIo;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use openssl::bn::{BigNum, BigNumContext};
use openssl::ec::{EcGroup, EcKey};
use openssl::nid::Nid;
use openssl::pkey::PKey;
use serde_json::{Value, json};
use tokio::net::TcpListener;

pub struct Idp {
    pub issuer: String,
    pub audience: &'static str,
    pub jwks_url: String,
    kid: &'static str,
    key: EncodingKey,
}

impl Idp {
    /// Starts an identity provider whose tokens carry `iss: issuer` and `aud: "erp"`.
    pub async fn start(issuer: &str) -> Idp {
        let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).expect("P-256");
        let ec = EcKey::generate(&group).expect("key generation");
        let (mut x, mut y) = (BigNum::new().expect("bn"), BigNum::new().expect("bn"));
        let mut ctx = BigNumContext::new().expect("bn context");
        ec.public_key()
            .affine_coordinates(&group, &mut x, &mut y, &mut ctx)
            .expect("public point");
        let kid = "conformance-1";
        let jwks = json!({"keys": [{
            "kty": "EC", "crv": "P-256", "kid": kid, "use": "sig", "alg": "ES256",
            "x": b64url(&x.to_vec_padded(32).expect("x")),
            "y": b64url(&y.to_vec_padded(32).expect("y")),
        }]});
        let pem = PKey::from_ec_key(ec)
            .and_then(|key| key.private_key_to_pem_pkcs8())
            .expect("pkcs8");
        let key = EncodingKey::from_ec_pem(&pem).expect("encoding key");

        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let body = Bytes::from(jwks.to_string());
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let body = body.clone();
                let service = service_fn(move |_request| {
                    let response = Response::builder()
                        .header(header::CONTENT_TYPE, "application/json")
                        .body(Full::new(body.clone()));
                    async move { Ok::<_, Infallible>(response.expect("static response")) }
                });
                tokio::spawn(async move {
                    // A client hanging up mid-request is not the test's concern.
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Idp {
            issuer: issuer.to_owned(),
            audience: "erp",
            jwks_url: format!("http://{addr}/jwks"),
            kid,
            key,
        }
    }

    /// A token of `tenant` for Ann, a clerk with the `read` scope, valid for ten minutes;
    /// `changes` replace or add claims.
    pub fn token(&self, tenant: &str, changes: Value) -> String {
        let now = now();
        let mut claims = json!({
            "iss": self.issuer, "aud": self.audience, "sub": "ann", "tenant": tenant,
            "scope": "read", "roles": ["clerk"], "iat": now, "exp": now + 600,
        });
        if let (Some(claims), Some(changes)) = (claims.as_object_mut(), changes.as_object()) {
            claims.extend(changes.clone());
        }
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.kid.to_owned());
        jsonwebtoken::encode(&header, &claims, &self.key).expect("signing")
    }
}

pub fn now() -> i64 {
    let elapsed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970");
    i64::try_from(elapsed.as_secs()).expect("seconds fit i64")
}

pub fn b64url(bytes: &[u8]) -> String {
    openssl::base64::encode_block(bytes)
        .trim_end_matches('=')
        .replace('+', "-")
        .replace('/', "_")
}

/// The same token with its claims rewritten and its signature kept, as an attacker would try.
pub fn tampered(token: &str, changes: Value) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    let [header, payload, signature] = parts[..] else {
        panic!("a compact JWS has three parts");
    };
    let padded = format!("{payload}{}", "=".repeat((4 - payload.len() % 4) % 4));
    let standard = padded.replace('-', "+").replace('_', "/");
    let bytes = openssl::base64::decode_block(&standard).expect("payload is base64url");
    let mut claims: Value = serde_json::from_slice(&bytes).expect("payload is JSON");
    if let (Some(claims), Some(changes)) = (claims.as_object_mut(), changes.as_object()) {
        claims.extend(changes.clone());
    }
    let forged = b64url(claims.to_string().as_bytes());
    format!("{header}.{forged}.{signature}")
}
