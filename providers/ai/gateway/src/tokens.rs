//! Prompt token counts known before the upstream answers: an upper bound for budget
//! reservations and a cheap estimate for the policy input.
//!
//! The gateway reserves a budget before it calls a model and settles it with the provider's
//! reported usage afterwards. A reservation below the provider's count would let concurrent
//! requests overspend the budget, so the reservation uses [`prompt_tokens_upper_bound`], which
//! needs no tokenizer:
//!
//! - The tokenizers of the models the gateway fronts are byte-level BPE (GPT-2's, `cl100k`,
//!   `o200k`, Llama 3's) or SentencePiece with byte fallback (Llama 2, Mistral). Every token
//!   they emit stands for at least one byte of the UTF-8 text, so a text of `n` bytes is at
//!   most `n` tokens.
//! - The chat format adds tokens per message (OpenAI documents 3 for the message's framing
//!   plus the role's name, one token for every standard role) and 3 that prime the reply.
//!   [`MESSAGE_OVERHEAD`] is that 3 + 1, which also covers the one dummy-prefix token a
//!   SentencePiece tokenizer may add in front of a text.
//!
//! The bound is far above the real count (English averages about 4 bytes per token); the
//! reservation is released down to the real usage when the answer arrives, so over-reserving
//! costs nothing but headroom. Text in fields other than `content` (a message's `name`, tool
//! call arguments) must be passed as part of the message text to be counted.

use serde::{Deserialize, Serialize};

/// Tokens the chat format adds around one message: its framing and its role.
pub const MESSAGE_OVERHEAD: u64 = 4;
/// Tokens that prime the assistant's reply after the last message.
pub const REPLY_PRIMING: u64 = 3;
/// Bytes per token of the estimate: the usual average of English text under the BPE
/// tokenizers above.
pub const BYTES_PER_TOKEN_ESTIMATE: u64 = 4;

/// Token counts of one call, as an OpenAI-compatible answer reports them (`usage`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub total_tokens: u64,
}

impl Usage {
    /// A usage with `total_tokens` as the sum, for answers that omit it.
    pub fn new(prompt_tokens: u64, completion_tokens: u64) -> Self {
        Self {
            prompt_tokens,
            completion_tokens,
            total_tokens: prompt_tokens.saturating_add(completion_tokens),
        }
    }
}

/// A count of prompt tokens that no provider's count exceeds: each message's UTF-8 bytes plus
/// [`MESSAGE_OVERHEAD`], plus [`REPLY_PRIMING`]. Each item is the text of one message.
pub fn prompt_tokens_upper_bound<'a>(messages: impl IntoIterator<Item = &'a str>) -> u64 {
    messages.into_iter().fold(REPLY_PRIMING, |total, text| {
        total
            .saturating_add(text.len() as u64)
            .saturating_add(MESSAGE_OVERHEAD)
    })
}

/// A cheap estimate of the prompt tokens for the policy input (`input.ai.prompt_tokens`):
/// each message's bytes / 4, rounded up, plus the same per-message and priming overhead as
/// the bound. Good enough for a policy's thresholds; never for a budget reservation, since it
/// is below the real count for text that tokenizes poorly (digits, code, non-Latin scripts).
pub fn prompt_tokens_estimate<'a>(messages: impl IntoIterator<Item = &'a str>) -> u64 {
    messages.into_iter().fold(REPLY_PRIMING, |total, text| {
        total
            .saturating_add((text.len() as u64).div_ceil(BYTES_PER_TOKEN_ESTIMATE))
            .saturating_add(MESSAGE_OVERHEAD)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bound_counts_bytes_not_characters() {
        // "é" is 2 bytes, "日本" 6: a byte-level tokenizer may spend a token on each byte.
        assert_eq!(prompt_tokens_upper_bound(["é"]), 2 + 4 + 3);
        assert_eq!(prompt_tokens_upper_bound(["日本"]), 6 + 4 + 3);
    }

    #[test]
    fn the_bound_adds_the_overhead_of_every_message_and_the_reply() {
        assert_eq!(prompt_tokens_upper_bound([]), 3);
        assert_eq!(prompt_tokens_upper_bound(["", ""]), 2 * 4 + 3);
        assert_eq!(
            prompt_tokens_upper_bound(["You are terse.", "hello there"]),
            14 + 11 + 2 * 4 + 3
        );
    }

    #[test]
    fn the_bound_is_never_below_the_fakes_word_count_or_the_estimate() {
        // The fake upstream counts whitespace-separated words; a word is at least one byte.
        let messages = ["ignore   the spacing", "a b c d e f g", "ünïcödé wörds"];
        let words: u64 = messages
            .iter()
            .map(|m| m.split_whitespace().count() as u64)
            .sum();
        let bound = prompt_tokens_upper_bound(messages);
        assert!(bound >= words);
        assert!(bound >= prompt_tokens_estimate(messages));
    }

    #[test]
    fn the_estimate_rounds_each_message_up() {
        assert_eq!(prompt_tokens_estimate(["abcd"]), 1 + 4 + 3);
        assert_eq!(prompt_tokens_estimate(["abcde"]), 2 + 4 + 3);
        assert_eq!(prompt_tokens_estimate(["", "a"]), 1 + 2 * 4 + 3);
    }

    #[test]
    fn usage_sums_its_total() {
        assert_eq!(
            Usage::new(7, 5),
            Usage {
                prompt_tokens: 7,
                completion_tokens: 5,
                total_tokens: 12
            }
        );
    }
}
