#!/usr/bin/env python3
"""cache/example-remote: a cache provider as an out-of-process service (Python, standard
library only), reached by the Switchyard runtime through its manifest (manifest.json).

The protocol (docs/write-a-provider.md, "Remote providers"):
  POST /start   {"tenant", "config"}            -> {"data": {"instance": id}}
  POST /stop    {"tenant", "instance"}          -> {"data": {}}
  POST /<action> {"params", "metadata": {"instance"}} with X-Tenant-Id -> {"data": ...}
  GET  /health                                  -> {"status", "dependencies"}
Errors are application/problem+json with a contract code. With REMOTE_PROVIDER_TOKEN set,
every request must carry "Authorization: Bearer <that token>".

Run: python3 cache_service.py --port 9400
"""

import argparse
import hmac
import json
import os
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

I64_MAX = 2**63 - 1
I64_MIN = -(2**63)
LOCK = threading.Lock()
STORE = {}  # (tenant, key) -> (value, expires_at or None): one map, keys carry their tenant
INSTANCES = {}  # instance id -> (tenant, config)
TOKEN = os.environ.get("REMOTE_PROVIDER_TOKEN")


class Problem(Exception):
    def __init__(self, status, code, detail, pointer=None):
        super().__init__(detail)
        self.status, self.code, self.detail, self.pointer = status, code, detail, pointer

    def body(self):
        errors = [{"pointer": self.pointer, "detail": self.detail}] if self.pointer else []
        return {"type": "urn:switchyard:problem:" + self.code, "title": self.code,
                "status": self.status, "code": self.code, "detail": self.detail,
                "retryable": False, "errors": errors}


def size(value):
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())


def live(entry, now):
    return entry is not None and (entry[1] is None or entry[1] > now)


class Instance:
    def __init__(self, tenant, config):
        self.tenant = tenant
        self.default_ttl_ms = config.get("default_ttl_ms")
        self.max_value_bytes = config.get("max_value_bytes", 1024 * 1024)

    def deadline(self, ttl_ms):
        ttl = ttl_ms if ttl_ms is not None else self.default_ttl_ms
        return None if ttl is None else time.monotonic() + ttl / 1000.0

    def check_size(self, pointer, value):
        n = size(value)
        if n > self.max_value_bytes:
            raise Problem(413, "payload_too_large",
                          f"value is {n} bytes; this tenant's limit is {self.max_value_bytes}", pointer)

    def read(self, key):
        entry = STORE.get((self.tenant, key))
        if live(entry, time.monotonic()):
            return {"key": key, "found": True, "value": entry[0]}
        return {"key": key, "found": False, "value": None}

    def invoke(self, action, p):
        with LOCK:
            if action == "get":
                return self.read(p["key"])
            if action == "set":
                self.check_size("/value", p["value"])
                STORE[(self.tenant, p["key"])] = (p["value"], self.deadline(p.get("ttl_ms")))
                return {"key": p["key"]}
            if action == "delete":
                entry = STORE.pop((self.tenant, p["key"]), None)
                return {"deleted": live(entry, time.monotonic())}
            if action == "mget":
                return {"entries": [self.read(k) for k in p["keys"]]}
            if action == "mset":
                for i, e in enumerate(p["entries"]):
                    self.check_size(f"/entries/{i}/value", e["value"])
                for e in p["entries"]:
                    STORE[(self.tenant, e["key"])] = (e["value"], self.deadline(e.get("ttl_ms")))
                return {"stored": len(p["entries"])}
            if action == "incr":
                now = time.monotonic()
                entry = STORE.get((self.tenant, p["key"]))
                ttl_ms = p.get("ttl_ms")
                if not live(entry, now):
                    base, expires = 0, self.deadline(ttl_ms)
                else:
                    base = entry[0]
                    if isinstance(base, bool) or not isinstance(base, int):
                        raise Problem(409, "conflict", "the key holds a value that is not an integer")
                    expires = now + ttl_ms / 1000.0 if ttl_ms is not None else entry[1]
                value = base + p.get("by", 1)
                if not I64_MIN <= value <= I64_MAX:
                    raise Problem(409, "conflict", "increment would overflow a 64-bit integer")
                STORE[(self.tenant, p["key"])] = (value, expires)
                return {"key": p["key"], "value": value}
            if action == "delete_prefix":
                now = time.monotonic()
                doomed = [k for k in STORE if k[0] == self.tenant and k[1].startswith(p["prefix"])]
                deleted = sum(1 for k in doomed if live(STORE.pop(k), now))
                return {"deleted": deleted}
        raise Problem(404, "action_not_found", f"cache/example-remote has no action {action}")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body in one segment, sent at once: without these, Nagle and delayed ACKs
    # add ~40 ms to every answer.
    wbufsize = -1
    disable_nagle_algorithm = True

    def log_message(self, *args):
        pass

    def answer(self, status, body, problem=False):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/problem+json" if problem else "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def authorized(self):
        if TOKEN is None:
            return True
        given = self.headers.get("authorization", "")
        return hmac.compare_digest(given.encode(), ("Bearer " + TOKEN).encode())

    def do_GET(self):
        if not self.authorized():
            return self.answer(401, Problem(401, "unauthenticated", "bad token").body(), True)
        if self.path == "/health":
            return self.answer(200, {"status": "up", "dependencies": [
                {"name": "memory", "status": "up", "detail": f"{len(STORE)} entries"}]})
        self.answer(404, Problem(404, "route_not_found", self.path).body(), True)

    def do_POST(self):
        length = int(self.headers.get("content-length", "0"))
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
            if not self.authorized():
                raise Problem(401, "unauthenticated", "missing or wrong bearer token")
            action = self.path.strip("/")
            if action == "start":
                instance = str(uuid.uuid4())
                INSTANCES[instance] = Instance(body["tenant"], body.get("config") or {})
                return self.answer(200, {"data": {"instance": instance}})
            if action == "stop":
                INSTANCES.pop(body.get("instance"), None)
                return self.answer(200, {"data": {}})
            instance = INSTANCES.get((body.get("metadata") or {}).get("instance"))
            if instance is None:
                raise Problem(503, "provider_unavailable", "unknown instance; start it again")
            if instance.tenant != self.headers.get("x-tenant-id"):
                raise Problem(403, "tenant_forbidden", "the instance belongs to another tenant")
            self.answer(200, {"data": instance.invoke(action, body.get("params") or {})})
        except Problem as p:
            self.answer(p.status, p.body(), True)
        except (KeyError, TypeError, ValueError) as e:
            self.answer(400, Problem(400, "params_invalid", f"unreadable request: {e}").body(), True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=9400)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args()
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    print(f"cache/example-remote listening on {args.host}:{args.port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
