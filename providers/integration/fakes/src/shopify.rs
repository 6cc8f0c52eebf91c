//! A fake Shopify Admin REST API (see the crate docs).
