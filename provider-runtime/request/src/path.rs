//! A request path split into its segments once per request: the gateway's route, scope check,
//! body rule and metric labels, and the runtime's routing in the same process, all read the
//! same split instead of splitting (and allocating) again each.

/// Segments kept; a path with more shows its rest in the last one (`"a/b"`), so that no route
/// of fewer segments matches it, while a route ending in `..` still does.
pub const MAX_SEGMENTS: usize = 5;

/// Where each segment of a path lies (byte ranges), after its leading slashes. `Copy` and
/// without a borrow, so a request's context can keep it beside the request's head.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Segments {
    bounds: [(u32, u32); MAX_SEGMENTS],
    len: u8,
}

impl Segments {
    pub fn parse(path: &str) -> Self {
        let trimmed = path.trim_start_matches('/');
        let mut at = path.len() - trimmed.len();
        let mut segments = Segments::default();
        for part in trimmed.splitn(MAX_SEGMENTS, '/') {
            let end = at + part.len();
            segments.bounds[usize::from(segments.len)] = (at as u32, end as u32);
            segments.len += 1;
            at = end + 1;
        }
        segments
    }

    /// The segments of `path`, the path they were parsed from.
    pub fn of<'a>(&self, path: &'a str) -> Split<'a> {
        let mut parts = [""; MAX_SEGMENTS];
        for (part, &(start, end)) in parts.iter_mut().zip(&self.bounds) {
            *part = path.get(start as usize..end as usize).unwrap_or_default();
        }
        Split {
            parts,
            len: usize::from(self.len),
        }
    }
}

/// The segments of one path, to match as a slice: `match split.as_slice() { ["providers", d,
/// n, a] => ... }`.
#[derive(Debug, Clone, Copy)]
pub struct Split<'a> {
    parts: [&'a str; MAX_SEGMENTS],
    len: usize,
}

impl<'a> Split<'a> {
    /// [`Segments::parse`] and [`Segments::of`] at once, for a path read only here.
    pub fn of(path: &'a str) -> Self {
        Segments::parse(path).of(path)
    }

    pub fn as_slice(&self) -> &[&'a str] {
        &self.parts[..self.len]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_as_the_routes_read_paths() {
        let cases: [(&str, &[&str]); 8] = [
            (
                "/providers/db/sqlite/query",
                &["providers", "db", "sqlite", "query"],
            ),
            ("/providers", &["providers"]),
            ("//healthz", &["healthz"]),
            ("/", &[""]),
            ("", &[""]),
            ("/services/ledger/", &["services", "ledger", ""]),
            ("/a/b/c/d/e/f/g", &["a", "b", "c", "d", "e/f/g"]),
            ("/console/é/x", &["console", "é", "x"]),
        ];
        for (path, expected) in cases {
            assert_eq!(Split::of(path).as_slice(), expected, "{path}");
            let kept = Segments::parse(path);
            assert_eq!(kept.of(path).as_slice(), expected, "{path}");
        }
        // Read against another path, it never panics.
        assert_eq!(
            Segments::parse("/providers/db/sqlite").of("/p").as_slice(),
            ["", "", ""]
        );
    }
}
