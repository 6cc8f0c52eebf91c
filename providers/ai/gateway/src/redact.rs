//! PII redaction before a prompt leaves the platform: emails, phone numbers, IBANs, payment
//! card numbers and the tenant's own named patterns are replaced by placeholders (`[EMAIL_1]`,
//! `[IBAN_2]`, `[EMPLOYEE_ID_1]`), and the placeholders the model echoes back can be restored
//! in its answer.
//!
//! It runs on every request, so it is built for the common case of finding nothing: each kind
//! is one pass over the text, the built-in kinds are byte scanners (the email regex runs only
//! on text with an `@`), a text without findings is returned borrowed, and the tenant's
//! regexes are compiled once per config. IBANs and cards are redacted only when their check
//! digits are right (ISO 13616 mod 97, Luhn), which keeps order numbers and amounts readable
//! for the model; a phone number needs a phone's shape (an international `+`, a trunk `0`, an
//! area code in parentheses, or North American 3-3-4 grouping) and 8 to 15 digits, which
//! keeps dates, amounts and IDs out.
//!
//! Detection is a best effort on well-formed values; it does not find a number spelled out
//! in words or split over several messages.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::LazyLock;

use regex::{Regex, RegexBuilder};
use schemars::JsonSchema;
use serde::Deserialize;

const MAX_PATTERNS: usize = 32;
const MAX_PATTERN_CHARS: usize = 1_000;
/// The compiled size a tenant's regex may take (the `regex` crate's own default is 10 MiB):
/// enough for any reasonable identifier pattern, and one config cannot make every request
/// of the instance slow or the process large.
const PATTERN_SIZE_LIMIT: usize = 1 << 20;
const PATTERN_NAME_PATTERN: &str = r"^[A-Za-z][A-Za-z0-9_]{0,31}$";
const BUILT_IN_TAGS: [&str; 4] = ["EMAIL", "PHONE", "IBAN", "CARD"];

/// An email address: a dot-atom local part and a domain with a letters-only top level.
static EMAIL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"[A-Za-z0-9._%+-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.[A-Za-z]{2,63}",
    )
    .expect("the email pattern compiles")
});

/// What to redact from prompts before they are sent to a model.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RedactionConfig {
    /// Replace email addresses with [EMAIL_n].
    #[serde(default = "yes")]
    pub email: bool,
    /// Replace phone numbers (international +CC, national with a leading 0 or an area code
    /// in parentheses, North American 555-123-4567) with [PHONE_n].
    #[serde(default = "yes")]
    pub phone: bool,
    /// Replace IBANs whose check digits are valid with [IBAN_n].
    #[serde(default = "yes")]
    pub iban: bool,
    /// Replace payment card numbers that pass the Luhn check with [CARD_n].
    #[serde(default = "yes")]
    pub card: bool,
    /// Your own patterns: every match of `regex` is replaced with [<NAME>_n] (the name in
    /// upper case).
    #[serde(default)]
    #[schemars(length(max = MAX_PATTERNS))]
    pub patterns: Vec<PatternConfig>,
    /// Put the original values back where the model's answer repeats a placeholder.
    #[serde(default)]
    pub restore: bool,
}

fn yes() -> bool {
    true
}

impl Default for RedactionConfig {
    fn default() -> Self {
        Self {
            email: true,
            phone: true,
            iban: true,
            card: true,
            patterns: Vec::new(),
            restore: false,
        }
    }
}

/// A named pattern of the tenant's own.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PatternConfig {
    /// Names the placeholder, e.g. employee_id gives [EMPLOYEE_ID_1].
    #[schemars(regex(pattern = PATTERN_NAME_PATTERN))]
    pub name: String,
    /// A regular expression (Rust regex syntax: no look-around or backreferences).
    #[schemars(length(min = 1, max = MAX_PATTERN_CHARS))]
    pub regex: String,
}

/// A redaction config the schema admits but that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RedactError {
    #[error("at most {MAX_PATTERNS} patterns")]
    TooManyPatterns,
    #[error("pattern {name:?}: the name must match {PATTERN_NAME_PATTERN}")]
    InvalidName { index: usize, name: String },
    #[error(
        "pattern {name:?}: the name is used twice or by a built-in kind (EMAIL, PHONE, IBAN, CARD)"
    )]
    DuplicateName { index: usize, name: String },
    #[error("pattern {name:?} does not compile: {reason}")]
    InvalidRegex {
        index: usize,
        name: String,
        reason: String,
    },
    #[error(
        "pattern {name:?} is too large (at most {MAX_PATTERN_CHARS} characters compiling to at most {PATTERN_SIZE_LIMIT} bytes)"
    )]
    RegexTooLarge { index: usize, name: String },
}

impl RedactError {
    /// The contract's error code: the schema admits the config, a rule it cannot state
    /// refuses it.
    pub fn code(&self) -> &'static str {
        "config_unprocessable"
    }

    /// The config field at fault, as a JSON pointer below the redaction config.
    pub fn pointer(&self) -> String {
        match self {
            RedactError::TooManyPatterns => "/patterns".to_owned(),
            RedactError::InvalidName { index, .. } | RedactError::DuplicateName { index, .. } => {
                format!("/patterns/{index}/name")
            }
            RedactError::InvalidRegex { index, .. } | RedactError::RegexTooLarge { index, .. } => {
                format!("/patterns/{index}/regex")
            }
        }
    }
}

#[derive(Debug)]
struct Pattern {
    tag: String,
    regex: Regex,
}

/// A redaction config, compiled once per config version.
#[derive(Debug)]
pub struct RedactionRules {
    email: bool,
    phone: bool,
    iban: bool,
    card: bool,
    patterns: Vec<Pattern>,
    restore: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Email,
    Iban,
    Card,
    Phone,
    Pattern(usize),
}

#[derive(Debug, Clone, Copy)]
struct Finding {
    start: usize,
    end: usize,
    kind: Kind,
}

