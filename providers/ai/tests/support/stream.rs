//! What the ai engines' tests share: the operator who opens loopback (where the fake and the
//! stubs listen), and a streamed call read to its end.

use futures_util::StreamExt;
use serde_json::Value;
use switchyard_spi::tenancy::EgressCeiling;
use switchyard_spi::testkit::TenantInstance;
use switchyard_spi::{EventStream, Invocation, ProviderError};

/// The egress ceiling of an operator who opens loopback.
pub fn loopback() -> EgressCeiling {
    EgressCeiling {
        allowed_networks: ["127.0.0.0/8", "::1/128"]
            .map(|network| network.parse().unwrap())
            .to_vec(),
        allowed_ports: Vec::new(),
    }
}

/// Opens `action` of `t` as a stream.
pub async fn open(
    t: &TenantInstance,
    action: &str,
    params: Value,
) -> Result<EventStream, ProviderError> {
    let call = Invocation {
        action: action.to_owned(),
        params,
        payload: None,
    };
    t.provider.stream(&t.context(), call).await
}

/// Every item of a stream, to its end.
pub async fn items(stream: EventStream) -> Vec<Result<Value, ProviderError>> {
    stream.collect().await
}

/// A streamed chat read to its end: the chunks before the last, and the last; panics when
/// opening it or any item fails.
pub async fn chat(t: &TenantInstance, params: Value) -> (Vec<String>, Value) {
    let stream = open(t, "chat", params).await.expect("the stream opens");
    let mut chunks: Vec<Value> = items(stream)
        .await
        .into_iter()
        .map(|item| item.expect("every item is a chunk"))
        .collect();
    let last = chunks.pop().expect("a last chunk");
    let deltas = chunks
        .into_iter()
        .map(|chunk| {
            let object = chunk.as_object().unwrap();
            assert_eq!(object.len(), 1, "a piece is only its delta: {chunk}");
            let delta = chunk["delta"].as_str().unwrap().to_owned();
            assert!(!delta.is_empty(), "no piece is empty");
            delta
        })
        .collect();
    (deltas, last)
}
