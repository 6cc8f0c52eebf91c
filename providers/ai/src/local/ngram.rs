//! The arithmetic of `ai/local`: feature hashing of character n-grams into a fixed number of
//! dimensions, L2-normalised, and cosine similarity between such vectors.
//!
//! A text is lower-cased and split into words at every character that is not alphanumeric.
//! Each word, framed as `<word>`, contributes every character n-gram of the configured sizes,
//! plus the whole word. Each feature is hashed with 64-bit FNV-1a (fixed by its spec, unlike
//! `std`'s hasher, so vectors stay the same across Rust releases and machines): the hash picks
//! a dimension and, from its top bit, a sign, so colliding features tend to cancel rather than
//! pile up. The sums are divided by their L2 norm.
//!
//! Similar spellings get similar vectors ("invoice", "invoices", "invoiced" share most
//! n-grams); meaning does not enter into it ("bill" and "invoice" share none).

/// A configured embedder. Cheap to copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Embedder {
    pub dimensions: usize,
    pub min_n: usize,
    pub max_n: usize,
}

/// Marks whole-word features so they never hash like an n-gram of the same characters.
const WORD: u8 = 0x01;

impl Embedder {
    /// Names the vectors' space: vectors are comparable only under the same name.
    pub fn model(&self) -> String {
        format!(
            "hashed-char-ngram-v1/d{}/n{}-{}",
            self.dimensions, self.min_n, self.max_n
        )
    }

    /// The unit vector of `text`; all zeros when it has no letter or digit.
    pub fn embed(&self, text: &str) -> Vec<f64> {
        let mut vector = vec![0.0; self.dimensions];
        let lowered = text.to_lowercase();
        for word in lowered.split(|c: char| !c.is_alphanumeric()) {
            if word.is_empty() {
                continue;
            }
            self.add(&mut vector, &[&[WORD], word.as_bytes()]);
            let framed: Vec<char> = std::iter::once('<')
                .chain(word.chars())
                .chain(std::iter::once('>'))
                .collect();
            let mut gram = String::new();
            for n in self.min_n..=self.max_n {
                for window in framed.windows(n) {
                    gram.clear();
                    gram.extend(window);
                    self.add(&mut vector, &[gram.as_bytes()]);
                }
            }
        }
        normalise(&mut vector);
        vector
    }

    fn add(&self, vector: &mut [f64], parts: &[&[u8]]) {
        let hash = fnv1a(parts);
        // The modulo of a 64-bit hash by a dimension count ≤ 4096 always fits a usize.
        let index = usize::try_from(hash % self.dimensions as u64).unwrap_or_default();
        vector[index] += if hash >> 63 == 1 { -1.0 } else { 1.0 };
    }
}

/// 64-bit FNV-1a over the concatenated parts.
fn fnv1a(parts: &[&[u8]]) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut hash = OFFSET;
    for byte in parts.iter().flat_map(|part| part.iter()) {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(PRIME);
    }
    hash
}

/// Scales `vector` to length 1; a zero vector stays zero.
pub fn normalise(vector: &mut [f64]) {
    let norm = vector.iter().map(|x| x * x).sum::<f64>().sqrt();
    if norm > 0.0 {
        vector.iter_mut().for_each(|x| *x /= norm);
    }
}

/// The mean direction of unit vectors, itself a unit vector.
pub fn centroid(vectors: &[Vec<f64>], dimensions: usize) -> Vec<f64> {
    let mut sum = vec![0.0; dimensions];
    for vector in vectors {
        sum.iter_mut().zip(vector).for_each(|(s, x)| *s += x);
    }
    normalise(&mut sum);
    sum
}

/// Cosine similarity of two unit (or zero) vectors, in [-1, 1] despite rounding.
pub fn cosine(a: &[f64], b: &[f64]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| x * y)
        .sum::<f64>()
        .clamp(-1.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEFAULT: Embedder = Embedder {
        dimensions: 256,
        min_n: 3,
        max_n: 5,
    };

    #[test]
    fn fnv1a_matches_its_published_test_vectors() {
        assert_eq!(fnv1a(&[b""]), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(&[b"a"]), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(&[b"foo", b"bar"]), 0x85944171f73967e8);
    }

    #[test]
    fn vectors_are_unit_length_and_stable() {
        let v = DEFAULT.embed("Invoice 1042 overdue");
        let norm: f64 = v.iter().map(|x| x * x).sum::<f64>().sqrt();
        assert!((norm - 1.0).abs() < 1e-12, "{norm}");
        assert_eq!(v, DEFAULT.embed("Invoice 1042 overdue"));
        assert_eq!(v, DEFAULT.embed("invoice, 1042 OVERDUE!"));
    }

    #[test]
    fn text_without_words_is_the_zero_vector() {
        assert!(DEFAULT.embed("?! -- ...").iter().all(|x| *x == 0.0));
    }

    #[test]
    fn shared_spelling_is_closer_than_none() {
        let invoice = DEFAULT.embed("invoice overdue");
        let invoices = DEFAULT.embed("invoices overdue");
        let shipping = DEFAULT.embed("parcel shipped");
        assert!(cosine(&invoice, &invoices) > 0.6);
        assert!(cosine(&invoice, &invoices) > cosine(&invoice, &shipping) + 0.3);
    }
}
