//! The `annotate` action: the AI provider (`ai/local`, …) tags an order with a category and a
//! risk. [`crate::Annotator`] calls it for every new order it reads from the bus.

use serde_json::{Value, json};
use switchyard_client::ProviderClient;
use switchyard_contracts::{ErrorCode, Problem};
use switchyard_service_kit::{Quantity, clock};

use crate::Orders;
use crate::db::quantity;
use crate::steps::StepState;

impl Orders<'_> {
    /// Classifies the order and stores both tags with an `ok` step, or records the provider's
    /// failure as a `failed` step (the order stays unannotated; annotating again retries).
    pub async fn annotate(&self, order_id: &str) -> Result<Value, Problem> {
        let head = self.require(order_id).await?;
        let Some(ai) = self.ai else {
            return Err(Problem::new(
                ErrorCode::RequestInvalid,
                "the orders service has no AI provider configured",
            ));
        };
        let lines = self.lines(order_id).await?;
        let units: i128 = lines
            .iter()
            .filter_map(|l| quantity(&l.quantity).ok())
            .map(|q| i128::from(q.units()))
            .sum();
        let units = Quantity::format_sum(units);
        let items: Vec<&str> = lines.iter().map(|l| l.item.as_str()).collect();
        let text = format!(
            "order of {units} units in {} lines for customer {} worth {} {}: {}",
            lines.len(),
            head.customer,
            head.total,
            head.currency,
            items.join(", ")
        );
        let category = classify(self.client, ai, &text, CATEGORIES).await;
        let risk = classify(self.client, ai, &text, RISKS).await;
        let now = clock::now();
        match (category, risk) {
            (Ok(category), Ok(risk)) => {
                let statements = vec![
                    self.db.statement(
                        "UPDATE ord_order SET category = ?1, risk = ?2, updated_at = ?3 \
                         WHERE order_id = ?4",
                        vec![json!(category), json!(risk), json!(now), json!(order_id)],
                    ),
                    self.step_statement(
                        order_id,
                        "annotate",
                        StepState::Ok,
                        None,
                        Some(&format!("{category}/{risk}")),
                        &now,
                    ),
                ];
                self.db.transaction(self.client, statements).await?;
            }
            (Err(problem), _) | (_, Err(problem)) => {
                self.record(
                    order_id,
                    "annotate",
                    StepState::Failed,
                    Some(format!("{ai}: {}", problem.detail)),
                    None,
                )
                .await?;
            }
        }
        self.view(order_id, None).await
    }
}

/// Labels with the example texts the classifier compares an order's description to.
type Labels = &'static [(&'static str, &'static [&'static str])];

const CATEGORIES: Labels = &[
    (
        "wholesale",
        &[
            "bulk order of hundreds of units for resale",
            "large pallet quantities for a distributor",
            "trade customer restocking many items",
        ],
    ),
    (
        "retail",
        &[
            "order of 1 units for a private customer",
            "small consumer purchase of a few units",
            "one gift item for a home delivery",
        ],
    ),
];

const RISKS: Labels = &[
    (
        "low",
        &[
            "small routine order from a regular customer",
            "order of a few units worth little",
        ],
    ),
    (
        "high",
        &[
            "very large order worth a fortune from an unknown customer",
            "unusually high quantity rush order of expensive items",
        ],
    ),
];

/// The label the AI provider picks for `text`.
async fn classify(
    client: &dyn ProviderClient,
    ai: &str,
    text: &str,
    labels: Labels,
) -> Result<String, Problem> {
    let labels: Vec<Value> = labels
        .iter()
        .map(|(name, examples)| json!({"name": name, "examples": examples}))
        .collect();
    let answer = client
        .invoke(ai, "classify", json!({"text": text, "labels": labels}))
        .await?;
    answer["label"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| Problem::new(ErrorCode::Internal, format!("{ai} answered no label")))
}
