//! Object keys as every engine accepts them.
//!
//! The contract describes a key as relative '/'-separated segments with no empty, `.` or `..`
//! segment. The schema can only check the length, so the rules are enforced here, before a key
//! reaches a filesystem path or an S3 object name: a caller who sends `../x` gets a clear
//! params_invalid pointing at `/key` instead of an opaque I/O error. Every engine applies the
//! same rules, so a key valid on one engine is valid on all and a tenant can move between them.
//!
//! Containment does not rest on these checks alone: `storage/fs` confines every file operation
//! with a `cap_std::fs::Dir`, and `storage/s3` prefixes every object name with the tenant's own
//! folder after the key passed them.

use switchyard_spi::{ErrorCode, ProviderError};

/// Longest key the contract allows, in characters.
const MAX_KEY_CHARS: usize = 1024;

/// Longest file name most filesystems (ext4, xfs, apfs) accept, in bytes. Checked up front so
/// an over-long segment is a params problem, not an I/O failure; applied by every engine so
/// that keys stay portable to `storage/fs`.
const MAX_SEGMENT_BYTES: usize = 255;

/// A key that passed [`ObjectKey::parse`]: safe to use as a path relative to the tenant's
/// object directory, or appended to the tenant's prefix in a bucket.
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
        // opendal, which storage/s3 is built on, trims the object names it is given, so " a"
        // would silently become the object "a" there; refused on every engine alike.
        if raw.starts_with(char::is_whitespace) || raw.ends_with(char::is_whitespace) {
            return Err(problem("a key must not start or end with whitespace"));
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
                    // The published pattern counts characters (at most 255); a pattern cannot
                    // count UTF-8 bytes, so a segment within 255 characters and past 255 bytes
                    // matches the schema and breaks a rule it cannot state: 422 (ADR 23).
                    if s.chars().count() <= MAX_SEGMENT_BYTES {
                        return Err(ProviderError::field(
                            ErrorCode::ParamsUnprocessable,
                            pointer,
                            format!("{raw:?}: a key segment is at most 255 bytes in UTF-8"),
                        ));
                    }
                    return Err(problem("a key segment is at most 255 characters"));
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

/// Whether some valid key starts with `prefix`: false for a prefix that begins with '/' or
/// whitespace, holds a character no key may hold, or completes an empty, `.` or `..` segment.
/// Lets an engine answer such a `list` with an empty page instead of scanning for nothing.
pub fn could_begin_a_key(prefix: &str) -> bool {
    let complete_segments_valid = match prefix.rsplit_once('/') {
        None => true,
        Some((complete, _partial)) => complete.split('/').all(|segment| {
            !matches!(segment, "" | "." | "..") && segment.len() <= MAX_SEGMENT_BYTES
        }),
    };
    complete_segments_valid
        && !prefix.starts_with(char::is_whitespace)
        && !prefix.contains('\\')
        && !prefix.chars().any(char::is_control)
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
            " a",
            "a ",
            "a/b\u{a0}",
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

    /// The published pattern allows 255 characters a segment; 128 two-byte characters are
    /// within it and past the 255 bytes a filesystem takes: 422, the rule it cannot state.
    #[test]
    fn a_segment_within_255_characters_and_past_255_bytes_is_unprocessable() {
        let wide = "é".repeat(128);
        let err = ObjectKey::parse(&format!("a/{wide}"), "/key").unwrap_err();
        assert_eq!(err.code, ErrorCode::ParamsUnprocessable);
        assert_eq!(err.errors[0].pointer, "/key");
        ObjectKey::parse(&"é".repeat(127), "/key").unwrap();
    }

    #[test]
    fn prefixes_that_no_key_can_start_with_are_recognised() {
        for possible in ["", "a", "a/", "a/b", "a/..", ".", "..", "a/.e", "a b/c "] {
            assert!(could_begin_a_key(possible), "{possible:?}");
        }
        for impossible in ["/", "/a", "a//", "a/./", "../", " a", "a\\", "a\n"] {
            assert!(!could_begin_a_key(impossible), "{impossible:?}");
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
