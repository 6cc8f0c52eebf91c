#!/usr/bin/env python3
"""bus/__NAME__: a remote bus provider (publish, poll, commit) on an in-memory log per tenant
and topic. Records are numbered from 0 in the order published; a group's position is the
offset it committed last. Nothing survives a restart of this service: replace `LOGS` and
`COMMITTED` with a durable store (and declare "durable") for production.

Run: python3 service.py --port 9400 (see switchyard_protocol.py for the protocol).
"""

from datetime import datetime, timezone

from switchyard_protocol import Problem, serve

LOGS = {}  # (tenant, topic) -> [record]
COMMITTED = {}  # (tenant, topic, group) -> offset


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
        raise Problem(404, "action_not_found", f"bus/__NAME__ has no action {action}")


if __name__ == "__main__":
    serve("bus/__NAME__", Engine)
