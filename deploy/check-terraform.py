"""Parses every .tf file of the Terraform module with python-hcl2 and checks the module's shape.

    python check-terraform.py terraform/

Run by scripts/check-deploy and tests/e2e/deploy.rs with the python of the python-hcl2 venv.
Exits 1 naming every problem; on success prints, as JSON, what the module's Deployment wires
(args, ports, env names, probes, security contexts, mounts), for the test that compares it
with the kustomize manifests.
"""

import json
import pathlib
import re
import sys

import hcl2

# The module's interface: these variables must exist; the sensitive ones must be marked so.
REQUIRED_VARIABLES = {
    "image", "replicas", "store_url", "postgres_url", "postgres_app_password", "redis_url",
    "kafka_brokers", "vault_addr", "vault_token", "resources", "namespace",
}
SENSITIVE_VARIABLES = {
    "store_url", "postgres_url", "postgres_app_password", "vault_token", "redis_url",
    "metrics_token",
}
# The same kinds as deploy/kubernetes/base.
RESOURCE_TYPES = {
    "kubernetes_service_account_v1": 1,
    "kubernetes_secret_v1": 1,
    "kubernetes_config_map_v1": 2,
    "kubernetes_deployment_v1": 1,
    "kubernetes_service_v1": 1,
    "kubernetes_horizontal_pod_autoscaler_v2": 1,
    "kubernetes_pod_disruption_budget_v1": 1,
    "kubernetes_network_policy_v1": 1,
}

problems = []


def unquote(value):
    """python-hcl2 8 keeps string literals quoted and expressions as ${...}."""
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def block(value):
    """A nested block is a list of one dict."""
    if isinstance(value, list) and len(value) == 1 and isinstance(value[0], dict):
        return value[0]
    return value if isinstance(value, dict) else {}


def named(items):
    """[{'"name"': {...}}, ...] -> {name: {...}}, for variable/output/module blocks."""
    out = {}
    for item in items or []:
        for key, body in item.items():
            out[unquote(key)] = body
    return out


def load(path):
    try:
        with open(path) as f:
            return hcl2.load(f)
    except Exception as e:  # noqa: BLE001 - any parse error is the finding
        problems.append(f"{path}: does not parse: {e}")
        return {}


def main(root):
    root = pathlib.Path(root)
    files = sorted(root.rglob("*.tf"))
    if not files:
        problems.append(f"no .tf file under {root}")
    parsed = {path: load(path) for path in files}
    module = {p: d for p, d in parsed.items() if p.parent == root}

    variables = {}
    local_values = {}
    resources = []
    outputs = {}
    providers = {}
    for d in module.values():
        variables.update(named(d.get("variable")))
        outputs.update(named(d.get("output")))
        for item in d.get("locals", []):
            local_values.update(item)
        for item in d.get("resource", []):
            for rtype, instances in item.items():
                for rname, body in instances.items():
                    resources.append((unquote(rtype), unquote(rname), body))
        for t in d.get("terraform", []):
            for req in t.get("required_providers", []):
                providers.update(req)

    for name in sorted(REQUIRED_VARIABLES - variables.keys()):
        problems.append(f"variable {name} is missing")
    for name, body in variables.items():
        if not unquote(body.get("description", "")):
            problems.append(f"variable {name} has no description")
        if "type" not in body:
            problems.append(f"variable {name} has no type")
    for name in sorted(SENSITIVE_VARIABLES & variables.keys()):
        if variables[name].get("sensitive") is not True:
            problems.append(f"variable {name} is not sensitive")
    if "validation" not in variables.get("image", {}):
        problems.append("variable image has no validation")
    if unquote(variables.get("namespace", {}).get("default")) == "default":
        problems.append("variable namespace defaults to the default namespace")

    counts = {}
    for rtype, _, _ in resources:
        counts[rtype] = counts.get(rtype, 0) + 1
    for rtype, want in RESOURCE_TYPES.items():
        if counts.get(rtype, 0) != want:
            problems.append(f"{rtype}: {counts.get(rtype, 0)} resources, expected {want}")

    source = unquote(block(providers.get("kubernetes", {})).get("source", "")) if providers else ""
    if source != "hashicorp/kubernetes":
        problems.append(f"required provider kubernetes is {source!r}, not hashicorp/kubernetes")
    for name in ("url", "service_name", "deployment_name", "namespace"):
        if name not in outputs:
            problems.append(f"output {name} is missing")

    # Every example calls the module and gives every variable without a default.
    required = {n for n, b in variables.items() if "default" not in b}
    examples = [(p, d) for p, d in parsed.items() if "examples" in p.parts]
    if not examples:
        problems.append("no example under terraform/examples")
    for path, d in examples:
        calls = named(d.get("module"))
        if not calls:
            problems.append(f"{path}: calls no module")
        for call, body in calls.items():
            for name in sorted(required - body.keys()):
                problems.append(f"{path}: module {call} does not set required variable {name}")

    # Plain string locals (no expression in them) substituted into the summary's strings.
    plain = {
        k: unquote(v) for k, v in local_values.items()
        if isinstance(v, str) and "${" not in unquote(v)
    }

    def resolve(value):
        if not isinstance(value, str):
            return value
        return re.sub(r"\$\{local\.(\w+)\}", lambda m: plain.get(m.group(1), m.group(0)), value)

    deployments = [body for rtype, _, body in resources if rtype == "kubernetes_deployment_v1"]
    summary = {}
    if deployments:
        pod = block(block(block(deployments[0].get("spec")).get("template")).get("spec"))
        container = block(pod.get("container"))
        summary = {
            "args": [unquote(a) for a in container.get("args", [])],
            "ports": {
                unquote(p.get("name")): p.get("container_port") for p in container.get("port", [])
            },
            "env": [unquote(e.get("name")) for e in container.get("env", [])],
            "env_values": {
                unquote(e.get("name")): resolve(unquote(e["value"]))
                for e in container.get("env", [])
                if "value" in e
            },
            "probes": {
                kind: {
                    "path": unquote(block(block(container.get(kind)).get("http_get")).get("path")),
                    "port": unquote(block(block(container.get(kind)).get("http_get")).get("port")),
                }
                for kind in ("startup_probe", "liveness_probe", "readiness_probe")
                if kind in container
            },
            "pod_security_context": {
                k: v for k, v in block(pod.get("security_context")).items() if not k.startswith("__")
                and not isinstance(v, list)
            },
            "container_security_context": {
                k: v
                for k, v in block(container.get("security_context")).items()
                if not k.startswith("__") and not isinstance(v, list)
            },
            "capabilities_drop": [
                unquote(c)
                for c in block(block(container.get("security_context")).get("capabilities")).get(
                    "drop", []
                )
            ],
            "mounts": {
                unquote(m.get("name")): resolve(unquote(m.get("mount_path")))
                for m in container.get("volume_mount", [])
            },
            "image_pull_policy": unquote(container.get("image_pull_policy")),
        }

    if problems:
        for problem in problems:
            print(f"check-terraform: {problem}", file=sys.stderr)
        sys.exit(1)
    print(json.dumps({"files": [str(p) for p in files], "deployment": summary}, indent=1))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "terraform")
