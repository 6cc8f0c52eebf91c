//! What the fake answers, the same for both API families: the echo, its word pieces, the
//! word counts that stand in for tokens, the fault a model name asks for, and embeddings.

use serde_json::Value;

/// The fault a model name asks for, by its last `-` suffix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fault {
    /// Answer this status before any token.
    Status(u16),
    /// Hold the first token back.
    Slow,
    /// Stream two words, then drop the connection.
    Cut,
}

impl Fault {
    pub(crate) fn of(model: &str) -> Option<Fault> {
        let (_, suffix) = model.rsplit_once('-')?;
        Some(match suffix {
            "429" => Fault::Status(429),
            "500" => Fault::Status(500),
            "503" => Fault::Status(503),
            "529" => Fault::Status(529),
            "slow" => Fault::Slow,
            "cut" => Fault::Cut,
            _ => return None,
        })
    }
}

/// The text parts of a message's `content`: the string itself, or the `text` of each part
/// (OpenAI's content parts and Anthropic's content blocks have the same shape for text).
pub(crate) fn texts(content: &Value) -> impl Iterator<Item = &str> {
    let whole = content.as_str();
    let parts = content
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|part| part.get("text").and_then(Value::as_str));
    whole.into_iter().chain(parts)
}

/// Whitespace-separated words: the fake's tokens.
pub(crate) fn words(content: &Value) -> u64 {
    texts(content)
        .map(|text| text.split_whitespace().count() as u64)
        .sum()
}

/// The deterministic answer to one chat request.
pub(crate) struct Echo {
    /// The answer, truncated to `max_tokens` words.
    text: String,
    /// Where each word piece ends in `text`; a piece is a word and the whitespace before it.
    ends: Vec<usize>,
    pub(crate) truncated: bool,
    pub(crate) prompt_tokens: u64,
}

impl Echo {
    /// `"echo: <last user message>"` for `messages` (and Anthropic's `system`, which counts
    /// toward the prompt), at most `max_tokens` words.
    pub(crate) fn new(system: Option<&Value>, messages: &[Value], max_tokens: Option<u64>) -> Echo {
        let prompt_tokens =
            system.map_or(0, words) + messages.iter().map(|m| words(&m["content"])).sum::<u64>();
        let last_user = messages
            .iter()
            .rev()
            .find(|m| m["role"] == "user")
            .map(|m| texts(&m["content"]).collect::<Vec<_>>().join(" "))
            .unwrap_or_default();
        let mut text = format!("echo: {last_user}");
        let mut ends = Vec::new();
        let mut in_word = false;
        for (at, c) in text.char_indices() {
            if c.is_whitespace() {
                if in_word {
                    ends.push(at);
                }
                in_word = false;
            } else {
                in_word = true;
            }
        }
        if in_word {
            ends.push(text.len());
        }
        let limit = max_tokens.map_or(usize::MAX, |m| usize::try_from(m).unwrap_or(usize::MAX));
        let truncated = ends.len() > limit;
        ends.truncate(limit);
        text.truncate(ends.last().copied().unwrap_or(0));
        Echo {
            text,
            ends,
            truncated,
            prompt_tokens,
        }
    }

    pub(crate) fn text(&self) -> &str {
        &self.text
    }

    pub(crate) fn completion_tokens(&self) -> u64 {
        self.ends.len() as u64
    }

    /// The answer one word at a time (the streamed deltas); they concatenate to [`Self::text`].
    pub(crate) fn pieces(&self) -> impl Iterator<Item = &str> {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts
            .zip(self.ends.iter().copied())
            .map(|(start, end)| &self.text[start..end])
    }
}

/// Dimensions of every embedding.
pub(crate) const DIMENSIONS: usize = 8;

/// A unit vector from a hash of `text` (FNV-1a, then splitmix64 per dimension): the same text
/// gives the same vector in every process and build.
pub(crate) fn embedding(text: &str) -> [f32; DIMENSIONS] {
    let mut state = text.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    });
    let mut vector = [0f32; DIMENSIONS];
    for value in &mut vector {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        // The top 24 bits, as a float in [-1, 1).
        *value = (z >> 40) as f32 / (1u64 << 23) as f32 - 1.0;
    }
    let norm = vector.iter().map(|v| v * v).sum::<f32>().sqrt();
    if norm > 0.0 {
        for value in &mut vector {
            *value /= norm;
        }
    }
    vector
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn fake_echo_pieces_concatenate_to_the_text_and_count_its_words() {
        let messages = [
            json!({"role": "user", "content": "first question"}),
            json!({"role": "assistant", "content": "an answer"}),
            json!({"role": "user", "content": [{"type": "text", "text": "  where   is\nit "}]}),
        ];
        let echo = Echo::new(Some(&json!("be brief")), &messages, None);
        assert_eq!(echo.text(), "echo:   where   is\nit");
        assert_eq!(
            echo.pieces().collect::<Vec<_>>(),
            ["echo:", "   where", "   is", "\nit"]
        );
        assert_eq!(echo.completion_tokens(), 4);
        assert_eq!(echo.prompt_tokens, 2 + 2 + 2 + 3);
        assert!(!echo.truncated);

        let short = Echo::new(None, &messages, Some(2));
        assert_eq!(short.text(), "echo:   where");
        assert_eq!(short.completion_tokens(), 2);
        assert!(short.truncated);
    }

    #[test]
    fn fake_faults_key_off_the_last_suffix_only() {
        assert_eq!(Fault::of("gpt-4o-429"), Some(Fault::Status(429)));
        assert_eq!(Fault::of("claude-slow"), Some(Fault::Slow));
        assert_eq!(Fault::of("m-cut"), Some(Fault::Cut));
        assert_eq!(Fault::of("m-429-ok"), None);
        assert_eq!(Fault::of("gpt-4o"), None);
        assert_eq!(Fault::of("slow"), None);
    }

    #[test]
    fn fake_embeddings_are_deterministic_unit_vectors() {
        let a = embedding("order SO-1042");
        assert_eq!(a, embedding("order SO-1042"));
        assert_ne!(a, embedding("order SO-1043"));
        let norm = a.iter().map(|v| v * v).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "{norm}");
    }
}
