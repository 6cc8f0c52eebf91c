"""The remote provider protocol (docs/write-a-provider.md, "Remote providers"), shared by every
skeleton `switchyard provider new <domain>/<name> --remote` writes. Standard library only.

  POST /start    {"tenant", "config"}                 -> {"data": {"instance": id}}
  POST /stop     {"tenant", "instance"}               -> {"data": {}}
  POST /<action> {"params", "metadata": {"instance"}} with X-Tenant-Id -> {"data": ...}
  GET  /health                                        -> {"status", "dependencies"}

Errors are application/problem+json with a contract code (raise Problem). With
REMOTE_PROVIDER_TOKEN set, every request must carry "Authorization: Bearer <that token>".
The runtime checks params and results against the domain's contract schemas, so an engine
only implements what the schemas cannot say.
"""

import argparse
import hmac
import json
import os
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TOKEN = os.environ.get("REMOTE_PROVIDER_TOKEN")


class Problem(Exception):
    """A contract error: its HTTP status, its code, a detail, and the field it is about."""

    def __init__(self, status, code, detail, pointer=None, retryable=False):
        super().__init__(detail)
        self.status, self.code, self.detail = status, code, detail
        self.pointer, self.retryable = pointer, retryable

    def body(self):
        errors = [{"pointer": self.pointer, "detail": self.detail}] if self.pointer else []
        return {"type": "urn:switchyard:problem:" + self.code, "title": self.code,
                "status": self.status, "code": self.code, "detail": self.detail,
                "retryable": self.retryable, "errors": errors}


def serve(provider, engine):
    """Serves `engine(tenant, config)` instances, each with `invoke(action, params)`, as the
    provider named `provider` (`<domain>/<name>`); one lock serialises calls."""
    instances = {}
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body in one segment: without these, Nagle and delayed ACKs add ~40 ms.
        wbufsize = -1
        disable_nagle_algorithm = True

        def log_message(self, *args):
            pass

        def answer(self, status, body, problem=False):
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("content-type",
                             "application/problem+json" if problem else "application/json")
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
                return self.answer(200, {"status": "up", "dependencies": []})
            self.answer(404, Problem(404, "route_not_found", self.path).body(), True)

        def do_POST(self):
            length = int(self.headers.get("content-length", "0"))
            try:
                body = json.loads(self.rfile.read(length) or b"{}")
                if not self.authorized():
                    raise Problem(401, "unauthenticated", "missing or wrong bearer token")
                action = self.path.strip("/")
                with lock:
                    if action == "start":
                        instance = str(uuid.uuid4())
                        instances[instance] = engine(body["tenant"], body.get("config") or {})
                        return self.answer(200, {"data": {"instance": instance}})
                    if action == "stop":
                        instances.pop(body.get("instance"), None)
                        return self.answer(200, {"data": {}})
                    instance = instances.get((body.get("metadata") or {}).get("instance"))
                    if instance is None:
                        raise Problem(503, "provider_unavailable",
                                      "unknown instance; start it again", retryable=True)
                    if instance.tenant != self.headers.get("x-tenant-id"):
                        raise Problem(403, "tenant_forbidden",
                                      "the instance belongs to another tenant")
                    data = instance.invoke(action, body.get("params") or {})
                self.answer(200, {"data": data})
            except Problem as p:
                self.answer(p.status, p.body(), True)
            except (KeyError, TypeError, ValueError) as e:
                self.answer(400, Problem(400, "params_invalid", f"unreadable request: {e}").body(),
                            True)

    parser = argparse.ArgumentParser(description=f"{provider}: a remote Switchyard provider")
    parser.add_argument("--port", type=int, default=9400)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args()
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    print(f"{provider} listening on {args.host}:{args.port}", flush=True)
    server.serve_forever()
