#!/usr/bin/env python3
"""integration/__NAME__: a remote integration provider (trigger, dead_letters, redeliver) that
delivers webhooks signed per Standard Webhooks (webhook-id, webhook-timestamp,
webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">) to the endpoints a tenant
configured. Callers name an endpoint, never a URL. An endpoint on a loopback, private,
link-local or otherwise internal address is refused unless the tenant's `allowed_networks`
contains it — checked at start for an address literal, and at each trigger for a hostname's
resolved addresses, before anything is sent. Server errors, 429 and failed connections are
retried with doubling waits; what still fails (or a 4xx other than 429) becomes a dead letter
that `redeliver` sends again. Messages live in memory: use a durable store for production.

Run: python3 service.py --port 9400 (see switchyard_protocol.py for the protocol).
"""

import base64
import hashlib
import hmac
import ipaddress
import json
import random
import socket
import time
import urllib.error
import urllib.request
import uuid
from datetime import datetime, timezone
from urllib.parse import urlsplit

from switchyard_protocol import Problem, serve

MESSAGES = {}  # (tenant, message_id) -> message
KEYS = {}  # (tenant, idempotency_key) -> message_id
MAX_PAYLOAD = 256 * 1024


def now():
    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")


def internal(address):
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return not ip.is_global or ip.is_multicast


def kind(address):
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return "loopback" if ip.is_loopback else "internal"


class Engine:
    def __init__(self, tenant, config):
        self.tenant = tenant
        self.endpoints = config.get("endpoints", {})
        self.allowed = [ipaddress.ip_network(n, strict=False)
                        for n in config.get("allowed_networks", [])]
        self.max_attempts = config.get("max_attempts", 5)
        self.initial_backoff = config.get("initial_backoff_ms", 500) / 1000
        self.max_backoff = config.get("max_backoff_ms", 30000) / 1000
        self.attempt_timeout = config.get("attempt_timeout_ms", 10000) / 1000
        self.max_total = config.get("max_total_ms", 60000) / 1000
        for name, endpoint in self.endpoints.items():
            host = urlsplit(endpoint["url"]).hostname or ""
            try:
                ipaddress.ip_address(host)
            except ValueError:
                continue  # a hostname: checked when it is resolved, at each trigger
            self.guard(name, [host])

    def guard(self, name, addresses):
        for address in addresses:
            allowed = any(ipaddress.ip_address(address) in n for n in self.allowed
                          if n.version == ipaddress.ip_address(address).version)
            if internal(address) and not allowed:
                raise Problem(403, "egress_forbidden",
                              f"endpoint {name} is on the {kind(address)} address {address}; "
                              "add its network to allowed_networks to reach it",
                              f"/endpoints/{name}/url")

    def send(self, message):
        endpoint = self.endpoints[message["endpoint"]]
        url = urlsplit(endpoint["url"])
        addresses = sorted({a[4][0] for a in socket.getaddrinfo(url.hostname, url.port or 80)})
        self.guard(message["endpoint"], addresses)
        body = json.dumps({"type": message["event_type"], "timestamp": now(),
                           "data": message["payload"]}).encode()
        key = base64.b64decode(endpoint["secret"].removeprefix("whsec_"))
        deadline = time.monotonic() + self.max_total
        wait = self.initial_backoff
        for _ in range(self.max_attempts):
            stamp = str(int(time.time()))
            signed = f"{message['message_id']}.{stamp}.".encode() + body
            signature = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
            request = urllib.request.Request(endpoint["url"], data=body, method="POST", headers={
                "content-type": "application/json", "webhook-id": message["message_id"],
                "webhook-timestamp": stamp, "webhook-signature": "v1," + signature})
            message["attempts"] += 1
            retry_after = None
            try:
                timeout = max(0.001, min(self.attempt_timeout, deadline - time.monotonic()))
                with urllib.request.urlopen(request, timeout=timeout) as answer:
                    message.update(status="delivered", last_status=answer.status)
                    message.pop("last_error", None)
                    return
            except urllib.error.HTTPError as e:
                message.update(last_status=e.code, last_error=f"the receiver answered {e.code}")
                if e.code not in (429, 503) and e.code < 500:
                    break
                retry_after = e.headers.get("retry-after")
            except OSError as e:
                message.pop("last_status", None)
                message["last_error"] = f"no answer: {type(e).__name__}"
            pause = float(retry_after) if retry_after and retry_after.isdigit() else \
                min(wait, self.max_backoff) * (1 + random.random())
            if time.monotonic() + pause >= deadline:
                break
            time.sleep(pause)
            wait *= 2
        message.update(status="dead_lettered", dead_lettered_at=now())

    def delivery(self, message, replayed):
        answer = {k: message[k] for k in ("message_id", "status", "attempts", "last_status",
                                          "last_error") if k in message}
        return dict(answer, replayed=replayed)

    def invoke(self, action, p):
        if action == "trigger":
            if p["endpoint"] not in self.endpoints:
                raise Problem(422, "params_unprocessable",
                              f"no endpoint {p['endpoint']} is configured", "/endpoint")
            if len(json.dumps(p["payload"])) > MAX_PAYLOAD:
                raise Problem(413, "payload_too_large",
                              f"the payload exceeds {MAX_PAYLOAD} bytes", "/payload")
            fields = {k: p[k] for k in ("endpoint", "event_type", "payload")}
            key = p.get("idempotency_key")
            if key is not None and (self.tenant, key) in KEYS:
                first = MESSAGES[(self.tenant, KEYS[(self.tenant, key)])]
                if {k: first[k] for k in fields} != fields:
                    raise Problem(422, "idempotency_key_reused",
                                  "the key was used for another trigger", "/idempotency_key")
                return self.delivery(first, True)
            message = dict(fields, message_id="msg_" + uuid.uuid4().hex, status="pending",
                           attempts=0, created_at=now())
            if key is not None:
                message["idempotency_key"] = key
            self.send(message)
            MESSAGES[(self.tenant, message["message_id"])] = message
            if key is not None:
                KEYS[(self.tenant, key)] = message["message_id"]
            return self.delivery(message, False)
        if action == "dead_letters":
            dead = sorted((m for (t, _), m in MESSAGES.items()
                           if t == self.tenant and m["status"] == "dead_lettered"),
                          key=lambda m: (m["dead_lettered_at"], m["message_id"]))
            start = next((i + 1 for i, m in enumerate(dead)
                          if m["message_id"] == p.get("cursor")), 0) if "cursor" in p else 0
            page = dead[start:start + p["limit"]]
            more = start + p["limit"] < len(dead)
            fields = ("message_id", "endpoint", "event_type", "payload", "idempotency_key",
                      "attempts", "last_status", "last_error", "created_at", "dead_lettered_at")
            return {"dead_letters": [{k: m[k] for k in fields if k in m} for m in page],
                    "next_cursor": page[-1]["message_id"] if more and page else None}
        if action == "redeliver":
            message = MESSAGES.get((self.tenant, p["message_id"]))
            if message is None:
                raise Problem(404, "resource_not_found", f"no message {p['message_id']}",
                              "/message_id")
            if message["status"] == "dead_lettered":
                if message["endpoint"] not in self.endpoints:
                    raise Problem(422, "params_unprocessable",
                                  f"endpoint {message['endpoint']} is no longer configured")
                self.send(message)
            return self.delivery(message, False)
        raise Problem(404, "action_not_found", f"integration/__NAME__ has no action {action}")


if __name__ == "__main__":
    serve("integration/__NAME__", Engine)
