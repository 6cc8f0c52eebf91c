use serde_json::{Value, json};

use crate::Subject;
use crate::storage::{keys_of, put};

pub async fn list_empty_store_is_an_empty_last_page(s: &Subject) {
    let engine = s.name();
    let acme = s.tenant("acme").await;
    let page = acme.ok("list", json!({})).await;
    assert_eq!(
        page,
        json!({"objects": [], "next_cursor": null}),
        "{engine}"
    );
}

pub async fn list_filters_by_string_prefix_in_key_order(s: &Subject) {
    let engine = s.name();
    let acme = s.tenant("acme").await;
    for key in ["abc", "b", "ab/c", "a/ab", "ab-x", "ab/d/e", "aa"] {
        put(&acme, key, key.as_bytes()).await;
    }
    // A string prefix, not a directory: "ab" matches "ab-x" and "abc" as well as "ab/...";
    // '-' < '/' < 'c' in byte order.
    let page = acme.ok("list", json!({"prefix": "ab"})).await;
    assert_eq!(
        keys_of(&page),
        ["ab-x", "ab/c", "ab/d/e", "abc"],
        "{engine}"
    );
    assert_eq!(page["next_cursor"], Value::Null, "{engine}");

    let page = acme.ok("list", json!({"prefix": "ab/"})).await;
    assert_eq!(keys_of(&page), ["ab/c", "ab/d/e"], "{engine}");

    let all = acme.ok("list", json!({})).await;
    assert_eq!(
        keys_of(&all),
        ["a/ab", "aa", "ab-x", "ab/c", "ab/d/e", "abc", "b"],
        "{engine}"
    );
    let page = acme.ok("list", json!({"prefix": "zz"})).await;
    assert!(keys_of(&page).is_empty(), "{engine}");
}

pub async fn list_reports_the_same_metadata_as_head(s: &Subject) {
    let engine = s.name();
    let acme = s.tenant("acme").await;
    put(&acme, "x/one", b"1").await;
    put(&acme, "x/three", b"333").await;
    let page = acme.ok("list", json!({"prefix": "x/"})).await;
    for object in page["objects"].as_array().expect("array") {
        let head = acme.ok("head", json!({"key": object["key"]})).await;
        assert_eq!(object, &head, "{engine}");
    }
    assert_eq!(page["objects"][1]["size"], 3, "{engine}");
}

pub async fn list_paginates_across_three_pages(s: &Subject) {
    let engine = s.name();
    let acme = s.tenant("acme").await;
    let keys = ["p/1", "p/2", "p/3", "p/4/a", "p/4/b", "p/5", "p/6"];
    for key in keys.iter().rev() {
        put(&acme, key, b"x").await;
    }
    put(&acme, "q/outside-prefix", b"x").await;

    let mut pages = Vec::new();
    let mut params = json!({"prefix": "p/", "limit": 3});
    loop {
        let page = acme.ok("list", params.clone()).await;
        pages.push(keys_of(&page));
        match &page["next_cursor"] {
            Value::Null => break,
            Value::String(cursor) => {
                assert_eq!(
                    Some(cursor),
                    pages.last().and_then(|p| p.last()),
                    "{engine}: next_cursor is the page's last key"
                );
                params["cursor"] = json!(cursor);
            }
            other => panic!("{engine}: next_cursor {other}"),
        }
        assert!(pages.len() <= 3, "{engine}: more than 3 pages");
    }
    assert_eq!(
        pages,
        [
            vec!["p/1", "p/2", "p/3"],
            vec!["p/4/a", "p/4/b", "p/5"],
            vec!["p/6"]
        ],
        "{engine}"
    );
}

pub async fn list_full_last_page_has_no_cursor(s: &Subject) {
    let engine = s.name();
    let acme = s.tenant("acme").await;
    for key in ["k1", "k2", "k3", "k4"] {
        put(&acme, key, b"x").await;
    }
    let first = acme.ok("list", json!({"limit": 2})).await;
    assert_eq!(first["next_cursor"], "k2", "{engine}");
    let last = acme.ok("list", json!({"limit": 2, "cursor": "k2"})).await;
    assert_eq!(keys_of(&last), ["k3", "k4"], "{engine}");
    assert_eq!(last["next_cursor"], Value::Null, "{engine}");
}

pub async fn list_starts_strictly_after_the_cursor(s: &Subject) {
    let engine = s.name();
    let acme = s.tenant("acme").await;
    for key in ["a", "b", "ba/x", "c"] {
        put(&acme, key, b"x").await;
    }
    // An existing key is excluded; a cursor between keys starts at the next one.
    let page = acme.ok("list", json!({"cursor": "b"})).await;
    assert_eq!(keys_of(&page), ["ba/x", "c"], "{engine}");
    let page = acme.ok("list", json!({"cursor": "bb"})).await;
    assert_eq!(keys_of(&page), ["c"], "{engine}");
    let page = acme.ok("list", json!({"cursor": "ba/"})).await;
    assert_eq!(keys_of(&page), ["ba/x", "c"], "{engine}");
    let page = acme.ok("list", json!({"cursor": "c"})).await;
    assert!(keys_of(&page).is_empty(), "{engine}");
    // Cursor and prefix combine.
    let page = acme.ok("list", json!({"cursor": "a", "prefix": "b"})).await;
    assert_eq!(keys_of(&page), ["b", "ba/x"], "{engine}");
}
