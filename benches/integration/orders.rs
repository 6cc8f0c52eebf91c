//! Shopify-order-like records for the mapping bench: the shape of the Admin API's order
//! (shopify.dev's example order: customer, both addresses, line items with tax lines, price
//! sets, shipping lines, discount codes), about 4 KiB of JSON each, varied by `n` so no two
//! records are the same.

use serde_json::{Value, json};

fn money(amount: &str) -> Value {
    json!({"shop_money": {"amount": amount, "currency_code": "USD"},
           "presentment_money": {"amount": amount, "currency_code": "USD"}})
}

fn address(n: u64, kind: &str) -> Value {
    let cities = ["Ottawa", "Berlin", "Lyon", "Osaka", "Austin", "Porto"];
    let countries = [
        ("Canada", "CA"),
        ("Germany", "DE"),
        ("France", "FR"),
        ("Japan", "JP"),
    ];
    let (country, code) = countries[(n % 4) as usize];
    json!({
        "first_name": format!("Bob{n}"),
        "last_name": "Norman",
        "name": format!("Bob{n} Norman"),
        "address1": format!("{} {kind} Street", 1 + n % 900),
        "address2": null,
        "city": cities[(n % 6) as usize],
        "province": "Ontario",
        "province_code": "ON",
        "zip": format!("K2P {}", n % 10),
        "country": country,
        "country_code": code,
        "phone": format!("+1 555-01{:02}", n % 100),
        "company": null,
        "latitude": 45.41634 + (n % 100) as f64 / 1000.0,
        "longitude": -75.6868
    })
}

fn line_item(order: u64, i: u64) -> Value {
    let price = format!("{}.{:02}", 10 + (order + i) % 190, (order * 7 + i) % 100);
    json!({
        "id": order * 10 + i,
        "admin_graphql_api_id": format!("gid://shopify/LineItem/{}", order * 10 + i),
        "product_id": 632_910_392 + (order + i) % 500,
        "variant_id": 808_950_810 + (order + i) % 1500,
        "title": format!("Product {}", (order + i) % 500),
        "variant_title": if i.is_multiple_of(2) { Value::from("Green") } else { Value::Null },
        "name": format!("Product {} - Green", (order + i) % 500),
        "sku": format!("SKU-{:05}", (order + i) % 1500),
        "vendor": "Apple",
        "quantity": 1 + (order + i) % 4,
        "price": price,
        "price_set": money(&price),
        "total_discount": "0.00",
        "grams": 567,
        "requires_shipping": true,
        "taxable": true,
        "gift_card": false,
        "fulfillable_quantity": 1,
        "fulfillment_service": "manual",
        "fulfillment_status": null,
        "properties": [{"name": "Custom Engraving", "value": format!("No. {order}")}],
        "tax_lines": [{"title": "State Tax", "price": "3.98", "rate": 0.06, "price_set": money("3.98")}],
        "discount_allocations": []
    })
}

const FINANCIAL_STATUSES: [&str; 3] = ["paid", "pending", "refunded"];

/// Order `n`: the same shape every time, different values.
pub fn order(n: u64) -> Value {
    let id = 450_789_469 + n;
    let at = format!(
        "2026-0{}-{:02}T{:02}:{:02}:{:02}-05:00",
        1 + n % 9,
        1 + n % 28,
        n % 24,
        n % 60,
        (n * 7) % 60
    );
    let total = format!("{}.{:02}", 100 + n % 900, n % 100);
    json!({
        "id": id,
        "admin_graphql_api_id": format!("gid://shopify/Order/{id}"),
        "app_id": null,
        "browser_ip": "0.0.0.0",
        "buyer_accepts_marketing": n.is_multiple_of(2),
        "cancel_reason": null,
        "cancelled_at": null,
        "cart_token": format!("68778783ad298f1c80c3bafcddeea02f{n}"),
        "checkout_id": 901_414_060 + n,
        "checkout_token": format!("bd5a8aa1ecd019dd3520ff791ee3a24c{n}"),
        "closed_at": null,
        "confirmed": true,
        "contact_email": format!("Bob.Norman{n}@Mail.Example.COM"),
        "created_at": at,
        "currency": "USD",
        "current_subtotal_price": total,
        "current_total_discounts": "0.00",
        "current_total_price": total,
        "current_total_tax": "11.94",
        "customer_locale": "en",
        "discount_codes": [{"code": "TENOFF", "amount": "10.00", "type": "fixed_amount"}],
        "email": format!("Bob.Norman{n}@Mail.Example.COM"),
        "estimated_taxes": false,
        "financial_status": FINANCIAL_STATUSES[(n % 3) as usize],
        "fulfillment_status": null,
        "landing_site": "http://www.example.com?source=abc",
        "name": format!("#{}", 1001 + n),
        "note": null,
        "note_attributes": [{"name": "custom engraving", "value": "Happy Birthday"}],
        "number": 1 + n,
        "order_number": 1001 + n,
        "order_status_url": format!("https://apple.myshopify.com/690933842/orders/{n}/authenticate"),
        "payment_gateway_names": ["bogus"],
        "phone": "+557734881234",
        "presentment_currency": "USD",
        "processed_at": at,
        "reference": "fhwdgads",
        "referring_site": "http://www.otherexample.com",
        "source_name": "web",
        "subtotal_price": total,
        "subtotal_price_set": money(&total),
        "tags": "imported, vip",
        "tax_lines": [{"price": "11.94", "rate": 0.06, "title": "State Tax", "price_set": money("11.94")}],
        "taxes_included": false,
        "test": false,
        "token": format!("b1946ac92492d2347c6235b4d2611184{n}"),
        "total_discounts": "0.00",
        "total_line_items_price": total,
        "total_price": total,
        "total_price_set": money(&total),
        "total_shipping_price_set": money("0.00"),
        "total_tax": "11.94",
        "total_weight": 0,
        "updated_at": at,
        "user_id": null,
        "billing_address": address(n, "Billing"),
        "shipping_address": address(n + 1, "Shipping"),
        "customer": {
            "id": 207_119_551 + n % 10_000,
            "email": format!("bob.norman{n}@mail.example.com"),
            "accepts_marketing": false,
            "created_at": at,
            "updated_at": at,
            "first_name": format!("Bob{n}"),
            "last_name": "Norman",
            "state": "disabled",
            "note": null,
            "verified_email": true,
            "tax_exempt": false,
            "phone": "+16136120707",
            "tags": "",
            "currency": "USD",
            "default_address": address(n, "Default")
        },
        "line_items": (0..3).map(|i| line_item(n, i)).collect::<Vec<_>>(),
        "shipping_lines": [{
            "id": 369_256_396 + n,
            "carrier_identifier": null,
            "code": "Free Shipping",
            "price": "0.00",
            "price_set": money("0.00"),
            "source": "shopify",
            "title": "Free Shipping",
            "tax_lines": []
        }],
        "refunds": [],
        "fulfillments": []
    })
}
