//! Step 3: what the path asks for, so later steps know whether to authenticate and which
//! scope the request needs. Unknown paths end here with 404.

use http::Method;
use switchyard_contracts::{ErrorCode, Problem};
use switchyard_request::path::Split;
use switchyard_request::{inbound, openai};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `/openapi.json`, `/healthz`: no credentials needed.
    Public,
    /// `GET /providers...`: catalog, descriptor, health, metrics.
    Read,
    /// `POST /providers/{d}/{n}/configure|start|stop`; the config history
    /// (`GET /providers/{d}/{n}/configs`, `POST …/configs/rollback`) and the tenant's secrets
    /// (`GET /secrets`, `PUT /secrets/{name}`), docs/adr/0043.
    Admin,
    /// `POST /providers/{d}/{n}/{action}`, `POST /services/{domain}/{action}`.
    Invoke,
    /// `POST /inbound/{tenant}/integration/{name}`: a third party's webhook, which carries no
    /// Switchyard credentials; the tenant comes from the path ([`super::inbound`]) and the call
    /// runs the engine's `receive`.
    Inbound,
    /// `GET /policies/bundle|revision|decisions[/export]` and `GET /audit/log[/export|/verify]`:
    /// answered by the gateway itself.
    Audit,
    /// `GET /keys`, `POST /keys`, `POST /keys/{id}/revoke`: the tenant's API keys, answered by
    /// the gateway itself.
    Keys,
    /// `/console` and below: the admin console's pages. It signs its users in itself and
    /// reaches everything else through the routes above, under the user's own key.
    Console,
    /// `/providers/register` and `/providers/register/{d}/{n}`: the platform operator's, not a
    /// tenant's. The gateway authenticates no tenant here; the runtime checks the operator's
    /// token (docs/adr/0022) and refuses anything else, a tenant's key included, with 403.
    Operator,
    /// `/admin/...`: the platform operator's plane (tenants, limits, policy data, usage),
    /// answered by the gateway itself with an operator key; no tenant is authenticated and a
    /// tenant's key is refused whatever its scopes ([`crate::admin`]).
    Platform,
}

