//! The names an order gives what it makes in other places: its inventory reference, its
//! ledger journals and its events' ids. Derived from the order id, never drawn, so a retry
//! names the same thing again and the other service answers it as a replay.

use crate::status::Status;

/// The reference the order's inventory movements and events carry.
pub fn reference(order_id: &str) -> String {
    format!("order:{order_id}")
}

/// The ledger journal a fulfilled order posts; its return posts `<this>/return`.
pub fn journal_id(order_id: &str) -> String {
    format!("so/{order_id}")
}

/// The id of the event of `order_id` reaching `state`: derived, not drawn, so the same state
/// change cannot be recorded twice. A name-based UUID keeps it within the outbox's 64 characters
/// whatever the order id.
pub fn event_id(order_id: &str, state: Status) -> String {
    uuid::Uuid::new_v5(&EVENT_NAMESPACE, format!("{order_id}/{state}").as_bytes()).to_string()
}

/// The UUID namespace of the orders' derived event ids.
const EVENT_NAMESPACE: uuid::Uuid =
    uuid::Uuid::from_u128(0x6f72_6465_7273_4000_8000_7377_6974_6368);
