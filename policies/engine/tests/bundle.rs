//! Building, signing and loading bundles, and every way a bundle is refused.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use switchyard_policy::{
    Bundle, PolicyError, SignatureError, SigningKey, VerificationKey, build_bundle,
};

fn policies_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// An RS256 key pair as (private PEM, public PEM).
fn rsa_keys() -> (Vec<u8>, Vec<u8>) {
    let rsa = openssl::rsa::Rsa::generate(2048).expect("generate RSA key");
    let private = rsa.private_key_to_pem().expect("private PEM");
    let public = rsa.public_key_to_pem().expect("public PEM");
    (private, public)
}

/// Unpacks a bundle in the test itself, independently of the crate's reader.
fn unpack(bytes: &[u8]) -> BTreeMap<String, Vec<u8>> {
    let mut archive = tar::Archive::new(GzDecoder::new(bytes));
    let mut files = BTreeMap::new();
    for entry in archive.entries().expect("tar") {
        let mut entry = entry.expect("entry");
        let name = entry.path().expect("path").to_string_lossy().into_owned();
        let mut contents = Vec::new();
        entry.read_to_end(&mut contents).expect("read entry");
        files.insert(name, contents);
    }
    files
}

/// Packs files under the given tar names (which may be anything, including hostile paths).
fn pack(files: &BTreeMap<String, Vec<u8>>) -> Vec<u8> {
    let mut builder = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::fast()));
    for (name, contents) in files {
        let mut header = tar::Header::new_gnu();
        let raw_name = &mut header.as_gnu_mut().expect("gnu header").name;
        raw_name[..name.len()].copy_from_slice(name.as_bytes());
        header.set_size(contents.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder
            .append(&header, contents.as_slice())
            .expect("append");
    }
    let mut gzip = builder.into_inner().expect("tar");
    gzip.flush().expect("flush");
    gzip.finish().expect("gzip")
}

fn signed_bundle() -> (Vec<u8>, Vec<u8>) {
    let (private, public) = rsa_keys();
    let bytes = build_bundle(
        &policies_dir(),
        "r-signed",
        Some(&SigningKey::Rs256Pem(private)),
    )
    .expect("build");
    (bytes, public)
}

fn expect_signature_error(result: Result<Bundle, PolicyError>) -> SignatureError {
    match result {
        Err(PolicyError::Signature(error)) => error,
        other => panic!("expected a signature error, got {other:?}"),
    }
}

#[test]
fn unsigned_round_trip_keeps_revision_and_bytes() {
    let bytes = build_bundle(&policies_dir(), "2025-03-31.1", None).expect("build");
    let bundle = Bundle::load(bytes.clone(), None).expect("load");
    assert_eq!(bundle.revision(), "2025-03-31.1");
    assert_eq!(bundle.bytes(), bytes.as_slice());
    assert!(bundle.tests().is_success());
    assert!(!bundle.tests().results.is_empty());
}

#[test]
fn bundle_layout_follows_opa() {
    let files = unpack(&build_bundle(&policies_dir(), "r1", None).expect("build"));
    assert_eq!(
        files.keys().map(String::as_str).collect::<Vec<_>>(),
        vec![
            ".manifest",
            "data.json",
            "switchyard/authz.rego",
            "switchyard/authz_test.rego"
        ]
    );
    let manifest: serde_json::Value = serde_json::from_slice(&files[".manifest"]).expect("json");
    assert_eq!(
        manifest,
        serde_json::json!({"revision": "r1", "roots": ["switchyard"]})
    );
}

#[test]
fn build_is_deterministic() {
    let first = build_bundle(&policies_dir(), "r1", None).expect("build");
    let second = build_bundle(&policies_dir(), "r1", None).expect("build");
    assert_eq!(first, second);
    let other_revision = build_bundle(&policies_dir(), "r2", None).expect("build");
    assert_ne!(first, other_revision);

    let key = || SigningKey::Hs256(b"deterministic".to_vec());
    let signed = build_bundle(&policies_dir(), "r1", Some(&key())).expect("build");
    assert_eq!(
        signed,
        build_bundle(&policies_dir(), "r1", Some(&key())).expect("build")
    );
}

#[test]
fn hs256_signed_round_trip() {
    let secret = b"a shared secret of reasonable length".to_vec();
    let bytes = build_bundle(
        &policies_dir(),
        "r-hs",
        Some(&SigningKey::Hs256(secret.clone())),
    )
    .expect("build");
    assert!(unpack(&bytes).contains_key(".signatures.json"));
    let bundle = Bundle::load(bytes, Some(&VerificationKey::Hs256(secret))).expect("load");
    assert_eq!(bundle.revision(), "r-hs");
}