impl RedactionRules {
    pub fn new(config: &RedactionConfig) -> Result<Self, RedactError> {
        if config.patterns.len() > MAX_PATTERNS {
            return Err(RedactError::TooManyPatterns);
        }
        let mut patterns: Vec<Pattern> = Vec::with_capacity(config.patterns.len());
        for (index, pattern) in config.patterns.iter().enumerate() {
            let name = || pattern.name.clone();
            if !valid_pattern_name(&pattern.name) {
                return Err(RedactError::InvalidName {
                    index,
                    name: name(),
                });
            }
            let tag = pattern.name.to_ascii_uppercase();
            if BUILT_IN_TAGS.contains(&tag.as_str()) || patterns.iter().any(|p| p.tag == tag) {
                return Err(RedactError::DuplicateName {
                    index,
                    name: name(),
                });
            }
            if pattern.regex.chars().count() > MAX_PATTERN_CHARS {
                return Err(RedactError::RegexTooLarge {
                    index,
                    name: name(),
                });
            }
            let regex = RegexBuilder::new(&pattern.regex)
                .size_limit(PATTERN_SIZE_LIMIT)
                .dfa_size_limit(PATTERN_SIZE_LIMIT)
                .build()
                .map_err(|err| match err {
                    regex::Error::CompiledTooBig(_) => RedactError::RegexTooLarge {
                        index,
                        name: name(),
                    },
                    other => RedactError::InvalidRegex {
                        index,
                        name: name(),
                        reason: other.to_string(),
                    },
                })?;
            patterns.push(Pattern { tag, regex });
        }
        Ok(Self {
            email: config.email,
            phone: config.phone,
            iban: config.iban,
            card: config.card,
            patterns,
            restore: config.restore,
        })
    }

    /// Whether any kind is on: with none, the caller can skip redaction altogether.
    pub fn is_active(&self) -> bool {
        self.email || self.phone || self.iban || self.card || !self.patterns.is_empty()
    }

    /// Whether the config asks to restore placeholders in the answer.
    pub fn restores(&self) -> bool {
        self.restore
    }

    /// `text` with every finding replaced by its placeholder; borrowed when nothing is found.
    /// `redaction` collects the placeholders of one request, so the same value gets the same
    /// placeholder in every message of it.
    ///
    /// Where findings overlap, the first kind in this order wins: email, IBAN, card, phone,
    /// then the tenant's patterns in config order (an IBAN's digits are not also a card).
    pub fn redact<'t>(&self, text: &'t str, redaction: &mut Redaction) -> Cow<'t, str> {
        let mut taken: Vec<Finding> = Vec::new();
        if self.email && text.contains('@') {
            let found = EMAIL
                .find_iter(text)
                .map(|m| finding(m.start(), m.end(), Kind::Email))
                .collect();
            admit(&mut taken, found);
        }
        if self.iban {
            admit(&mut taken, scan(text, Kind::Iban, ibans));
        }
        if self.card {
            admit(&mut taken, scan(text, Kind::Card, cards));
        }
        if self.phone {
            admit(&mut taken, scan(text, Kind::Phone, phones));
        }
        for (index, pattern) in self.patterns.iter().enumerate() {
            let found = pattern
                .regex
                .find_iter(text)
                .filter(|m| !m.is_empty())
                .map(|m| finding(m.start(), m.end(), Kind::Pattern(index)))
                .collect();
            admit(&mut taken, found);
        }
        if taken.is_empty() {
            return Cow::Borrowed(text);
        }
        let mut out = String::with_capacity(text.len() + 8 * taken.len());
        let mut last = 0;
        for found in &taken {
            out.push_str(&text[last..found.start]);
            let original = &text[found.start..found.end];
            let (tag, canonical): (&str, Cow<'_, str>) = match found.kind {
                Kind::Email => ("EMAIL", Cow::Owned(original.to_ascii_lowercase())),
                Kind::Iban => (
                    "IBAN",
                    Cow::Owned(alphanumerics(original).to_ascii_uppercase()),
                ),
                Kind::Card => ("CARD", Cow::Owned(alphanumerics(original))),
                Kind::Phone => ("PHONE", Cow::Owned(phone_canonical(original))),
                Kind::Pattern(i) => (self.patterns[i].tag.as_str(), Cow::Borrowed(original)),
            };
            out.push_str(redaction.placeholder(tag, &canonical, original));
            last = found.end;
        }
        out.push_str(&text[last..]);
        Cow::Owned(out)
    }
}

fn finding(start: usize, end: usize, kind: Kind) -> Finding {
    Finding { start, end, kind }
}

fn scan(text: &str, kind: Kind, scanner: fn(&[u8], &mut dyn FnMut(usize, usize))) -> Vec<Finding> {
    let mut found = Vec::new();
    scanner(text.as_bytes(), &mut |start, end| {
        found.push(finding(start, end, kind))
    });
    found
}

/// Merges one kind's findings (in order, not overlapping each other) into those taken so far
/// (the same), dropping each that overlaps one already taken. Linear in both.
fn admit(taken: &mut Vec<Finding>, candidates: Vec<Finding>) {
    if candidates.is_empty() {
        return;
    }
    if taken.is_empty() {
        *taken = candidates;
        return;
    }
    let mut merged = Vec::with_capacity(taken.len() + candidates.len());
    let mut earlier = std::mem::take(taken).into_iter().peekable();
    for candidate in candidates {
        while let Some(before) = earlier.next_if(|t| t.end <= candidate.start) {
            merged.push(before);
        }
        if earlier.peek().is_some_and(|t| t.start < candidate.end) {
            continue;
        }
        merged.push(candidate);
    }
    merged.extend(earlier);
    *taken = merged;
}

fn alphanumerics(text: &str) -> String {
    text.chars().filter(char::is_ascii_alphanumeric).collect()
}

/// A phone's digits, with `+` and a `00` international prefix read as the same thing.
fn phone_canonical(text: &str) -> String {
    let digits: String = text.chars().filter(char::is_ascii_digit).collect();
    match (text.starts_with('+'), digits.strip_prefix("00")) {
        (true, _) => format!("+{digits}"),
        (false, Some(rest)) => format!("+{rest}"),
        (false, None) => digits,
    }
}

