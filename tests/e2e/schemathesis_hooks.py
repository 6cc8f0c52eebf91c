"""Schemathesis hooks for tests/e2e/schemathesis.rs (loaded through SCHEMATHESIS_HOOKS).

Two headers carry values no fuzzer can guess, and left to chance they stop most requests at the
gateway before anything behind it runs:
- X-Tenant-Id must name the caller's own tenant: any other value is refused (403);
- an Idempotency-Key reused with another request is refused (422), and the generator repeats
  its few short values across thousands of requests.
So a present X-Tenant-Id names the run's tenant, and a present Idempotency-Key gets a prefix
unique to the call. Both headers stay optional, and a key with characters the gateway refuses
keeps them, so that refusal is still exercised.
"""

import itertools
import os

import schemathesis

TENANT = os.environ["SWITCHYARD_FUZZ_TENANT"]
CALLS = itertools.count()


@schemathesis.hook
def before_call(context, case, kwargs):
    headers = case.headers
    if not headers:
        return
    for name in list(headers):
        lower = name.lower()
        if lower == "x-tenant-id":
            headers[name] = TENANT
        elif lower == "idempotency-key" and isinstance(headers[name], str):
            headers[name] = f"{next(CALLS)}-{headers[name]}"
