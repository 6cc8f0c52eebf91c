//! Step 4: bodies over the limit are refused before any work is done for them. A declared
//! `Content-Length` is checked up front; a chunked body is counted as it streams.

use http::HeaderValue;
use switchyard_contracts::{ErrorCode, Problem};

pub fn check_declared(content_length: Option<&HeaderValue>, max: usize) -> Result<(), Problem> {
    let declared = content_length
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    match declared {
        Some(length) if length > max as u64 => Err(too_large(max)),
        _ => Ok(()),
    }
}

pub fn too_large(max: usize) -> Problem {
    Problem::new(
        ErrorCode::PayloadTooLarge,
        format!("the request body exceeds {max} bytes"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declared_lengths_over_the_limit_are_refused() {
        assert!(check_declared(None, 10).is_ok());
        assert!(check_declared(Some(&HeaderValue::from_static("10")), 10).is_ok());
        assert_eq!(
            check_declared(Some(&HeaderValue::from_static("11")), 10)
                .unwrap_err()
                .code,
            ErrorCode::PayloadTooLarge
        );
    }
}