fn valid_pattern_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphabetic())
        && name.len() <= 32
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// A byte that continues a word: a value glued to one is part of something else.
fn is_word(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'_' || byte >= 0x80
}

fn word_before(text: &[u8], at: usize) -> bool {
    at > 0 && is_word(text[at - 1])
}

/// IBANs: two letters, two check digits and the BBAN, with or without spaces between groups,
/// of the country's length (15 to 34 for a country the table does not list) and valid under
/// ISO 13616's mod 97. Countries the table lacks must be written in capitals.
fn ibans(text: &[u8], emit: &mut dyn FnMut(usize, usize)) {
    let mut i = 0;
    while i + 4 <= text.len() {
        let starts = text[i].is_ascii_alphabetic()
            && text[i + 1].is_ascii_alphabetic()
            && text[i + 2].is_ascii_digit()
            && text[i + 3].is_ascii_digit()
            && !word_before(text, i);
        if !starts {
            i += 1;
            continue;
        }
        let country = [
            text[i].to_ascii_uppercase(),
            text[i + 1].to_ascii_uppercase(),
        ];
        let length = iban_length(country);
        if length.is_none() && !(text[i].is_ascii_uppercase() && text[i + 1].is_ascii_uppercase()) {
            i += 1;
            continue;
        }
        // The IBAN's characters and where each ends: single spaces between them are skipped.
        let mut chars = [0u8; 34];
        let mut ends = [0usize; 34];
        let mut count = 0;
        let mut pos = i;
        while count < 34 && pos < text.len() {
            if text[pos].is_ascii_alphanumeric() {
                chars[count] = text[pos].to_ascii_uppercase();
                ends[count] = pos + 1;
                count += 1;
                pos += 1;
            } else if text[pos] == b' '
                && pos + 1 < text.len()
                && text[pos + 1].is_ascii_alphanumeric()
                && count >= 4
            {
                pos += 1;
            } else {
                break;
            }
        }
        let clean_end = |n: usize| ends[n - 1] == text.len() || !is_word(text[ends[n - 1]]);
        let valid = |n: usize| n <= count && clean_end(n) && mod97(&chars[..n]) == Some(1);
        let found = match length {
            Some(n) => valid(n).then_some(n),
            None => (15..=count).rev().find(|&n| valid(n)),
        };
        match found {
            Some(n) => {
                emit(i, ends[n - 1]);
                i = ends[n - 1];
            }
            None => i += 1,
        }
    }
}

/// ISO 13616: the first four characters moved to the end, letters as 10..=35, the whole
/// number mod 97 (1 for a valid IBAN). `None` for a character that is not alphanumeric.
fn mod97(iban: &[u8]) -> Option<u32> {
    let (head, rest) = iban.split_at(4.min(iban.len()));
    rest.iter().chain(head).try_fold(0u32, |acc, &c| match c {
        b'0'..=b'9' => Some((acc * 10 + u32::from(c - b'0')) % 97),
        b'A'..=b'Z' => Some((acc * 100 + u32::from(c - b'A') + 10) % 97),
        _ => None,
    })
}

/// IBAN lengths of the SWIFT registry for the countries most likely to appear.
fn iban_length(country: [u8; 2]) -> Option<usize> {
    Some(match &country {
        b"AD" => 24,
        b"AE" => 23,
        b"AL" => 28,
        b"AT" => 20,
        b"AZ" => 28,
        b"BA" => 20,
        b"BE" => 16,
        b"BG" => 22,
        b"BH" => 22,
        b"BR" => 29,
        b"CH" => 21,
        b"CR" => 22,
        b"CY" => 28,
        b"CZ" => 24,
        b"DE" => 22,
        b"DK" => 18,
        b"DO" => 28,
        b"EE" => 20,
        b"EG" => 29,
        b"ES" => 24,
        b"FI" => 18,
        b"FO" => 18,
        b"FR" => 27,
        b"GB" => 22,
        b"GE" => 22,
        b"GI" => 23,
        b"GL" => 18,
        b"GR" => 27,
        b"GT" => 28,
        b"HR" => 21,
        b"HU" => 28,
        b"IE" => 22,
        b"IL" => 23,
        b"IS" => 26,
        b"IT" => 27,
        b"JO" => 30,
        b"KW" => 30,
        b"KZ" => 20,
        b"LB" => 28,
        b"LI" => 21,
        b"LT" => 20,
        b"LU" => 20,
        b"LV" => 21,
        b"MC" => 27,
        b"MD" => 24,
        b"ME" => 22,
        b"MK" => 19,
        b"MR" => 27,
        b"MT" => 31,
        b"MU" => 30,
        b"NL" => 18,
        b"NO" => 15,
        b"PK" => 24,
        b"PL" => 28,
        b"PS" => 29,
        b"PT" => 25,
        b"QA" => 29,
        b"RO" => 24,
        b"RS" => 22,
        b"SA" => 24,
        b"SE" => 24,
        b"SI" => 19,
        b"SK" => 24,
        b"SM" => 27,
        b"TN" => 24,
        b"TR" => 26,
        b"UA" => 29,
        b"VG" => 24,
        b"XK" => 20,
        _ => return None,
    })
}

/// Digit groups (where each starts and ends) on the stack, so scanning a text without
/// findings allocates nothing.
struct Groups<const N: usize> {
    spans: [(usize, usize); N],
    len: usize,
}

impl<const N: usize> Groups<N> {
    fn new() -> Self {
        Self {
            spans: [(0, 0); N],
            len: 0,
        }
    }

    /// False (and nothing added) when full.
    fn push(&mut self, span: (usize, usize)) -> bool {
        let Some(slot) = self.spans.get_mut(self.len) else {
            return false;
        };
        *slot = span;
        self.len += 1;
        true
    }
}