#[test]
fn rs256_signed_round_trip() {
    let (bytes, public) = signed_bundle();
    let bundle =
        Bundle::load(bytes.clone(), Some(&VerificationKey::Rs256Pem(public))).expect("load");
    assert_eq!(bundle.revision(), "r-signed");
    assert_eq!(bundle.bytes(), bytes.as_slice());
    // Without a key the signature is not checked, but the bundle is still valid.
    assert!(Bundle::load(bytes, None).is_ok());
}

#[test]
fn signature_payload_covers_every_file() {
    let secret = b"inspect".to_vec();
    let files = unpack(
        &build_bundle(
            &policies_dir(),
            "r1",
            Some(&SigningKey::Hs256(secret.clone())),
        )
        .expect("build"),
    );
    let signatures: serde_json::Value =
        serde_json::from_slice(&files[".signatures.json"]).expect("json");
    let token = signatures["signatures"][0].as_str().expect("one JWT");
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    let claims = jsonwebtoken::decode::<serde_json::Value>(
        token,
        &jsonwebtoken::DecodingKey::from_secret(&secret),
        &validation,
    )
    .expect("valid JWT")
    .claims;
    let mut covered: Vec<&str> = claims["files"]
        .as_array()
        .expect("files")
        .iter()
        .map(|file| {
            assert_eq!(file["algorithm"], "SHA-256");
            file["name"].as_str().expect("name")
        })
        .collect();
    covered.sort_unstable();
    let mut expected: Vec<&str> = files
        .keys()
        .map(String::as_str)
        .filter(|name| *name != ".signatures.json")
        .collect();
    expected.sort_unstable();
    assert_eq!(covered, expected);
}

#[test]
fn tampered_file_is_refused() {
    let (bytes, public) = signed_bundle();
    let mut files = unpack(&bytes);
    let policy = files.get_mut("switchyard/authz.rego").expect("policy");
    *policy = String::from_utf8(policy.clone())
        .expect("utf8")
        .replace("default allow := false", "default allow := true")
        .into_bytes();
    let error = expect_signature_error(Bundle::load(
        pack(&files),
        Some(&VerificationKey::Rs256Pem(public)),
    ));
    assert!(
        matches!(&error, SignatureError::HashMismatch(name) if name == "switchyard/authz.rego"),
        "{error}"
    );
}

#[test]
fn added_file_is_refused() {
    let (bytes, public) = signed_bundle();
    let mut files = unpack(&bytes);
    files.insert(
        "switchyard/extra.rego".into(),
        b"package switchyard.extra\n\nx := 1\n".to_vec(),
    );
    let error = expect_signature_error(Bundle::load(
        pack(&files),
        Some(&VerificationKey::Rs256Pem(public)),
    ));
    assert!(
        matches!(&error, SignatureError::Uncovered(name) if name == "switchyard/extra.rego"),
        "{error}"
    );
}

#[test]
fn removed_file_is_refused() {
    let (bytes, public) = signed_bundle();
    let mut files = unpack(&bytes);
    files.remove("switchyard/authz_test.rego");
    let error = expect_signature_error(Bundle::load(
        pack(&files),
        Some(&VerificationKey::Rs256Pem(public)),
    ));
    assert!(
        matches!(&error, SignatureError::MissingFile(name) if name == "switchyard/authz_test.rego"),
        "{error}"
    );
}

#[test]
fn wrong_key_is_refused() {
    let (bytes, _) = signed_bundle();
    let (_, other_public) = rsa_keys();
    let error = expect_signature_error(Bundle::load(
        bytes.clone(),
        Some(&VerificationKey::Rs256Pem(other_public)),
    ));
    assert!(matches!(error, SignatureError::Invalid(_)), "{error}");

    let hs = build_bundle(
        &policies_dir(),
        "r1",
        Some(&SigningKey::Hs256(b"right".to_vec())),
    )
    .expect("build");
    let error = expect_signature_error(Bundle::load(
        hs.clone(),
        Some(&VerificationKey::Hs256(b"wrong".to_vec())),
    ));
    assert!(matches!(error, SignatureError::Invalid(_)), "{error}");

    // An HS256 bundle must not pass as RS256 (nor the reverse): the key fixes the algorithm.
    let (_, public) = rsa_keys();
    let error = expect_signature_error(Bundle::load(hs, Some(&VerificationKey::Rs256Pem(public))));
    assert!(matches!(error, SignatureError::Invalid(_)), "{error}");
}

