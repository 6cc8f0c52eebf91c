//! `integration/__NAME__`: an integration provider plugin (trigger, dead_letters, redeliver)
//! that delivers webhooks signed per Standard Webhooks (webhook-id, webhook-timestamp,
//! webhook-signature: `v1,<base64 HMAC-SHA256 of "id.timestamp.body">`) to the endpoints a
//! tenant configured. Callers name an endpoint, never a URL. An endpoint on a loopback,
//! private, link-local or otherwise internal address is refused unless the tenant's
//! `allowed_networks` contains it — at start for an address literal, and at each trigger for a
//! hostname's resolved addresses, before anything is sent. Server errors, 429 and failed
//! connections are retried with doubling waits; what still fails (or a 4xx other than 429)
//! becomes a dead letter that `redeliver` sends again. The skeleton speaks plain HTTP/1.1 over
//! the standard library's TCP (add a TLS client for https) and keeps messages in memory.

use std::collections::BTreeMap;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use switchyard_plugin_abi::{Call, Instance, Plugin, PluginError, export_plugin};

const MAX_PAYLOAD: usize = 256 * 1024;

/// (tenant, message id) → message, a contract dead letter with its `status`.
type Messages = BTreeMap<(String, String), Value>;

pub struct Engine {
    messages: Arc<Mutex<Messages>>,
}

impl Plugin for Engine {
    type Instance = Tenant;

    fn new() -> Self {
        Engine {
            messages: Arc::default(),
        }
    }

    fn descriptor(&self) -> Value {
        json!({
            "domain": "integration",
            "name": "__NAME__",
            "version": env!("CARGO_PKG_VERSION"),
            "summary": "integration/__NAME__: signed webhooks to the tenant's endpoints, retried, dead-lettered (a plugin skeleton)",
            "capabilities": [],
            "actions": ["trigger", "dead_letters", "redeliver"],
            "config_schema": {
                "type": "object",
                "additionalProperties": false,
                "properties": {
                    "endpoints": {
                        "type": "object", "maxProperties": 64,
                        "propertyNames": {"pattern": "^[a-z0-9][a-z0-9_.-]{0,63}$"},
                        "additionalProperties": {
                            "type": "object", "required": ["url", "secret"], "additionalProperties": false,
                            "properties": {
                                "url": {"type": "string", "pattern": "^(https?|secret)://"},
                                "secret": {"type": "string", "pattern": "^secret://", "x-secret": true}
                            }
                        }
                    },
                    "allowed_networks": {"type": "array", "maxItems": 64, "items": {"type": "string", "pattern": "^[0-9a-fA-F.:]+/[0-9]{1,3}$"}},
                    "max_attempts": {"type": "integer", "minimum": 1, "maximum": 20, "default": 5},
                    "initial_backoff_ms": {"type": "integer", "minimum": 1, "maximum": 60000, "default": 500},
                    "max_backoff_ms": {"type": "integer", "minimum": 1, "maximum": 60000, "default": 30000},
                    "attempt_timeout_ms": {"type": "integer", "minimum": 100, "maximum": 25000, "default": 10000},
                    "max_total_ms": {"type": "integer", "minimum": 100, "maximum": 120000, "default": 60000}
                }
            }
        })
    }

