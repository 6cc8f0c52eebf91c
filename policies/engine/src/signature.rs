//! OPA bundle signatures: `.signatures.json` holds one JWT whose payload lists the SHA-256 of
//! every other file in the bundle. Verification requires an exact match in both directions, so
//! a file added, removed or changed after signing is refused.

use std::collections::BTreeMap;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::archive::{Files, normalize};
use crate::{PolicyError, SignatureError};

/// Name of the signature file inside a bundle.
pub(crate) const SIGNATURES_FILE: &str = ".signatures.json";

const HASH_ALGORITHM: &str = "SHA-256";

/// Key used by [`crate::build_bundle`] to sign a bundle.
pub enum SigningKey {
    /// Shared secret for HS256.
    Hs256(Vec<u8>),
    /// PEM-encoded RSA private key (PKCS#1 or PKCS#8) for RS256.
    Rs256Pem(Vec<u8>),
}

/// Key used by [`crate::Bundle::load`] to verify a bundle's signature.
pub enum VerificationKey {
    /// Shared secret for HS256.
    Hs256(Vec<u8>),
    /// PEM-encoded RSA public key for RS256.
    Rs256Pem(Vec<u8>),
}

#[derive(Serialize, Deserialize)]
struct SignaturesFile {
    signatures: Vec<String>,
}

#[derive(Serialize, Deserialize)]
struct SignedFiles {
    files: Vec<SignedFile>,
}

#[derive(Serialize, Deserialize)]
struct SignedFile {
    name: String,
    hash: String,
    algorithm: String,
}

/// Produces the contents of `.signatures.json` covering every file in `files`.
pub(crate) fn sign(files: &Files, key: &SigningKey) -> Result<Vec<u8>, PolicyError> {
    let (algorithm, encoding_key) = match key {
        SigningKey::Hs256(secret) => (Algorithm::HS256, EncodingKey::from_secret(secret)),
        SigningKey::Rs256Pem(pem) => (
            Algorithm::RS256,
            EncodingKey::from_rsa_pem(pem).map_err(|e| PolicyError::Signing(e.to_string()))?,
        ),
    };
    let claims = SignedFiles {
        files: files
            .iter()
            .map(|(name, contents)| SignedFile {
                name: name.clone(),
                hash: sha256_hex(contents),
                algorithm: HASH_ALGORITHM.into(),
            })
            .collect(),
    };
    let token = jsonwebtoken::encode(&Header::new(algorithm), &claims, &encoding_key)
        .map_err(|e| PolicyError::Signing(e.to_string()))?;
    serde_json::to_vec(&SignaturesFile {
        signatures: vec![token],
    })
    .map_err(|e| PolicyError::Signing(e.to_string()))
}

/// Checks `signatures` (the raw `.signatures.json`, if any) against every file in `files`,
/// which must not include the signature file itself.
pub(crate) fn verify(
    files: &Files,
    signatures: Option<&[u8]>,
    key: &VerificationKey,
) -> Result<(), SignatureError> {
    let signatures = signatures.ok_or(SignatureError::Missing)?;
    let parsed: SignaturesFile =
        serde_json::from_slice(signatures).map_err(|e| SignatureError::Malformed(e.to_string()))?;
    let [token] = parsed.signatures.as_slice() else {
        return Err(SignatureError::Malformed(format!(
            "expected exactly one signature, found {}",
            parsed.signatures.len()
        )));
    };

    let (algorithm, decoding_key) = match key {
        VerificationKey::Hs256(secret) => (Algorithm::HS256, DecodingKey::from_secret(secret)),
        VerificationKey::Rs256Pem(pem) => (
            Algorithm::RS256,
            DecodingKey::from_rsa_pem(pem).map_err(|e| SignatureError::Key(e.to_string()))?,
        ),
    };
    // The token only vouches for file hashes; it carries no expiry or audience to check.
    let mut validation = Validation::new(algorithm);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.validate_aud = false;
    let claims = jsonwebtoken::decode::<SignedFiles>(token, &decoding_key, &validation)
        .map_err(|e| SignatureError::Invalid(e.to_string()))?
        .claims;

    let mut signed = BTreeMap::new();
    for file in claims.files {
        let name = normalize(&file.name).map_err(|e| SignatureError::Malformed(e.to_string()))?;
        if signed.insert(name.clone(), file).is_some() {
            return Err(SignatureError::Malformed(format!("{name} is listed twice")));
        }
    }
    for (name, contents) in files {
        let entry = signed
            .remove(name)
            .ok_or_else(|| SignatureError::Uncovered(name.clone()))?;
        if entry.algorithm != HASH_ALGORITHM {
            return Err(SignatureError::UnsupportedAlgorithm {
                file: name.clone(),
                algorithm: entry.algorithm,
            });
        }
        if !entry.hash.eq_ignore_ascii_case(&sha256_hex(contents)) {
            return Err(SignatureError::HashMismatch(name.clone()));
        }
    }
    match signed.into_keys().next() {
        Some(missing) => Err(SignatureError::MissingFile(missing)),
        None => Ok(()),
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}