#[test]
fn unusable_verification_key_is_refused() {
    let (bytes, _) = signed_bundle();
    let error = expect_signature_error(Bundle::load(
        bytes,
        Some(&VerificationKey::Rs256Pem(b"not a pem".to_vec())),
    ));
    assert!(matches!(error, SignatureError::Key(_)), "{error}");
}

#[test]
fn unsigned_bundle_is_refused_when_a_key_is_required() {
    let bytes = build_bundle(&policies_dir(), "r1", None).expect("build");
    let error = expect_signature_error(Bundle::load(
        bytes,
        Some(&VerificationKey::Hs256(b"key".to_vec())),
    ));
    assert!(matches!(error, SignatureError::Missing), "{error}");
}

#[test]
fn malformed_signatures_file_is_refused() {
    let (bytes, public) = signed_bundle();
    let mut files = unpack(&bytes);
    files.insert(".signatures.json".into(), br#"{"signatures": []}"#.to_vec());
    let error = expect_signature_error(Bundle::load(
        pack(&files),
        Some(&VerificationKey::Rs256Pem(public)),
    ));
    assert!(matches!(error, SignatureError::Malformed(_)), "{error}");
}

#[test]
fn corrupt_archives_are_refused() {
    let bytes = build_bundle(&policies_dir(), "r1", None).expect("build");

    let mut flipped = bytes.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0xff;
    assert!(matches!(
        Bundle::load(flipped, None),
        Err(PolicyError::Archive(_))
    ));

    let truncated = bytes[..bytes.len() - 8].to_vec();
    assert!(matches!(
        Bundle::load(truncated, None),
        Err(PolicyError::Archive(_))
    ));

    let not_gzip = b"definitely not a bundle".to_vec();
    assert!(matches!(
        Bundle::load(not_gzip, None),
        Err(PolicyError::Archive(_))
    ));
}

#[test]
fn rego_syntax_error_is_refused() {
    let mut files = unpack(&build_bundle(&policies_dir(), "r1", None).expect("build"));
    files.insert(
        "switchyard/broken.rego".into(),
        b"package switchyard.broken\n\nallow if {\n".to_vec(),
    );
    match Bundle::load(pack(&files), None) {
        Err(PolicyError::Compile { file, .. }) => assert_eq!(file, "switchyard/broken.rego"),
        other => panic!("expected a compile error, got {other:?}"),
    }

    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("broken.rego"),
        "package broken\n\nallow if {\n",
    )
    .expect("write");
    assert!(matches!(
        build_bundle(dir.path(), "r1", None),
        Err(PolicyError::Compile { .. })
    ));
}

#[test]
fn manifest_problems_are_refused() {
    let files = unpack(&build_bundle(&policies_dir(), "r1", None).expect("build"));

    let mut missing = files.clone();
    missing.remove(".manifest");
    assert!(matches!(
        Bundle::load(pack(&missing), None),
        Err(PolicyError::Manifest(_))
    ));

    let mut narrow_roots = files.clone();
    narrow_roots.insert(
        ".manifest".into(),
        br#"{"revision": "r1", "roots": ["switchyard/authz"]}"#.to_vec(),
    );
    match Bundle::load(pack(&narrow_roots), None) {
        Err(PolicyError::Data { file, message }) => {
            assert_eq!(file, "data.json");
            assert!(message.contains("outside the manifest roots"), "{message}");
        }
        other => panic!("expected data outside roots, got {other:?}"),
    }

    let mut foreign_package = files.clone();
    foreign_package.insert("other.rego".into(), b"package other\n\nx := 1\n".to_vec());
    match Bundle::load(pack(&foreign_package), None) {
        Err(PolicyError::Compile { file, message }) => {
            assert_eq!(file, "other.rego");
            assert!(message.contains("outside the manifest roots"), "{message}");
        }
        other => panic!("expected package outside roots, got {other:?}"),
    }
}