impl<const N: usize> std::ops::Deref for Groups<N> {
    type Target = [(usize, usize)];

    fn deref(&self) -> &Self::Target {
        &self.spans[..self.len]
    }
}

/// The digit groups (where each starts and ends) from `start`, separated by single bytes of
/// `separators`, at most `limit` digits in all (the run stops before the group that would
/// exceed it).
fn digit_run(text: &[u8], start: usize, separators: &[u8], limit: usize) -> Groups<64> {
    let mut groups = Groups::new();
    let mut pos = start;
    let mut digits = 0;
    loop {
        let from = pos;
        while pos < text.len() && text[pos].is_ascii_digit() {
            pos += 1;
        }
        digits += pos - from;
        if pos == from || digits > limit {
            break;
        }
        if !groups.push((from, pos)) {
            break;
        }
        if pos + 1 < text.len() && separators.contains(&text[pos]) && text[pos + 1].is_ascii_digit()
        {
            pos += 1;
        } else {
            break;
        }
    }
    groups
}

/// Card numbers: 13 to 19 digits, in one block or in groups separated by single spaces or
/// dashes, starting with an issuer's major industry digit of cards (2 to 6), passing the Luhn
/// check. Within a longer run of groups the longest valid span of whole groups is taken, so
/// a card followed by another number is still found.
fn cards(text: &[u8], emit: &mut dyn FnMut(usize, usize)) {
    let mut i = 0;
    while i < text.len() {
        if !text[i].is_ascii_digit() || word_before(text, i) {
            i += 1;
            continue;
        }
        // A bound on the run keeps the search linear; 64 digits hold several cards.
        let groups = digit_run(text, i, b" -", 64);
        let run_end = groups.last().map_or(i + 1, |g| g.1);
        let glued = run_end < text.len() && is_word(text[run_end]);
        let mut first = 0;
        let mut next = run_end;
        while first < groups.len() {
            let found = (first..groups.len()).rev().find(|&last| {
                let digits: usize = groups[first..=last].iter().map(|g| g.1 - g.0).sum();
                (13..=19).contains(&digits)
                    && (b'2'..=b'6').contains(&text[groups[first].0])
                    && !(glued && last == groups.len() - 1)
                    && luhn(groups[first..=last].iter().flat_map(|g| &text[g.0..g.1]))
            });
            match found {
                Some(last) => {
                    emit(groups[first].0, groups[last].1);
                    first = last + 1;
                }
                None => first += 1,
            }
            next = groups.get(first).map_or(run_end, |g| g.0);
        }
        i = next.max(i + 1);
    }
}