    fn start(&self, tenant: &str, config: Value) -> Result<Tenant, PluginError> {
        let ms = |field: &str, default: u64| {
            Duration::from_millis(config[field].as_u64().unwrap_or(default))
        };
        let mut allowed = Vec::new();
        for (i, network) in config["allowed_networks"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
        {
            let parsed = network.as_str().and_then(Network::parse).ok_or_else(|| {
                let pointer = format!("/allowed_networks/{i}");
                PluginError::field("config_invalid", &pointer, "not a CIDR network")
            })?;
            allowed.push(parsed);
        }
        let mut endpoints = BTreeMap::new();
        for (name, endpoint) in config["endpoints"].as_object().into_iter().flatten() {
            let pointer = format!("/endpoints/{name}/url");
            let url =
                Url::parse(endpoint["url"].as_str().unwrap_or_default()).ok_or_else(|| {
                    PluginError::field(
                        "config_invalid",
                        &pointer,
                        "an http:// URL with a host (this skeleton sends no https)",
                    )
                })?;
            let key = endpoint["secret"]
                .as_str()
                .and_then(|s| s.strip_prefix("whsec_"))
                .and_then(|s| STANDARD.decode(s).ok())
                .ok_or_else(|| {
                    let pointer = format!("/endpoints/{name}/secret");
                    PluginError::field("config_invalid", &pointer, "whsec_ and base64")
                })?;
            endpoints.insert(name.clone(), Endpoint { url, key });
        }
        let tenant = Tenant {
            tenant: tenant.to_owned(),
            endpoints,
            allowed,
            max_attempts: config["max_attempts"].as_u64().unwrap_or(5),
            initial_backoff: ms("initial_backoff_ms", 500),
            max_backoff: ms("max_backoff_ms", 30_000),
            attempt_timeout: ms("attempt_timeout_ms", 10_000),
            max_total: ms("max_total_ms", 60_000),
            messages: self.messages.clone(),
        };
        for (name, endpoint) in &tenant.endpoints {
            if let Ok(address) = endpoint.url.host.parse::<IpAddr>() {
                tenant.guard(name, &[address])?;
            }
        }
        Ok(tenant)
    }
}

struct Endpoint {
    url: Url,
    key: Vec<u8>,
}

/// An `http://host[:port]/path` URL.
struct Url {
    host: String,
    port: u16,
    path: String,
}

impl Url {
    fn parse(url: &str) -> Option<Url> {
        let rest = url.strip_prefix("http://")?;
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let (host, port) = match authority.strip_prefix('[') {
            Some(v6) => {
                let (host, after) = v6.split_once(']')?;
                (host, after.strip_prefix(':'))
            }
            None => match authority.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (authority, None),
            },
        };
        let port = port.map_or(Some(80), |p| p.parse().ok())?;
        (!host.is_empty()).then(|| Url {
            host: host.to_owned(),
            port,
            path: if path.is_empty() {
                "/".into()
            } else {
                path.to_owned()
            },
        })
    }
}

/// A CIDR network.
struct Network {
    address: IpAddr,
    prefix: u32,
}

impl Network {
    fn parse(text: &str) -> Option<Network> {
        let (address, prefix) = text.split_once('/')?;
        let address: IpAddr = address.parse().ok()?;
        let prefix: u32 = prefix.parse().ok()?;
        let bits = if address.is_ipv4() { 32 } else { 128 };
        (prefix <= bits).then_some(Network { address, prefix })
    }

    fn contains(&self, address: IpAddr) -> bool {
        let (network, address, width) = match (self.address, address) {
            (IpAddr::V4(n), IpAddr::V4(a)) => (u32::from(n).into(), u32::from(a).into(), 32),
            (IpAddr::V6(n), IpAddr::V6(a)) => (u128::from(n), u128::from(a), 128),
            _ => return false,
        };
        // Shifting the host bits out; a /0 shifts everything out (checked_shr: by 128 is None).
        let host_bits = width - self.prefix;
        network.checked_shr(host_bits).unwrap_or(0) == address.checked_shr(host_bits).unwrap_or(0)
    }
}

