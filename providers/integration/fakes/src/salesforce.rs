//! A fake Salesforce REST API (see the crate docs).
