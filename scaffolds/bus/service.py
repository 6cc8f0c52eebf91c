#!/usr/bin/env python3
"""bus/__NAME__: a remote bus provider (publish, poll, commit, replay) on an in-memory log per tenant
and topic. Records are numbered from 0 in the order published; a group's position is the
offset it committed last. Nothing survives a restart of this service: replace `LOGS` and
`COMMITTED` with a durable store (and declare "durable") for production.

Run: python3 service.py --port 9400 (see switchyard_protocol.py for the protocol).
"""

import re
from datetime import datetime, timezone

from switchyard_protocol import Problem, serve

LOGS = {}  # (tenant, topic) -> [record]
COMMITTED = {}  # (tenant, topic, group) -> offset
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")


def instant(text):
    """An RFC 3339 time as an aware datetime, or None when it is not one."""
    match = RFC3339.match(text)
    if not match:
        return None
    fraction = match.group(1) or ""
    text = text.replace(fraction, fraction[:7]) if fraction else text
    try:
        return datetime.fromisoformat(text.upper().replace("Z", "+00:00"))
    except ValueError:
        return None


class Engine:
    def __init__(self, tenant, config):
        self.tenant = tenant

    def log(self, topic):
        return LOGS.setdefault((self.tenant, topic), [])

    def invoke(self, action, p):
        if action == "publish":
            log = self.log(p["topic"])
            now = datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")
            offsets = []
            for m in p["messages"]:
                record = {"offset": len(log), "key": m.get("key"),
                          "headers": m.get("headers") or {}, "payload": m.get("payload"),
                          "published_at": now}
                log.append(record)
                offsets.append(record["offset"])
            return {"topic": p["topic"], "offsets": offsets}
        if action == "poll":
            log = self.log(p["topic"])
            start = p.get("offset", COMMITTED.get((self.tenant, p["topic"], p["group"]), 0))
            records = log[start:start + p.get("max_records", 100)]
            return {"records": records, "next_offset": start + len(records)}
        if action == "commit":
            end = len(self.log(p["topic"]))
            if p["offset"] > end:
                raise Problem(409, "conflict",
                              f"offset {p['offset']} is past the end of the topic ({end})",
                              "/offset")
            COMMITTED[(self.tenant, p["topic"], p["group"])] = p["offset"]
            return {"topic": p["topic"], "group": p["group"], "committed": p["offset"]}
        if action == "replay":
            log = self.log(p["topic"])
            if "from_offset" in p and "from_time" in p:
                raise Problem(400, "params_invalid", "give from_offset or from_time, not both",
                              "/from_time")
            start = p.get("from_offset", 0)
            if "from_time" in p:
                since = instant(p["from_time"])
                if since is None:
                    raise Problem(400, "params_invalid", "from_time is not an RFC 3339 time",
                                  "/from_time")
                start = next((r["offset"] for r in log if instant(r["published_at"]) >= since),
                             len(log))
            records = log[start:start + p.get("max_records", 100)]
            return {"records": records, "next_offset": max(start, 0) + len(records)}
        raise Problem(404, "action_not_found", f"bus/__NAME__ has no action {action}")


if __name__ == "__main__":
    serve("bus/__NAME__", Engine)