/// The address, with an IPv4-mapped IPv6 address read as the IPv4 one; and what kind of
/// internal address it is, `None` for a public one.
fn internal(address: IpAddr) -> (IpAddr, Option<&'static str>) {
    let address = match address {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(address, IpAddr::V4),
        v4 => v4,
    };
    let kind = match address {
        _ if address.is_loopback() => Some("loopback"),
        IpAddr::V4(v4) if v4.is_private() => Some("private"),
        IpAddr::V4(v4) if v4.is_link_local() => Some("link-local"),
        IpAddr::V4(v4) if v4.is_unspecified() || v4.is_broadcast() || v4.is_multicast() => {
            Some("internal")
        }
        IpAddr::V4(v4) if v4.octets()[0] == 100 && (64..128).contains(&v4.octets()[1]) => {
            Some("shared")
        }
        IpAddr::V6(v6) if (v6.segments()[0] & 0xfe00) == 0xfc00 => Some("private"),
        IpAddr::V6(v6) if (v6.segments()[0] & 0xffc0) == 0xfe80 => Some("link-local"),
        IpAddr::V6(v6) if v6.is_unspecified() || v6.is_multicast() => Some("internal"),
        _ => None,
    };
    (address, kind)
}

/// Now as RFC 3339 in UTC, from the days-to-civil algorithm of Howard Hinnant's date
/// library, so the skeleton needs no date crate.
fn now_rfc3339() -> String {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let secs = since.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:06}Z",
        rem / 3_600,
        rem % 3_600 / 60,
        rem % 60,
        since.subsec_micros()
    )
}

/// `msg_` and 32 hex digits no other message of this process has.
fn message_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let random = |salt: u64| {
        let mut hasher = RandomState::new().build_hasher();
        hasher.write_u64(salt);
        hasher.write_u128(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_nanos(),
        );
        hasher.finish()
    };
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("msg_{:016x}{:016x}", random(n), random(!n) ^ n)
}

/// One tenant's endpoints and settings; messages are the engine's, keyed by tenant.
pub struct Tenant {
    tenant: String,
    endpoints: BTreeMap<String, Endpoint>,
    allowed: Vec<Network>,
    max_attempts: u64,
    initial_backoff: Duration,
    max_backoff: Duration,
    attempt_timeout: Duration,
    max_total: Duration,
    messages: Arc<Mutex<Messages>>,
}

/// One attempt's outcome: the status answered, and the Retry-After it asked for.
type Answer = Result<(u16, Option<u64>), String>;

impl Tenant {
    fn guard(&self, name: &str, addresses: &[IpAddr]) -> Result<(), PluginError> {
        for &given in addresses {
            let (address, kind) = internal(given);
            let allowed = self
                .allowed
                .iter()
                .any(|n| n.contains(address) || n.contains(given));
            if let (Some(kind), false) = (kind, allowed) {
                return Err(PluginError::field(
                    "egress_forbidden",
                    &format!("/endpoints/{name}/url"),
                    format!(
                        "endpoint {name} is on the {kind} address {given}; add its network to allowed_networks to reach it"
                    ),
                ));
            }
        }
        Ok(())
    }

