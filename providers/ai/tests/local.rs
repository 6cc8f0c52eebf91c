//! `ai/local` and the model a call names: its one model (per config) is the only one it
//! answers for. The rest of the engine is held to the conformance kit's ai suite.

use std::sync::Arc;

use serde_json::json;
use switchyard_provider_ai::LocalAiFactory;
use switchyard_spi::ErrorCode;
use switchyard_spi::testkit::Harness;

#[tokio::test]
async fn embed_answers_for_its_own_model_only() {
    let acme = Harness::new(Arc::new(LocalAiFactory::new()))
        .tenant("acme")
        .await;
    let own = acme.ok("embed", json!({"texts": ["parcel"]})).await["model"].clone();
    let named = acme
        .ok("embed", json!({"texts": ["parcel"], "model": own}))
        .await;
    assert_eq!(named["model"], own);
    let err = acme
        .err(
            "embed",
            json!({"texts": ["parcel"], "model": "text-embedding-3-small"}),
        )
        .await;
    assert_eq!(err.code, ErrorCode::ParamsUnprocessable, "{err:?}");
    assert_eq!(err.errors[0].pointer, "/model");
}