/// The Luhn check over ASCII digits.
fn luhn<'a>(digits: impl DoubleEndedIterator<Item = &'a u8>) -> bool {
    let sum: u32 = digits
        .rev()
        .enumerate()
        .map(|(i, d)| {
            let d = u32::from(d - b'0');
            if i % 2 == 1 {
                let doubled = d * 2;
                if doubled > 9 { doubled - 9 } else { doubled }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// Phone numbers: runs of digit groups with a phone's shape (see [`is_phone`]) and 8 to 15
/// digits (E.164's maximum). Within a longer run the longest phone-shaped prefix of whole
/// groups is taken.
fn phones(text: &[u8], emit: &mut dyn FnMut(usize, usize)) {
    let mut i = 0;
    while i < text.len() {
        let c = text[i];
        let opener = (c == b'+' || c == b'(') && text.get(i + 1).is_some_and(u8::is_ascii_digit);
        // After a `+` the run started at the `+`; after `1.` or `1,` it is a fraction.
        let inside = i > 0
            && (text[i - 1] == b'+'
                || (b".,".contains(&text[i - 1]) && i > 1 && text[i - 2].is_ascii_digit()));
        if !(c.is_ascii_digit() || opener) || word_before(text, i) || inside {
            i += 1;
            continue;
        }
        let run = phone_run(text, i);
        let found = (1..=run.groups.len()).rev().find_map(|n| {
            let end = run.ends[n - 1];
            let glued = end < text.len() && is_word(text[end]);
            (!glued && is_phone(text, i, &run, n)).then_some(end)
        });
        match found {
            Some(end) => {
                emit(i, end);
                i = end;
            }
            // Not a phone from here: try again from the run's next group.
            None => i = run.groups.get(1).map_or(i + 1, |g| g.0),
        }
    }
}

/// The most digits of a phone number (E.164), so the most groups of a phone run.
const MAX_PHONE_DIGITS: usize = 15;

/// A phone-like run: an optional `+`, digit groups separated by one of ` -./`, each group
/// optionally in parentheses (`(030) 123`, `+49 (0)30 123`).
struct PhoneRun {
    /// Each group's digits: where they start and end.
    groups: Groups<MAX_PHONE_DIGITS>,
    /// Where each group ends, with its closing parenthesis.
    ends: [usize; MAX_PHONE_DIGITS],
    /// The separator before each group after the first (`)` when there was none).
    separators: [u8; MAX_PHONE_DIGITS],
    /// The digits up to and including each group.
    digits: [usize; MAX_PHONE_DIGITS],
}

fn phone_run(text: &[u8], start: usize) -> PhoneRun {
    let mut run = PhoneRun {
        groups: Groups::new(),
        ends: [0; MAX_PHONE_DIGITS],
        separators: [0; MAX_PHONE_DIGITS],
        digits: [0; MAX_PHONE_DIGITS],
    };
    let mut pos = start + usize::from(text[start] == b'+');
    let mut total = 0;
    loop {
        let open = text.get(pos) == Some(&b'(');
        let from = pos + usize::from(open);
        let mut end = from;
        while end < text.len() && text[end].is_ascii_digit() {
            end += 1;
        }
        if end == from || (open && text.get(end) != Some(&b')')) {
            break;
        }
        total += end - from;
        // More digits are past any phone; the run stops, its prefixes are still candidates.
        // Every group has a digit, so the groups fit.
        let index = run.groups.len;
        if total > MAX_PHONE_DIGITS || !run.groups.push((from, end)) {
            break;
        }
        let close = end + usize::from(open);
        run.ends[index] = close;
        run.digits[index] = total;
        pos = close;
        let next = |at: usize| {
            text.get(at)
                .is_some_and(|b| b.is_ascii_digit() || *b == b'(')
        };
        if open && next(pos) {
            run.separators[index] = b')';
        } else if text.get(pos).is_some_and(|b| b" -./".contains(b)) && next(pos + 1) {
            run.separators[index] = text[pos];
            pos += 1;
        } else {
            break;
        }
    }
    run
}

/// Whether the first `n` groups of `run` (starting at `start`) are a phone number.
fn is_phone(text: &[u8], start: usize, run: &PhoneRun, n: usize) -> bool {
    let digits = run.digits[n - 1];
    if !(8..=MAX_PHONE_DIGITS).contains(&digits) {
        return false;
    }
    let groups = &run.groups[..n];
    let separators = &run.separators[..n - 1];
    let len = |g: &(usize, usize)| g.1 - g.0;
    match text[start] {
        // International: +CC and the subscriber number, however grouped.
        b'+' => true,
        // An area code in parentheses: (030) 1234567, (555) 123-4567.
        b'(' => n >= 2,
        // National with a trunk 0 (030 1234567, 01 23 45 67 89, 0049 30 1234567): the
        // first group is the 0 and more, and either there are groups or it is a mobile-length
        // block. Dates written 01.02.2024 have the same digits and are not phones.
        b'0' => {
            let date = n == 3
                && separators.iter().all(|s| b"./-".contains(s))
                && ((len(&groups[0]) <= 2 && len(&groups[1]) <= 2 && len(&groups[2]) == 4)
                    || (len(&groups[0]) == 4 && len(&groups[1]) <= 2 && len(&groups[2]) <= 2));
            len(&groups[0]) >= 2 && !date && (n >= 2 || (10..=11).contains(&digits))
        }
        // North American: 555-123-4567 or 1-555-123-4567, with an area code from 2.
        _ => {
            let sizes = |expected: &[usize]| groups.iter().map(len).eq(expected.iter().copied());
            let area = if sizes(&[3, 3, 4]) {
                groups[0].0
            } else if text[start] == b'1' && sizes(&[1, 3, 3, 4]) {
                groups[1].0
            } else {
                return false;
            };
            text[area] >= b'2' && separators.iter().all(|s| *s != b'/')
        }
    }
}

/// The placeholders of one request: which value each stands for, and how many values of each
/// kind were found. `Debug` shows the counts only, never a value.
#[derive(Default)]
pub struct Redaction {
    /// Placeholder and original, in the order found.
    entries: Vec<(String, String)>,
    /// `tag \0 canonical value` → entry, so a value written twice (or in another spelling:
    /// an IBAN with and without spaces) gets one placeholder.
    by_value: HashMap<String, usize>,
    by_placeholder: HashMap<String, usize>,
    /// Per tag: occurrences replaced, distinct values.
    counts: BTreeMap<String, (u32, u32)>,
    longest_placeholder: usize,
}

impl fmt::Debug for Redaction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Redaction")
            .field("counts", &self.counts)
            .finish_non_exhaustive()
    }
}

impl Redaction {
    pub fn new() -> Self {
        Self::default()
    }

    /// Nothing was redacted.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Per kind (`EMAIL`, `PHONE`, `IBAN`, `CARD`, a pattern's upper-case name): how many
    /// occurrences were replaced, for the audit's guardrail verdicts. In name order.
    pub fn counts(&self) -> impl Iterator<Item = (&str, u32)> {
        self.counts
            .iter()
            .map(|(tag, (occurrences, _))| (tag.as_str(), *occurrences))
    }

    /// All occurrences replaced.
    pub fn total(&self) -> u32 {
        self.counts
            .values()
            .map(|(occurrences, _)| occurrences)
            .sum()
    }

    fn placeholder(&mut self, tag: &str, canonical: &str, original: &str) -> &str {
        let count = self.counts.entry(tag.to_owned()).or_default();
        count.0 += 1;
        let key = format!("{tag}\0{canonical}");
        let index = match self.by_value.get(&key) {
            Some(&index) => index,
            None => {
                count.1 += 1;
                let placeholder = format!("[{tag}_{}]", count.1);
                let index = self.entries.len();
                self.longest_placeholder = self.longest_placeholder.max(placeholder.len());
                self.by_placeholder.insert(placeholder.clone(), index);
                self.entries.push((placeholder, original.to_owned()));
                self.by_value.insert(key, index);
                index
            }
        };
        &self.entries[index].0
    }

    /// `text` (a model's answer) with each placeholder of this request replaced by its
    /// original value; borrowed when there is none. A placeholder the caller wrote literally
    /// in a prompt is indistinguishable from one the model echoed, and is restored too.
    pub fn restore<'t>(&self, text: &'t str) -> Cow<'t, str> {
        if self.entries.is_empty() || !text.contains('[') {
            return Cow::Borrowed(text);
        }
        let bytes = text.as_bytes();
        let mut out: Option<String> = None;
        let mut last = 0;
        let mut search = 0;
        while let Some(offset) = text[search..].find('[') {
            let open = search + offset;
            let window = &bytes[open..bytes.len().min(open + self.longest_placeholder)];
            let original = window.iter().position(|&b| b == b']').and_then(|close| {
                let entry = self.by_placeholder.get(&text[open..=open + close])?;
                Some((close, &self.entries[*entry].1))
            });
            match original {
                Some((close, original)) => {
                    let out = out.get_or_insert_with(|| String::with_capacity(text.len()));
                    out.push_str(&text[last..open]);
                    out.push_str(original);
                    last = open + close + 1;
                    search = last;
                }
                None => search = open + 1,
            }
        }
        match out {
            None => Cow::Borrowed(text),
            Some(mut out) => {
                out.push_str(&text[last..]);
                Cow::Owned(out)
            }
        }
    }

    /// A restorer for an answer that arrives in chunks: a placeholder split across chunks
    /// (`[EMA` + `IL_1]`) is held back until it is complete.
    pub fn restore_stream(&self) -> RestoreStream<'_> {
        RestoreStream {
            redaction: self,
            held: String::new(),
        }
    }
}

