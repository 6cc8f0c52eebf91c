#!/usr/bin/env python3
"""auth/__NAME__: a remote auth provider (evaluate) deciding by role: a request is allowed when
the input's `roles` name one of the tenant's `allow_roles` (config), and denied with its reason
otherwise. Replace `decide` with your policy engine; add `verify`/`introspect` (and their
actions in manifest.json) to check tokens.

Run: python3 service.py --port 9400 (see switchyard_protocol.py for the protocol).
"""

from switchyard_protocol import Problem, serve


class Engine:
    def __init__(self, tenant, config):
        self.tenant = tenant
        self.allow_roles = set(config.get("allow_roles", []))

    def decide(self, request):
        roles = request.get("roles")
        roles = set(r for r in roles if isinstance(r, str)) if isinstance(roles, list) else set()
        if roles & self.allow_roles:
            return {"allow": True, "reasons": []}
        return {"allow": False,
                "reasons": ["none of the input's roles is in this tenant's allow_roles"]}

    def invoke(self, action, p):
        if action == "evaluate":
            return {"decision": self.decide(p["input"]),
                    "revision": "allow-roles:" + ",".join(sorted(self.allow_roles))}
        raise Problem(404, "action_not_found", f"auth/__NAME__ has no action {action}")


if __name__ == "__main__":
    serve("auth/__NAME__", Engine)
