//! The states of an order and the one table of the moves between them.
//!
//! `created → confirmed → fulfilling → fulfilled → returning → returned`, and
//! `created | confirmed → cancelled`. The `-ing` states are held while a saga (fulfil,
//! return) runs its steps; calling the action again resumes it there. Every state a caller can
//! see as final writes its event in the transaction that reaches it.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{ORDER_CANCELLED, ORDER_CONFIRMED, ORDER_FULFILLED, ORDER_RETURNED};

/// Where an order is. Stored, shown and written into events as its lowercase name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Created,
    Confirmed,
    Fulfilling,
    Fulfilled,
    Cancelled,
    Returning,
    Returned,
}

impl Status {
    const ALL: [Status; 7] = [
        Status::Created,
        Status::Confirmed,
        Status::Fulfilling,
        Status::Fulfilled,
        Status::Cancelled,
        Status::Returning,
        Status::Returned,
    ];

    /// The name the tables and the contract use (what serde writes).
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Confirmed => "confirmed",
            Status::Fulfilling => "fulfilling",
            Status::Fulfilled => "fulfilled",
            Status::Cancelled => "cancelled",
            Status::Returning => "returning",
            Status::Returned => "returned",
        }
    }

    /// The status stored as `name`, if it is one.
    pub fn parse(name: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What moves an order: a caller's action, or a saga reaching its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Move {
    Confirm,
    Cancel,
    Fulfil,
    /// Fulfilment's last step succeeded.
    Complete,
    Return,
    /// The return's last step succeeded.
    CompleteReturn,
}

/// One legal transition: from one of `from` to `to`, writing `event` (a CloudEvents type) in
/// the same transaction when it has one.
pub struct Transition {
    pub from: &'static [Status],
    pub to: Status,
    pub event: Option<&'static str>,
}

impl Move {
    /// The name a conflict message gives the move.
    pub fn name(self) -> &'static str {
        match self {
            Move::Confirm => "confirm",
            Move::Cancel => "cancel",
            Move::Fulfil => "fulfil",
            Move::Complete => "complete",
            Move::Return => "return",
            Move::CompleteReturn => "complete_return",
        }
    }

    /// The state machine: every legal transition is here, and nowhere else; any other is a
    /// `conflict`.
    pub fn transition(self) -> Transition {
        use Status::*;
        let (from, to, event): (&'static [Status], _, _) = match self {
            Move::Confirm => (&[Created], Confirmed, Some(ORDER_CONFIRMED)),
            Move::Cancel => (&[Created, Confirmed], Cancelled, Some(ORDER_CANCELLED)),
            Move::Fulfil => (&[Confirmed], Fulfilling, None),
            Move::Complete => (&[Fulfilling], Fulfilled, Some(ORDER_FULFILLED)),
            Move::Return => (&[Fulfilled], Returning, None),
            Move::CompleteReturn => (&[Returning], Returned, Some(ORDER_RETURNED)),
        };
        Transition { from, to, event }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_transition_is_explicit() {
        let next = |action: Move, from: Status| {
            let t = action.transition();
            t.from.contains(&from).then_some(t.to)
        };
        assert_eq!(
            next(Move::Confirm, Status::Created),
            Some(Status::Confirmed)
        );
        assert_eq!(
            next(Move::Fulfil, Status::Confirmed),
            Some(Status::Fulfilling)
        );
        assert_eq!(next(Move::Fulfil, Status::Created), None);
        assert_eq!(next(Move::Cancel, Status::Fulfilled), None);
        assert_eq!(next(Move::Cancel, Status::Fulfilling), None);
        assert_eq!(next(Move::Confirm, Status::Cancelled), None);
        assert_eq!(
            next(Move::Return, Status::Fulfilled),
            Some(Status::Returning)
        );
        assert_eq!(next(Move::Return, Status::Confirmed), None);
        // Every state a caller can see as final writes its event; the in-between ones do not.
        assert_eq!(Move::Complete.transition().event, Some(ORDER_FULFILLED));
        assert_eq!(
            Move::CompleteReturn.transition().event,
            Some(ORDER_RETURNED)
        );
        assert_eq!(Move::Fulfil.transition().event, None);
    }

    #[test]
    fn a_status_is_stored_and_serialized_as_the_same_lowercase_name() {
        for status in Status::ALL {
            assert_eq!(json!(status), json!(status.as_str()));
            assert_eq!(
                serde_json::from_value::<Status>(json!(status.as_str())).unwrap(),
                status
            );
            assert_eq!(Status::parse(status.as_str()), Some(status));
        }
        assert_eq!(Status::parse("shipped"), None);
    }
}