/// See [`Redaction::restore_stream`].
#[derive(Debug)]
pub struct RestoreStream<'r> {
    redaction: &'r Redaction,
    held: String,
}

impl RestoreStream<'_> {
    /// The restored text that can be sent after `chunk` arrived.
    pub fn push(&mut self, chunk: &str) -> String {
        self.held.push_str(chunk);
        // Hold back a trailing `[…` that may still become a placeholder.
        let keep_from = self
            .held
            .rfind('[')
            .filter(|&open| {
                let tail = &self.held[open + 1..];
                self.held.len() - open < self.redaction.longest_placeholder
                    && tail
                        .bytes()
                        .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
            })
            .unwrap_or(self.held.len());
        let rest = self.held.split_off(keep_from);
        let ready = std::mem::replace(&mut self.held, rest);
        self.redaction.restore(&ready).into_owned()
    }

    /// What is still held back when the answer ends.
    pub fn finish(self) -> String {
        self.redaction.restore(&self.held).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(config: RedactionConfig) -> RedactionRules {
        RedactionRules::new(&config).unwrap()
    }

    fn all() -> RedactionRules {
        rules(RedactionConfig::default())
    }

    fn redact(rules: &RedactionRules, text: &str) -> (String, Redaction) {
        let mut redaction = Redaction::new();
        let out = rules.redact(text, &mut redaction).into_owned();
        (out, redaction)
    }

    fn only(kind: &str) -> RedactionRules {
        rules(RedactionConfig {
            email: kind == "email",
            phone: kind == "phone",
            iban: kind == "iban",
            card: kind == "card",
            ..RedactionConfig::default()
        })
    }

    /// Counts the allocations of the current thread, so a test can show that scanning a text
    /// without findings allocates nothing (other tests' threads do not disturb the count).
    struct CountingAllocator;

    thread_local! {
        static ALLOCATIONS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    }

    // SAFETY: every call is forwarded unchanged to the system allocator; the count is a
    // const-initialized thread local, which needs no allocation itself.
    unsafe impl std::alloc::GlobalAlloc for CountingAllocator {
        unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
            ALLOCATIONS.with(|n| n.set(n.get() + 1));
            // SAFETY: the caller's contract is passed on as is.
            unsafe { std::alloc::System.alloc(layout) }
        }

        unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
            // SAFETY: as above.
            unsafe { std::alloc::System.dealloc(ptr, layout) }
        }
    }

    #[global_allocator]
    static ALLOCATOR: CountingAllocator = CountingAllocator;

    #[test]
    fn scanning_a_text_without_findings_allocates_nothing() {
        let rules = rules(RedactionConfig {
            patterns: vec![PatternConfig {
                name: "ticket".into(),
                regex: r"TICKET-\d{6}".into(),
            }],
            ..RedactionConfig::default()
        });
        let text = "Hi @team, order 12345678 of 2024-01-15 (1,250.00 EUR, ref DE00 1234) \
                    ships to +49 30; ticket TICKET-12 and card 4111 1111 1111 1112.\n"
            .repeat(20);
        let mut redaction = Redaction::new();
        // The first call builds the email regex and the regexes' per-thread caches.
        assert!(matches!(
            rules.redact(&text, &mut redaction),
            Cow::Borrowed(_)
        ));
        let before = ALLOCATIONS.with(|n| n.get());
        let out = rules.redact(&text, &mut redaction);
        let after = ALLOCATIONS.with(|n| n.get());
        assert!(matches!(out, Cow::Borrowed(_)));
        assert_eq!(after - before, 0, "allocations while scanning");
        let before = ALLOCATIONS.with(|n| n.get());
        drop(rules.redact("mail ann@example.com", &mut redaction));
        assert!(ALLOCATIONS.with(|n| n.get()) > before, "the counter counts");
    }

    #[test]
    fn text_without_findings_is_borrowed() {
        let mut redaction = Redaction::new();
        let text = "Order 12345 shipped on 2024-01-15 for 1,250.00 EUR; call me maybe.";
        assert!(matches!(
            all().redact(text, &mut redaction),
            Cow::Borrowed(_)
        ));
        assert!(redaction.is_empty());
        assert!(matches!(redaction.restore("[EMAIL_1]"), Cow::Borrowed(_)));
    }

    #[test]
    fn emails_are_replaced_and_the_same_value_keeps_its_placeholder() {
        let (out, redaction) = redact(
            &all(),
            "Write to Jane.Doe+ap@example.co.uk or bob@corp.example.com, cc jane.doe+AP@EXAMPLE.co.uk.",
        );
        assert_eq!(out, "Write to [EMAIL_1] or [EMAIL_2], cc [EMAIL_1].");
        assert_eq!(redaction.counts().collect::<Vec<_>>(), [("EMAIL", 3)]);
        assert_eq!(redaction.total(), 3);
    }

    #[test]
    fn things_that_are_not_emails_stay() {
        for text in ["@handle", "a@b", "user@localhost", "x@y.1"] {
            assert_eq!(redact(&only("email"), text).0, text);
        }
    }

    #[test]
    fn placeholders_are_consistent_across_the_messages_of_a_request() {
        let rules = all();
        let mut redaction = Redaction::new();
        let a = rules
            .redact("from ann@example.com", &mut redaction)
            .into_owned();
        let b = rules
            .redact("to bo@example.com and ann@example.com", &mut redaction)
            .into_owned();
        assert_eq!(a, "from [EMAIL_1]");
        assert_eq!(b, "to [EMAIL_2] and [EMAIL_1]");
    }

    #[test]
    fn phone_numbers_in_common_formats_are_found() {
        let phone = only("phone");
        for number in [
            "+49 30 1234567",
            "+49 (0)30 1234567",
            "+1 (555) 123-4567",
            "+44 20 7946 0958",
            "+33 1 23 45 67 89",
            "+4915112345678",
            "0049 30 1234567",
            "030 1234567",
            "030/1234567",
            "0151-2345678",
            "01 23 45 67 89",
            "020 7946 0958",
            "(030) 1234567",
            "(555) 123-4567",
            "555-123-4567",
            "555.123.4567",
            "1-555-123-4567",
            "01512345678",
        ] {
            let (out, _) = redact(&phone, &format!("call {number}, thanks"));
            assert_eq!(out, "call [PHONE_1], thanks", "{number}");
        }
    }

    #[test]
    fn dates_amounts_ids_and_short_numbers_are_not_phones() {
        let phone = only("phone");
        for text in [
            "on 2024-01-15",
            "on 15.01.2024",
            "on 01.02.2024",
            "on 01/02/2024",
            "total 1,250.00",
            "total 1.250.000,00",
            "total 12 500 000",
            "ratio 0.012345678",
            "ratio 0.0123456789",
            "order 12345678",
            "order 1234567890",
            "call 1234",
            "ext 555-1234",
            "version 10.0.19045.3803",
            "id ABC0301234567",
            "ip 192.168.100.200",
            "+49 30",
        ] {
            assert_eq!(redact(&phone, text).0, text, "{text}");
        }
    }

    #[test]
    fn a_phone_followed_by_other_text_or_numbers() {
        let phone = only("phone");
        assert_eq!(redact(&phone, "(+49 30 1234567)").0, "([PHONE_1])");
        assert_eq!(
            redact(&phone, "0301234567 and 0301234567").0,
            "[PHONE_1] and [PHONE_1]"
        );
        assert_eq!(redact(&phone, "tel:+49301234567.").0, "tel:[PHONE_1].");
    }

    #[test]
    fn valid_ibans_are_found_with_or_without_spaces() {
        let iban = only("iban");
        for (text, expected) in [
            ("IBAN DE89 3704 0044 0532 0130 00.", "IBAN [IBAN_1]."),
            ("IBAN DE89370400440532013000.", "IBAN [IBAN_1]."),
            ("GB29 NWBK 6016 1331 9268 19 please", "[IBAN_1] please"),
            ("fr14 2004 1010 0505 0001 3m02 606", "[IBAN_1]"),
            ("NO9386011117947 ok", "[IBAN_1] ok"),
            // Not in the length table: mod 97 and 15 to 34 characters decide.
            ("SC18SSCB11010000000000001497USD end", "[IBAN_1] end"),
        ] {
            assert_eq!(redact(&iban, text).0, expected, "{text}");
        }
        let (out, redaction) = redact(
            &iban,
            "DE89 3704 0044 0532 0130 00 = DE89370400440532013000",
        );
        assert_eq!(out, "[IBAN_1] = [IBAN_1]", "one value, two spellings");
        assert_eq!(redaction.counts().collect::<Vec<_>>(), [("IBAN", 2)]);
    }

    #[test]
    fn ibans_with_a_wrong_check_or_length_stay() {
        let iban = only("iban");
        for text in [
            "DE88 3704 0044 0532 0130 00",
            "DE89 3704 0044 0532 0130 0",
            "DE89370400440532013000X",
            "XDE89370400440532013000",
            "sc18sscb11010000000000001497usd",
        ] {
            assert_eq!(redact(&iban, text).0, text, "{text}");
        }
    }

    #[test]
    fn cards_passing_luhn_are_found() {
        let card = only("card");
        for number in [
            "4111 1111 1111 1111",
            "4111-1111-1111-1111",
            "4111111111111111",
            "5500 0000 0000 0004",
            "3782 822463 10005",
            "6011000990139424",
            "4222222222222",
        ] {
            let (out, _) = redact(&card, &format!("card: {number}."));
            assert_eq!(out, "card: [CARD_1].", "{number}");
        }
        assert_eq!(
            redact(&card, "4111 1111 1111 1111 2 times").0,
            "[CARD_1] 2 times",
            "the longest valid span of whole groups"
        );
        assert_eq!(
            redact(&card, "4111111111111111 4111-1111-1111-1111").0,
            "[CARD_1] [CARD_1]"
        );
    }

    #[test]
    fn numbers_failing_luhn_or_shape_stay() {
        let card = only("card");
        for text in [
            "4111 1111 1111 1112",
            "411111111111",
            "41111111111111111111",
            "9111111111111111111",
            "4111111111111111x",
            "4111  1111 1111 1111",
        ] {
            assert_eq!(redact(&card, text).0, text, "{text}");
        }
    }

    #[test]
    fn an_iban_is_not_also_a_card_or_a_phone() {
        let (out, redaction) = redact(&all(), "pay DE89 3704 0044 0532 0130 00 now");
        assert_eq!(out, "pay [IBAN_1] now");
        assert_eq!(redaction.counts().collect::<Vec<_>>(), [("IBAN", 1)]);
    }

    #[test]
    fn every_kind_in_one_text() {
        let rules = rules(RedactionConfig {
            patterns: vec![PatternConfig {
                name: "employee_id".into(),
                regex: r"\bEMP-\d{6}\b".into(),
            }],
            ..RedactionConfig::default()
        });
        let (out, redaction) = redact(
            &rules,
            "EMP-123456 (ann@example.com, +49 30 1234567) paid 4111 1111 1111 1111 \
             from DE89370400440532013000",
        );
        assert_eq!(
            out,
            "[EMPLOYEE_ID_1] ([EMAIL_1], [PHONE_1]) paid [CARD_1] from [IBAN_1]"
        );
        assert_eq!(
            redaction.counts().collect::<Vec<_>>(),
            [
                ("CARD", 1),
                ("EMAIL", 1),
                ("EMPLOYEE_ID", 1),
                ("IBAN", 1),
                ("PHONE", 1)
            ]
        );
        let restored = redaction.restore(&out);
        assert_eq!(
            restored,
            "EMP-123456 (ann@example.com, +49 30 1234567) paid 4111 1111 1111 1111 \
             from DE89370400440532013000"
        );
    }

    #[test]
    fn kinds_that_are_off_stay() {
        let rules = rules(RedactionConfig {
            email: false,
            phone: false,
            iban: false,
            card: false,
            ..RedactionConfig::default()
        });
        assert!(!rules.is_active());
        let text = "ann@example.com +49 30 1234567 4111111111111111 DE89370400440532013000";
        assert_eq!(redact(&rules, text).0, text);
    }

    #[test]
    fn restore_puts_back_only_known_placeholders() {
        let (_, redaction) = redact(&all(), "ann@example.com");
        assert_eq!(
            redaction.restore("Dear [EMAIL_1], [EMAIL_2] [email_1] [EMAIL_1"),
            "Dear ann@example.com, [EMAIL_2] [email_1] [EMAIL_1"
        );
    }

    #[test]
    fn a_stream_restores_placeholders_split_across_chunks() {
        let (_, redaction) = redact(&all(), "ann@example.com and DE89370400440532013000");
        let mut stream = redaction.restore_stream();
        let mut out = String::new();
        for chunk in [
            "Mail [EM",
            "AIL_1",
            "] about [",
            "IBAN_1] [not a",
            " placeholder] [IB",
        ] {
            out.push_str(&stream.push(chunk));
        }
        assert!(out.ends_with("placeholder] "), "{out}");
        out.push_str(&stream.finish());
        assert_eq!(
            out,
            "Mail ann@example.com about DE89370400440532013000 [not a placeholder] [IB"
        );
    }

    #[test]
    fn the_debug_form_never_shows_a_value() {
        let (_, redaction) = redact(&all(), "ann@example.com");
        let debug = format!("{redaction:?}");
        assert!(debug.contains("EMAIL") && !debug.contains("ann"), "{debug}");
    }

    #[test]
    fn patterns_are_checked_when_built() {
        let pattern = |name: &str, regex: &str| RedactionConfig {
            patterns: vec![
                PatternConfig {
                    name: "ok".into(),
                    regex: "x".into(),
                },
                PatternConfig {
                    name: name.into(),
                    regex: regex.into(),
                },
            ],
            ..RedactionConfig::default()
        };
        let err = RedactionRules::new(&pattern("ticket", "TICKET-(\\d+")).unwrap_err();
        assert!(
            matches!(&err, RedactError::InvalidRegex { index: 1, name, .. } if name == "ticket"),
            "{err:?}"
        );
        assert_eq!(err.pointer(), "/patterns/1/regex");
        assert!(
            err.to_string()
                .starts_with("pattern \"ticket\" does not compile")
        );
        assert_eq!(err.code(), "config_unprocessable");
        let err = RedactionRules::new(&pattern("huge", r"\w{1000}\w{1000}")).unwrap_err();
        assert!(
            matches!(err, RedactError::RegexTooLarge { index: 1, .. }),
            "{err:?}"
        );
        let err = RedactionRules::new(&pattern("OK", "y")).unwrap_err();
        assert!(
            matches!(err, RedactError::DuplicateName { index: 1, .. }),
            "{err:?}"
        );
        let err = RedactionRules::new(&pattern("email", "y")).unwrap_err();
        assert!(matches!(err, RedactError::DuplicateName { .. }), "{err:?}");
        let err = RedactionRules::new(&pattern("1st", "y")).unwrap_err();
        assert_eq!(err.pointer(), "/patterns/1/name");
    }

    #[test]
    fn a_pattern_that_matches_empty_text_redacts_nothing_empty() {
        let rules = rules(RedactionConfig {
            patterns: vec![PatternConfig {
                name: "code".into(),
                regex: "[0-9]*".into(),
            }],
            ..RedactionConfig::default()
        });
        assert_eq!(redact(&rules, "a 42 b").0, "a [CODE_1] b");
    }

    #[test]
    fn the_config_defaults_to_the_built_in_kinds_without_restore() {
        let config: RedactionConfig = serde_json::from_value(serde_json::json!({})).unwrap();
        assert_eq!(config, RedactionConfig::default());
        assert!(config.email && config.phone && config.iban && config.card && !config.restore);
        let unknown = serde_json::from_value::<RedactionConfig>(serde_json::json!({"mail": true}));
        assert!(unknown.is_err());
        assert!(all().is_active() && !all().restores());
    }

    #[test]
    fn the_published_name_pattern_and_the_check_agree() {
        let schema = serde_json::to_value(schemars::schema_for!(RedactionConfig)).unwrap();
        assert_eq!(schema["additionalProperties"], false);
        let published = &schema["$defs"]["PatternConfig"]["properties"]["name"]["pattern"];
        assert_eq!(published, PATTERN_NAME_PATTERN);
        let regex = Regex::new(PATTERN_NAME_PATTERN).unwrap();
        for name in [
            "a",
            "employee_id",
            "X9",
            "",
            "9x",
            "_x",
            "a-b",
            "é",
            &"a".repeat(33),
        ] {
            assert_eq!(regex.is_match(name), valid_pattern_name(name), "{name:?}");
        }
    }

    #[test]
    fn check_digit_algorithms() {
        assert_eq!(mod97(b"GB82WEST12345698765432"), Some(1));
        assert_ne!(mod97(b"GB82WEST12345698765433"), Some(1));
        assert_eq!(mod97(b"GB82-EST"), None);
        assert!(luhn(b"79927398713".iter()));
        assert!(!luhn(b"79927398710".iter()));
    }

    #[test]
    fn long_noisy_text_is_scanned_in_linear_time() {
        let noise = "1 2 3 4 5 6 7 8 9 0 - . / ( ) + @ ".repeat(20_000);
        let started = std::time::Instant::now();
        let (out, redaction) = redact(&all(), &noise);
        assert!(redaction.is_empty(), "{:?}", redaction);
        assert_eq!(out.len(), noise.len());
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }
}