#[test]
fn bundle_paths_and_file_types_are_checked() {
    let files = unpack(&build_bundle(&policies_dir(), "r1", None).expect("build"));
    let rooted: BTreeMap<String, Vec<u8>> = files
        .iter()
        .map(|(name, contents)| (format!("/{name}"), contents.clone()))
        .collect();
    assert_eq!(
        Bundle::load(pack(&rooted), None).expect("load").revision(),
        "r1"
    );

    let mut escaping = files.clone();
    escaping.insert("../evil.rego".into(), b"package switchyard.evil\n".to_vec());
    assert!(matches!(
        Bundle::load(pack(&escaping), None),
        Err(PolicyError::File { .. })
    ));

    let mut unsupported = files.clone();
    unsupported.insert("switchyard/data.yaml".into(), b"limit: 1\n".to_vec());
    assert!(matches!(
        Bundle::load(pack(&unsupported), None),
        Err(PolicyError::File { .. })
    ));

    // Bundles built with `opa build -t wasm` also carry the Rego, which is what gets evaluated.
    let mut with_wasm = files;
    with_wasm.insert("policy.wasm".into(), b"\0asm".to_vec());
    assert!(Bundle::load(pack(&with_wasm), None).is_ok());
}

#[test]
fn each_tenant_sees_only_its_own_overrides() {
    let (signed, public) = signed_bundle();
    let bundle = Bundle::load(signed.clone(), Some(&VerificationKey::Rs256Pem(public))).unwrap();
    assert_eq!(
        bundle.tenant_view("acme").unwrap().as_ref(),
        signed.as_slice(),
        "no overrides: the bytes as loaded, signature and all"
    );

    let mut files = unpack(&build_bundle(&policies_dir(), "r-tenants", None).unwrap());
    let mut data: serde_json::Value = serde_json::from_slice(&files["data.json"]).unwrap();
    data["switchyard"]["tenants"] = serde_json::json!({
        "acme": {"deny_actions": ["cache/memory/delete"]},
        "globex": {"deny_actions": ["db/sqlite/execute"]},
    });
    files.insert("data.json".into(), serde_json::to_vec(&data).unwrap());
    files.insert(
        "switchyard/tenants/initech/data.json".into(),
        br#"{"note": "initech only"}"#.to_vec(),
    );
    let bundle = Bundle::load(pack(&files), None).unwrap();
    let view = bundle.tenant_view("acme").unwrap().into_owned();
    let seen = unpack(&view);
    assert!(!seen.contains_key("switchyard/tenants/initech/data.json"));
    let data: serde_json::Value = serde_json::from_slice(&seen["data.json"]).unwrap();
    assert_eq!(
        data["switchyard"]["tenants"],
        serde_json::json!({"acme": {"deny_actions": ["cache/memory/delete"]}})
    );
    assert_eq!(
        data["switchyard"]["roles"],
        serde_json::json!(files_roles(&files))
    );
    // What is served still loads: the same policies, the same revision.
    assert_eq!(Bundle::load(view, None).unwrap().revision(), "r-tenants");
}

fn files_roles(files: &BTreeMap<String, Vec<u8>>) -> serde_json::Value {
    serde_json::from_slice::<serde_json::Value>(&files["data.json"]).unwrap()["switchyard"]["roles"]
        .clone()
}

/// The operator's per-tenant data goes over `data.switchyard.tenants.<t>` as a new, unsigned
/// revision that still passes the bundle's tests; the rest of the data is untouched and every
/// tenant's auditor still sees only their own part.
#[test]
fn operator_tenant_data_is_written_over_the_bundle_as_a_new_revision() {
    let (bytes, public) = signed_bundle();
    let bundle = Bundle::load(bytes, Some(&VerificationKey::Rs256Pem(public))).unwrap();
    let mut tenants = BTreeMap::new();
    tenants.insert(
        "acme".to_owned(),
        serde_json::json!({"deny_actions": ["cache/*/set"]}),
    );
    tenants.insert("globex".to_owned(), serde_json::json!({"deny_actions": []}));
    let composed = bundle.with_tenant_data(&tenants, "r1+tenants.7").unwrap();
    let files = unpack(&composed);
    assert!(
        !files.contains_key(".signatures.json"),
        "the signature no longer covers it"
    );
    let loaded = Bundle::load(composed, None).unwrap();
    assert_eq!(loaded.revision(), "r1+tenants.7");
    let data: serde_json::Value = serde_json::from_slice(&files["data.json"]).unwrap();
    assert_eq!(
        data["switchyard"]["tenants"]["acme"]["deny_actions"],
        serde_json::json!(["cache/*/set"])
    );
    let original: serde_json::Value =
        serde_json::from_slice(&unpack(bundle.bytes())["data.json"]).unwrap();
    assert_eq!(data["switchyard"]["roles"], original["switchyard"]["roles"]);
    let view = unpack(loaded.tenant_view("globex").unwrap().as_ref());
    let data: serde_json::Value = serde_json::from_slice(&view["data.json"]).unwrap();
    assert!(
        data["switchyard"]["tenants"].get("acme").is_none(),
        "{data}"
    );
}