    fn attempt(
        &self,
        to: SocketAddr,
        url: &Url,
        headers: &[(String, String)],
        body: &[u8],
        timeout: Duration,
    ) -> Answer {
        let mut stream = TcpStream::connect_timeout(&to, timeout)
            .map_err(|e| format!("no answer: {}", e.kind()))?;
        stream
            .set_read_timeout(Some(timeout))
            .and_then(|()| stream.set_write_timeout(Some(timeout)))
            .map_err(|e| e.to_string())?;
        let mut request = format!(
            "POST {} HTTP/1.1\r\nhost: {}:{}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n",
            url.path,
            url.host,
            url.port,
            body.len()
        );
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str("\r\n");
        stream
            .write_all(request.as_bytes())
            .and_then(|()| stream.write_all(body))
            .map_err(|e| format!("no answer: {}", e.kind()))?;
        let mut answer = Vec::new();
        let mut chunk = [0u8; 4096];
        // The status line and headers are enough; the body is not read.
        while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
            match stream.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => answer.extend_from_slice(&chunk[..n]),
                Err(e) => return Err(format!("no answer: {}", e.kind())),
            }
        }
        let head = String::from_utf8_lossy(&answer);
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or("the receiver's answer is not HTTP")?;
        let retry_after = head.lines().find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("retry-after")
                .then(|| value.trim().parse().ok())?
        });
        Ok((status, retry_after))
    }

    /// Sends `message` until delivered, dead-lettered, or out of attempts or time.
    fn send(&self, message: &mut Value) -> Result<(), PluginError> {
        let name = message["endpoint"].as_str().unwrap_or_default().to_owned();
        let endpoint = &self.endpoints[&name];
        let addresses: Vec<SocketAddr> = (endpoint.url.host.as_str(), endpoint.url.port)
            .to_socket_addrs()
            .map(Iterator::collect)
            .unwrap_or_default();
        let ips: Vec<IpAddr> = addresses.iter().map(SocketAddr::ip).collect();
        self.guard(&name, &ips)?;
        let body = serde_json::to_vec(&json!({
            "type": message["event_type"], "timestamp": now_rfc3339(), "data": message["payload"],
        }))
        .unwrap_or_default();
        let id = message["message_id"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let deadline = Instant::now() + self.max_total;
        let mut wait = self.initial_backoff;
        for _ in 0..self.max_attempts {
            let stamp = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs()
                .to_string();
            let mut mac = Hmac::<Sha256>::new_from_slice(&endpoint.key)
                .map_err(|e| PluginError::new("config_invalid", e.to_string()))?;
            mac.update(format!("{id}.{stamp}.").as_bytes());
            mac.update(&body);
            let signature = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
            let headers = [
                ("webhook-id".to_owned(), id.clone()),
                ("webhook-timestamp".to_owned(), stamp),
                ("webhook-signature".to_owned(), signature),
            ];
            message["attempts"] = json!(message["attempts"].as_u64().unwrap_or(0) + 1);
            let left = deadline.saturating_duration_since(Instant::now());
            let timeout = self.attempt_timeout.min(left).max(Duration::from_millis(1));
            let answer = match addresses.first() {
                Some(&to) => self.attempt(to, &endpoint.url, &headers, &body, timeout),
                None => Err("the endpoint's host does not resolve".to_owned()),
            };
            let mut retry_after = None;
            match answer {
                Ok((status, _)) if (200..300).contains(&status) => {
                    message["status"] = json!("delivered");
                    message["last_status"] = json!(status);
                    if let Some(m) = message.as_object_mut() {
                        m.remove("last_error");
                    }
                    return Ok(());
                }
                Ok((status, after)) => {
                    message["last_status"] = json!(status);
                    message["last_error"] = json!(format!("the receiver answered {status}"));
                    if status < 500 && status != 429 {
                        break;
                    }
                    retry_after = after.map(Duration::from_secs);
                }
                Err(why) => {
                    if let Some(m) = message.as_object_mut() {
                        m.remove("last_status");
                    }
                    message["last_error"] = json!(why);
                }
            }
            let pause = retry_after.unwrap_or_else(|| wait.min(self.max_backoff));
            if Instant::now() + pause >= deadline {
                break;
            }
            std::thread::sleep(pause);
            wait *= 2;
        }
        message["status"] = json!("dead_lettered");
        message["dead_lettered_at"] = json!(now_rfc3339());
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Messages> {
        self.messages.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn delivery(message: &Value, replayed: bool) -> Value {
    let mut answer = json!({
        "message_id": message["message_id"], "status": message["status"],
        "attempts": message["attempts"], "replayed": replayed,
    });
    for field in ["last_status", "last_error"] {
        if let Some(value) = message.get(field) {
            answer[field] = value.clone();
        }
    }
    answer
}

impl Instance for Tenant {
    fn invoke(&self, call: Call) -> Result<Value, PluginError> {
        let p = &call.params;
        match call.action.as_str() {
            "trigger" => {
                let name = p["endpoint"].as_str().unwrap_or_default();
                if !self.endpoints.contains_key(name) {
                    return Err(PluginError::field(
                        "params_unprocessable",
                        "/endpoint",
                        format!("no endpoint {name} is configured"),
                    ));
                }
                if p["payload"].to_string().len() > MAX_PAYLOAD {
                    return Err(PluginError::field(
                        "payload_too_large",
                        "/payload",
                        format!("the payload exceeds {MAX_PAYLOAD} bytes"),
                    ));
                }
                let key = p["idempotency_key"].as_str();
                if let Some(key) = key {
                    let messages = self.lock();
                    let first = messages
                        .range((self.tenant.clone(), String::new())..)
                        .take_while(|((t, _), _)| *t == self.tenant)
                        .map(|(_, m)| m)
                        .find(|m| m["idempotency_key"] == key);
                    if let Some(first) = first {
                        let same = ["endpoint", "event_type", "payload"]
                            .iter()
                            .all(|f| first[*f] == p[*f]);
                        if !same {
                            return Err(PluginError::field(
                                "idempotency_key_reused",
                                "/idempotency_key",
                                "the key was used for another trigger",
                            ));
                        }
                        return Ok(delivery(first, true));
                    }
                }
                let mut message = json!({
                    "message_id": message_id(), "endpoint": name, "event_type": p["event_type"],
                    "payload": p["payload"], "status": "pending", "attempts": 0,
                    "created_at": now_rfc3339(),
                });
                if let Some(key) = key {
                    message["idempotency_key"] = json!(key);
                }
                self.send(&mut message)?;
                let answer = delivery(&message, false);
                let id = message["message_id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                self.lock().insert((self.tenant.clone(), id), message);
                Ok(answer)
            }
            "dead_letters" => {
                let limit = p["limit"].as_u64().unwrap_or(100) as usize;
                let messages = self.lock();
                let mut dead: Vec<&Value> = messages
                    .range((self.tenant.clone(), String::new())..)
                    .take_while(|((t, _), _)| *t == self.tenant)
                    .map(|(_, m)| m)
                    .filter(|m| m["status"] == "dead_lettered")
                    .collect();
                dead.sort_by(|a, b| {
                    (a["dead_lettered_at"].as_str(), a["message_id"].as_str())
                        .cmp(&(b["dead_lettered_at"].as_str(), b["message_id"].as_str()))
                });
                let start = p["cursor"].as_str().map_or(0, |cursor| {
                    dead.iter()
                        .position(|m| m["message_id"] == cursor)
                        .map_or(0, |i| i + 1)
                });
                let page: Vec<Value> = dead
                    .iter()
                    .skip(start)
                    .take(limit)
                    .map(|m| {
                        let mut letter = (*m).clone();
                        if let Some(fields) = letter.as_object_mut() {
                            fields.remove("status");
                        }
                        letter
                    })
                    .collect();
                let more = start + limit < dead.len();
                let next = if more {
                    page.last().map(|m| m["message_id"].clone())
                } else {
                    None
                };
                Ok(json!({"dead_letters": page, "next_cursor": next}))
            }
            "redeliver" => {
                let id = p["message_id"].as_str().unwrap_or_default().to_owned();
                let key = (self.tenant.clone(), id.clone());
                let Some(mut message) = self.lock().get(&key).cloned() else {
                    return Err(PluginError::field(
                        "resource_not_found",
                        "/message_id",
                        format!("no message {id}"),
                    ));
                };
                if message["status"] == "dead_lettered" {
                    let endpoint = message["endpoint"].as_str().unwrap_or_default();
                    if !self.endpoints.contains_key(endpoint) {
                        return Err(PluginError::new(
                            "params_unprocessable",
                            format!("endpoint {endpoint} is no longer configured"),
                        ));
                    }
                    self.send(&mut message)?;
                    self.lock().insert(key, message.clone());
                }
                Ok(delivery(&message, false))
            }
            other => Err(PluginError::new(
                "action_not_found",
                format!("integration/__NAME__ has no action {other:?}"),
            )),
        }
    }
}

export_plugin!(Engine);