impl Route {
    /// The scope-checked operation, or `None` for public routes.
    pub fn operation(self) -> Option<RouteOperation> {
        match self {
            Route::Public | Route::Console | Route::Operator | Route::Platform => None,
            Route::Read => Some(RouteOperation::Read),
            Route::Admin => Some(RouteOperation::Admin),
            Route::Invoke | Route::Inbound => Some(RouteOperation::Invoke),
            Route::Audit => Some(RouteOperation::Audit),
            Route::Keys => Some(RouteOperation::Keys),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteOperation {
    Read,
    Admin,
    Invoke,
    Audit,
    Keys,
}

pub fn classify(method: &Method, path: &str) -> Result<Route, Problem> {
    classify_segments(method, path, Split::of(path).as_slice())
}

/// [`classify`] for a path already split (its `segments`).
pub fn classify_segments(method: &Method, path: &str, segments: &[&str]) -> Result<Route, Problem> {
    let route = match segments {
        ["openapi.json"] | ["healthz"] => Route::Public,
        ["providers", "register"] | ["providers", "register", _, _] => Route::Operator,
        ["providers"] | ["providers", _, _] | ["providers", _, _, "health" | "metrics"] => {
            Route::Read
        }
        ["providers", _, _, "configure" | "start" | "stop"] => Route::Admin,
        ["providers", _, _, "configs"] | ["providers", _, _, "configs", "rollback"] => Route::Admin,
        ["secrets"] | ["secrets", _] => Route::Admin,
        ["providers", _, _, _] | ["services", _, _] => Route::Invoke,
        ["policies", "bundle" | "revision" | "decisions"] | ["policies", "decisions", "export"] => {
            Route::Audit
        }
        ["audit", "log"] | ["audit", "log", "export" | "verify"] => Route::Audit,
        ["keys"] | ["keys", _, "revoke"] => Route::Keys,
        ["console", ..] => Route::Console,
        ["admin", ..] => Route::Platform,
        segments if inbound::target(segments).is_some() => Route::Inbound,
        // The OpenAI-compatible surface: runs `ai/gateway`'s actions (`openai::action`).
        segments => match openai::action(segments) {
            Some("models") => Route::Read,
            Some(_) => Route::Invoke,
            None => {
                return Err(Problem::new(
                    ErrorCode::RouteNotFound,
                    format!("no route for {path}"),
                ));
            }
        },
    };
    let expected: &[Method] = match (route, segments) {
        (Route::Public | Route::Read | Route::Audit, _) => &[Method::GET],
        (Route::Keys | Route::Console, [_]) => &[Method::GET, Method::POST],
        (Route::Console, _) => &[Method::GET, Method::POST],
        // The admin module answers 405 per route; these are all the methods it uses.
        (Route::Platform, _) => &[Method::GET, Method::POST, Method::PUT, Method::DELETE],
        (Route::Operator, [_, _]) => &[Method::GET, Method::POST],
        (Route::Operator, _) => &[Method::GET, Method::DELETE],
        (Route::Admin, ["providers", _, _, "configs"] | ["secrets"]) => &[Method::GET],
        (Route::Admin, ["secrets", _]) => &[Method::PUT],
        (Route::Admin | Route::Invoke | Route::Inbound | Route::Keys, _) => &[Method::POST],
    };
    if !expected.contains(method) {
        let names: Vec<&str> = expected.iter().map(Method::as_str).collect();
        return Err(Problem::new(
            ErrorCode::MethodNotAllowed,
            format!("use {} for {path}", names.join(" or ")),
        ));
    }
    Ok(route)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_map_to_routes() {
        let get = Method::GET;
        let post = Method::POST;
        assert_eq!(classify(&get, "/openapi.json").unwrap(), Route::Public);
        assert_eq!(classify(&get, "/providers").unwrap(), Route::Read);
        assert_eq!(classify(&get, "/providers/db/sqlite").unwrap(), Route::Read);
        assert_eq!(
            classify(&get, "/providers/db/sqlite/health").unwrap(),
            Route::Read
        );
        assert_eq!(
            classify(&post, "/providers/db/sqlite/configure").unwrap(),
            Route::Admin
        );
        assert_eq!(
            classify(&post, "/providers/db/sqlite/query").unwrap(),
            Route::Invoke
        );
        for audit in ["/audit/log", "/audit/log/export", "/audit/log/verify"] {
            assert_eq!(classify(&get, audit).unwrap(), Route::Audit, "{audit}");
            assert_eq!(
                classify(&post, audit).unwrap_err().code,
                ErrorCode::MethodNotAllowed
            );
        }
        assert_eq!(
            classify(&get, "/audit/log/other").unwrap_err().code,
            ErrorCode::RouteNotFound
        );
        assert_eq!(classify(&get, "/keys").unwrap(), Route::Keys);
        assert_eq!(classify(&post, "/keys").unwrap(), Route::Keys);
        assert_eq!(classify(&post, "/keys/abc/revoke").unwrap(), Route::Keys);
        assert_eq!(
            classify(&get, "/keys/abc/revoke").unwrap_err().code,
            ErrorCode::MethodNotAllowed
        );
        assert_eq!(classify(&get, "/console").unwrap(), Route::Console);
        assert_eq!(
            classify(&post, "/console/providers/db/sqlite/configure").unwrap(),
            Route::Console
        );
        assert_eq!(Route::Console.operation(), None);
        assert_eq!(
            classify(&post, "/providers/register").unwrap(),
            Route::Operator
        );
        assert_eq!(
            classify(&Method::DELETE, "/providers/register/cache/r").unwrap(),
            Route::Operator
        );
        assert_eq!(
            classify(&post, "/providers/register/cache/r")
                .unwrap_err()
                .code,
            ErrorCode::MethodNotAllowed
        );
        assert_eq!(Route::Operator.operation(), None);
        assert_eq!(
            classify(&post, "/inbound/acme/integration/shopify").unwrap(),
            Route::Inbound
        );
        assert_eq!(
            classify(&get, "/inbound/acme/integration/shopify")
                .unwrap_err()
                .code,
            ErrorCode::MethodNotAllowed
        );
        for elsewhere in [
            "/inbound/acme/db/sqlite",
            "/inbound/acme/integration",
            "/inbound/acme/integration/shopify/x",
        ] {
            assert_eq!(
                classify(&post, elsewhere).unwrap_err().code,
                ErrorCode::RouteNotFound,
                "{elsewhere}"
            );
        }
        assert_eq!(
            classify(&post, "/v1/chat/completions").unwrap(),
            Route::Invoke
        );
        assert_eq!(classify(&post, "/v1/embeddings").unwrap(), Route::Invoke);
        assert_eq!(classify(&get, "/v1/models").unwrap(), Route::Read);
        assert_eq!(
            classify(&get, "/v1/chat/completions").unwrap_err().code,
            ErrorCode::MethodNotAllowed
        );
        assert_eq!(
            classify(&post, "/v1/models").unwrap_err().code,
            ErrorCode::MethodNotAllowed
        );
        assert_eq!(
            classify(&post, "/v1/completions").unwrap_err().code,
            ErrorCode::RouteNotFound
        );
        assert_eq!(classify(&get, "/admin/tenants").unwrap(), Route::Platform);
        assert_eq!(
            classify(&Method::DELETE, "/admin/tenants/acme").unwrap(),
            Route::Platform
        );
        assert_eq!(Route::Platform.operation(), None);
        assert_eq!(
            classify(&Method::PATCH, "/admin/tenants").unwrap_err().code,
            ErrorCode::MethodNotAllowed
        );
        assert_eq!(
            classify(&get, "/providers/db/sqlite/query/x")
                .unwrap_err()
                .code,
            ErrorCode::RouteNotFound
        );
        assert_eq!(
            classify(&get, "/providers/db/sqlite/query")
                .unwrap_err()
                .code,
            ErrorCode::MethodNotAllowed
        );
        assert_eq!(
            classify(&post, "/providers").unwrap_err().code,
            ErrorCode::MethodNotAllowed
        );
    }

    #[test]
    fn config_history_and_secrets_are_admin_routes() {
        let (get, post, put) = (Method::GET, Method::POST, Method::PUT);
        for (method, path) in [
            (&get, "/providers/db/postgres/configs"),
            (&post, "/providers/db/postgres/configs/rollback"),
            (&get, "/secrets"),
            (&put, "/secrets/pg-dsn"),
        ] {
            assert_eq!(
                classify(method, path).unwrap(),
                Route::Admin,
                "{method} {path}"
            );
        }
        for (method, path) in [
            (&post, "/providers/db/postgres/configs"),
            (&get, "/providers/db/postgres/configs/rollback"),
            (&post, "/secrets"),
            (&get, "/secrets/pg-dsn"),
            (&post, "/secrets/pg-dsn"),
        ] {
            assert_eq!(
                classify(method, path).unwrap_err().code,
                ErrorCode::MethodNotAllowed,
                "{method} {path}"
            );
        }
        assert_eq!(
            classify(&put, "/secrets/a/b").unwrap_err().code,
            ErrorCode::RouteNotFound
        );
    }
}
