//! The bundle's container: a gzipped tar of regular files, plus reading a policy source tree.
//!
//! Files are kept as `path -> bytes` in a `BTreeMap` so that packing is deterministic (sorted
//! names, fixed metadata) and every later step (signing, compiling) sees the same order.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::Path;

use flate2::Compression;
use flate2::GzBuilder;
use flate2::read::GzDecoder;

use crate::PolicyError;

/// Bundle path to file contents.
pub(crate) type Files = BTreeMap<String, Vec<u8>>;

/// Limit on the unpacked size of a bundle, so that a small gzip bomb cannot exhaust memory.
const MAX_UNPACKED_BYTES: u64 = 64 * 1024 * 1024;

/// Unpacks a `.tar.gz` into its files.
///
/// The whole gzip stream is inflated first so that its CRC and length trailer are checked; a tar
/// reader alone stops at the end-of-archive marker and would accept a damaged tail.
pub(crate) fn unpack(bytes: &[u8]) -> Result<Files, PolicyError> {
    let mut tar_bytes = Vec::new();
    GzDecoder::new(bytes)
        .take(MAX_UNPACKED_BYTES + 1)
        .read_to_end(&mut tar_bytes)
        .map_err(|e| PolicyError::Archive(format!("gzip: {e}")))?;
    if tar_bytes.len() as u64 > MAX_UNPACKED_BYTES {
        return Err(PolicyError::Archive(format!(
            "unpacks to more than {MAX_UNPACKED_BYTES} bytes"
        )));
    }

    let mut files = Files::new();
    let mut archive = tar::Archive::new(tar_bytes.as_slice());
    let entries = archive
        .entries()
        .map_err(|e| PolicyError::Archive(format!("tar: {e}")))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| PolicyError::Archive(format!("tar: {e}")))?;
        let raw_name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        match entry.header().entry_type() {
            tar::EntryType::Directory => continue,
            tar::EntryType::Regular | tar::EntryType::Continuous => {}
            other => {
                return Err(PolicyError::File {
                    file: raw_name,
                    message: format!("unsupported tar entry type {other:?} (only regular files)"),
                });
            }
        }
        let name = normalize(&raw_name)?;
        let mut contents = Vec::new();
        entry
            .read_to_end(&mut contents)
            .map_err(|e| PolicyError::Archive(format!("tar entry {name}: {e}")))?;
        if files.insert(name.clone(), contents).is_some() {
            return Err(PolicyError::File {
                file: name,
                message: "appears twice in the archive".into(),
            });
        }
    }
    Ok(files)
}

/// Packs files into a deterministic `.tar.gz`: sorted names, zero mtimes and owners, mode 0644.
pub(crate) fn pack(files: &Files) -> Result<Vec<u8>, PolicyError> {
    let archive_error = |e: std::io::Error| PolicyError::Archive(format!("writing: {e}"));
    let gzip = GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), Compression::default());
    let mut builder = tar::Builder::new(gzip);
    for (name, contents) in files {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_size(contents.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        builder
            .append_data(&mut header, name, contents.as_slice())
            .map_err(archive_error)?;
    }
    let gzip = builder.into_inner().map_err(archive_error)?;
    gzip.finish().map_err(archive_error)
}

/// Canonical bundle path: OPA writes `/data.json`, other tools `./data.json`; both mean
/// `data.json`. Paths escaping the bundle are refused rather than cleaned.
pub(crate) fn normalize(raw: &str) -> Result<String, PolicyError> {
    let trimmed = raw.trim_start_matches("./").trim_start_matches('/');
    let invalid = trimmed.is_empty()
        || trimmed.contains('\\')
        || trimmed
            .split('/')
            .any(|part| part.is_empty() || part == "." || part == "..");
    if invalid {
        return Err(PolicyError::File {
            file: raw.to_string(),
            message: "is not a plain relative path".into(),
        });
    }
    Ok(trimmed.to_string())
}

/// Reads the policy files of a source tree: every `*.rego` (tests included) and every
/// `data.json`, keyed by their path relative to `root`.
///
/// Hidden entries are skipped, symlinks are not followed, and directories holding a `Cargo.toml`
/// are skipped: the policy engine crate lives inside the policies directory and its test files
/// must never end up in the product bundle.
pub(crate) fn read_source(root: &Path) -> Result<Files, PolicyError> {
    let mut files = Files::new();
    read_dir_into(root, "", &mut files)?;
    if !files.keys().any(|name| name.ends_with(".rego")) {
        return Err(PolicyError::Source {
            path: root.to_path_buf(),
            message: "contains no .rego files".into(),
        });
    }
    Ok(files)
}

fn read_dir_into(dir: &Path, prefix: &str, files: &mut Files) -> Result<(), PolicyError> {
    let io_error = |path: &Path| {
        let path = path.to_path_buf();
        move |source| PolicyError::Io { path, source }
    };
    for entry in fs::read_dir(dir).map_err(io_error(dir))? {
        let entry = entry.map_err(io_error(dir))?;
        let path = entry.path();
        let file_type = entry.file_type().map_err(io_error(&path))?;
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            return Err(PolicyError::Source {
                path,
                message: "file name is not UTF-8".into(),
            });
        };
        if name.starts_with('.') {
            continue;
        }
        let bundle_path = format!("{prefix}{name}");
        if file_type.is_dir() {
            if !path.join("Cargo.toml").exists() {
                read_dir_into(&path, &format!("{bundle_path}/"), files)?;
            }
        } else if file_type.is_file() && (name.ends_with(".rego") || name == "data.json") {
            let contents = fs::read(&path).map_err(io_error(&path))?;
            files.insert(bundle_path, contents);
        }
    }
    Ok(())
}
