#!/usr/bin/env python3
"""storage/__NAME__: a remote storage provider (put, get, head, list, delete) keeping each
tenant's objects in memory. Keys are relative '/'-separated paths; one that could name
something outside the tenant's space (an empty, '.' or '..' segment, a leading '/', a
backslash, a control character) is refused. Nothing survives a restart of this service:
replace `OBJECTS` with a durable store for production.

Run: python3 service.py --port 9400 (see switchyard_protocol.py for the protocol).
"""

import base64
import binascii
from datetime import datetime, timezone

from switchyard_protocol import Problem, serve

OBJECTS = {}  # (tenant, key) -> (bytes, modified_at)


def checked(key):
    segments = key.split("/")
    unsafe = (key != key.strip() or "\\" in key or any(ord(c) < 32 for c in key)
              or any(s in ("", ".", "..") for s in segments))
    if unsafe:
        raise Problem(400, "params_invalid",
                      "a key is a relative path of '/'-separated segments, none empty, '.' or '..'",
                      "/key")
    return key


class Engine:
    def __init__(self, tenant, config):
        self.tenant = tenant

    def meta(self, key):
        content, modified_at = OBJECTS[(self.tenant, key)]
        return {"key": key, "size": len(content), "modified_at": modified_at}

    def found(self, key):
        if (self.tenant, checked(key)) not in OBJECTS:
            raise Problem(404, "resource_not_found", f"no object {key}")
        return self.meta(key)

    def invoke(self, action, p):
        if action == "put":
            key = checked(p["key"])
            if "content_base64" not in p:
                raise Problem(422, "params_unprocessable", "put needs content_base64",
                              "/content_base64")
            try:
                content = base64.b64decode(p["content_base64"], validate=True)
            except (binascii.Error, ValueError):
                raise Problem(400, "params_invalid", "content_base64 is not base64",
                              "/content_base64")
            now = datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")
            OBJECTS[(self.tenant, key)] = (content, now)
            return self.meta(key)
        if action == "get":
            meta = self.found(p["key"])
            content = OBJECTS[(self.tenant, p["key"])][0]
            return dict(meta, content_base64=base64.b64encode(content).decode())
        if action == "head":
            return self.found(p["key"])
        if action == "delete":
            return {"deleted": OBJECTS.pop((self.tenant, checked(p["key"])), None) is not None}
        if action == "list":
            prefix, cursor, limit = p.get("prefix", ""), p.get("cursor"), p.get("limit", 100)
            keys = sorted(k for t, k in OBJECTS
                          if t == self.tenant and k.startswith(prefix)
                          and (cursor is None or k > cursor))
            page = keys[:limit]
            more = len(keys) > limit
            return {"objects": [self.meta(k) for k in page],
                    "next_cursor": page[-1] if more else None}
        raise Problem(404, "action_not_found", f"storage/__NAME__ has no action {action}")


if __name__ == "__main__":
    serve("storage/__NAME__", Engine)
