//! The orders service in process on db/sqlite, composed with the real inventory and ledger
//! services, the real `integration/webhook` provider delivering to a loopback receiver, and
//! `ai/local`; every call checked against the orders contract like the runtime checks it.

mod flows;
mod lifecycle;
mod property;
mod receiver;
mod support;
