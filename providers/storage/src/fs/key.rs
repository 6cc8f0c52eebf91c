//! Object keys as this engine accepts them.
//!
//! The contract describes a key as relative '/'-separated segments with no empty, `.` or `..`
//! segment. The schema can only check the length, so the rules are enforced here, before any
//! path reaches the filesystem: a caller who sends `../x` gets a clear params_invalid pointing at
//! `/key` instead of an opaque I/O error. Containment itself does not depend on this check: every
//! file operation goes through a `cap_std::fs::Dir`, which refuses escapes on its own.

use switchyard_spi::ProviderError;

/// Longest key the contract allows, in characters.
const MAX_KEY_CHARS: usize = 1024;

/// Longest file name most filesystems (ext4, xfs, apfs) accept, in bytes. Checked up front so
/// an over-long segment is a params problem, not an I/O failure.
const MAX_SEGMENT_BYTES: usize = 255;

/// A key that passed [`ObjectKey::parse`]: safe to use as a path relative to the tenant's
/// object directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectKey(String);

impl ObjectKey {
    /// Checks `raw` against the key rules; the error points at `pointer` (`/key` for most
    /// actions) so the caller sees which field was wrong.
    pub fn parse(raw: &str, pointer: &str) -> Result<Self, ProviderError> {
        let problem = |why: &str| ProviderError::invalid_param(pointer, format!("{raw:?}: {why}"));
        if raw.is_empty() {
            return Err(problem("a key must not be empty"));
        }
        if raw.chars().count() > MAX_KEY_CHARS {
            return Err(problem("a key is at most 1024 characters"));
        }
        if raw.starts_with('/') {
            return Err(problem("a key is relative: it must not start with '/'"));
        }
        if raw.contains('\\') {
            return Err(problem("a key separates segments with '/', never '\\'"));
        }
        if raw.chars().any(char::is_control) {
            return Err(problem("a key must not contain NUL or control characters"));
        }
        for segment in raw.split('/') {
            match segment {
                "" => {
                    return Err(problem(
                        "a key must not contain an empty segment ('//' or a trailing '/')",
                    ));
                }
                "." | ".." => return Err(problem("a key must not contain a '.' or '..' segment")),
                s if s.len() > MAX_SEGMENT_BYTES => {
                    return Err(problem("a key segment is at most 255 bytes on this engine"));
                }
                _ => {}
            }
        }
        Ok(ObjectKey(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The key's proper prefixes that name directories on disk, outermost first:
    /// `a`, `a/b` for `a/b/c.txt`.
    pub fn ancestors(&self) -> impl DoubleEndedIterator<Item = &str> {
        self.0.match_indices('/').map(|(at, _)| &self.0[..at])
    }

    /// The directory holding the object, if the key has more than one segment.
    pub fn parent(&self) -> Option<&str> {
        self.ancestors().next_back()
    }
}

/// Whether a directory entry's name could be one segment of a valid key. Entries that could
/// not (names no key can produce) are not objects, so listing skips them.
pub fn is_valid_segment(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && name.len() <= MAX_SEGMENT_BYTES
        && !name.contains(['/', '\\'])
        && !name.chars().any(char::is_control)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plain_and_nested_keys() {
        for good in [
            "a",
            "a/b/c.txt",
            ".hidden",
            "a/..b/c..",
            "résumé.pdf",
            "a b/c",
        ] {
            let key = ObjectKey::parse(good, "/key").unwrap();
            assert_eq!(key.as_str(), good);
        }
    }

    #[test]
    fn refuses_unsafe_keys_with_a_pointer_at_the_field() {
        let long_segment = "x".repeat(256);
        let long_key = "a/".repeat(600);
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../b",
            "a/./b",
            ".",
            "a//b",
            "a/",
            "a\\b",
            "a\0b",
            "a\nb",
            long_segment.as_str(),
            long_key.as_str(),
        ] {
            let err = ObjectKey::parse(bad, "/key").expect_err(bad);
            assert_eq!(
                err.code,
                switchyard_spi::ErrorCode::ParamsInvalid,
                "{bad:?}"
            );
            assert_eq!(err.errors[0].pointer, "/key", "{bad:?}");
        }
    }

    #[test]
    fn ancestors_and_parent_follow_the_segments() {
        let key = ObjectKey::parse("a/b/c.txt", "/key").unwrap();
        assert_eq!(key.ancestors().collect::<Vec<_>>(), ["a", "a/b"]);
        assert_eq!(key.parent(), Some("a/b"));
        assert_eq!(ObjectKey::parse("top", "/key").unwrap().parent(), None);
    }

    #[test]
    fn segment_check_matches_the_key_rules() {
        assert!(is_valid_segment("file.txt"));
        for bad in ["", ".", "..", "a\\b", "a\u{7f}"] {
            assert!(!is_valid_segment(bad), "{bad:?}");
        }
    }
}
