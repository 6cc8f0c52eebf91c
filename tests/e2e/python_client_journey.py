"""A tenant's short journey through a client that openapi-python-client generated from the served
/openapi.json (tests/e2e/python_client.rs). It uses only the generated, typed code: one function
per operation, request models built from the published params, answers parsed into the published
response models; a published schema a generator cannot follow would leave `parsed` empty.

Usage: python python_client_journey.py <directory holding the switchyard_client package>
with SWITCHYARD_URL and SWITCHYARD_KEY (a tenant admin key) in the environment.
"""

import datetime
import os
import sys

sys.path.insert(0, sys.argv[1])

from switchyard_client import AuthenticatedClient  # noqa: E402
from switchyard_client.api.cachememory import cache_memory_get, cache_memory_set  # noqa: E402
from switchyard_client.api.dbsqlite import db_sqlite_execute, db_sqlite_query  # noqa: E402
from switchyard_client.api.default import list_providers  # noqa: E402
from switchyard_client.api.servicesledger import (  # noqa: E402
    service_ledger_balance,
    service_ledger_create_account,
    service_ledger_get_journal,
    service_ledger_post_journal,
)
from switchyard_client.models import (  # noqa: E402
    CacheMemoryGetBody,
    CacheMemoryGetBodyParams,
    CacheMemoryGetResponse200,
    CacheMemorySetBody,
    CacheMemorySetBodyParams,
    CacheMemorySetResponse200,
    Catalog,
    DbSqliteExecuteBody,
    DbSqliteExecuteBodyParams,
    DbSqliteExecuteResponse200,
    DbSqliteQueryBody,
    DbSqliteQueryBodyParams,
    DbSqliteQueryResponse200,
    ServiceLedgerBalanceBody,
    ServiceLedgerBalanceBodyParams,
    ServiceLedgerBalanceResponse200,
    ServiceLedgerCreateAccountBody,
    ServiceLedgerCreateAccountBodyParams,
    ServiceLedgerCreateAccountResponse200,
    ServiceLedgerGetJournalBody,
    ServiceLedgerGetJournalBodyParams,
    ServiceLedgerGetJournalResponse200,
    ServiceLedgerPostJournalBody,
    ServiceLedgerPostJournalBodyParams,
    ServiceLedgerPostJournalResponse200,
)
from switchyard_client.models.service_ledger_create_account_body_params_type import (  # noqa: E402
    ServiceLedgerCreateAccountBodyParamsType,
)

client = AuthenticatedClient(
    base_url=os.environ["SWITCHYARD_URL"],
    token=os.environ["SWITCHYARD_KEY"],
    raise_on_unexpected_status=True,
)


def answer(response, model):
    """The parsed answer, which must be the published success model of the operation."""
    assert response.status_code == 200, f"{response.status_code}: {response.content!r}"
    assert isinstance(response.parsed, model), f"parsed {type(response.parsed)}, not {model}"
    return response.parsed


catalog = answer(list_providers.sync_detailed(client=client), Catalog)
listed = {f"{p.domain}/{p.name}": p for p in catalog.providers}
for provider in ["db/sqlite", "cache/memory"]:
    assert provider in listed, f"{provider} missing from the catalog: {sorted(listed)}"
    assert listed[provider].status == "running", listed[provider]
assert "query" in listed["db/sqlite"].actions, listed["db/sqlite"].actions
print(f"catalog: {len(catalog.providers)} providers")


def execute(sql, params=None):
    body = DbSqliteExecuteBody(params=DbSqliteExecuteBodyParams(sql=sql, params=params or []))
    return answer(db_sqlite_execute.sync_detailed(client=client, body=body), DbSqliteExecuteResponse200)


execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL)")
inserted = execute("INSERT INTO notes (body) VALUES (?), (?)", ["first", "second"])
assert inserted.data.rows_affected == 2, inserted.data
assert inserted.meta.provider == "db/sqlite" and inserted.meta.action == "execute", inserted.meta
queried = answer(
    db_sqlite_query.sync_detailed(
        client=client,
        body=DbSqliteQueryBody(
            params=DbSqliteQueryBodyParams(sql="SELECT id, body FROM notes WHERE id > ? ORDER BY id", params=[0])
        ),
    ),
    DbSqliteQueryResponse200,
)
assert queried.data.row_count == 2 and not queried.data.truncated, queried.data
assert [column.name for column in queried.data.columns] == ["id", "body"], queried.data.columns
rows = [row.to_dict() for row in queried.data.rows]
assert [row["body"] for row in rows] == ["first", "second"], rows
print(f"db: table created, {inserted.data.rows_affected} rows inserted, {queried.data.row_count} read back")

value = {"plan": "pro", "seats": 5}
stored = answer(
    cache_memory_set.sync_detailed(
        client=client,
        body=CacheMemorySetBody(params=CacheMemorySetBodyParams(key="session:42", value=value, ttl_ms=60_000)),
    ),
    CacheMemorySetResponse200,
)
assert stored.meta.provider == "cache/memory", stored.meta
read = answer(
    cache_memory_get.sync_detailed(
        client=client, body=CacheMemoryGetBody(params=CacheMemoryGetBodyParams(key="session:42"))
    ),
    CacheMemoryGetResponse200,
)
assert read.data.found and read.data.value == value, read.data
print("cache: a key set and read back")

for code, name, kind in [
    ("1000", "Cash", ServiceLedgerCreateAccountBodyParamsType.ASSET),
    ("4000", "Sales", ServiceLedgerCreateAccountBodyParamsType.INCOME),
]:
    answer(
        service_ledger_create_account.sync_detailed(
            client=client,
            body=ServiceLedgerCreateAccountBody(
                params=ServiceLedgerCreateAccountBodyParams(code=code, name=name, type_=kind, currency="EUR")
            ),
        ),
        ServiceLedgerCreateAccountResponse200,
    )
posted = answer(
    service_ledger_post_journal.sync_detailed(
        client=client,
        body=ServiceLedgerPostJournalBody(
            params=ServiceLedgerPostJournalBodyParams(
                journal_id="J-1",
                posting_time=datetime.datetime(2026, 3, 1, 9, 0, tzinfo=datetime.UTC),
                memo="first sale",
                lines=[
                    {"account": "1000", "debit": "250.00", "currency": "EUR"},
                    {"account": "4000", "credit": "250.00", "currency": "EUR"},
                ],
            )
        ),
        idempotency_key="journey-J-1",
    ),
    ServiceLedgerPostJournalResponse200,
)
assert posted.data.journal_id == "J-1" and posted.data.replayed is False, posted.data
journal = answer(
    service_ledger_get_journal.sync_detailed(
        client=client, body=ServiceLedgerGetJournalBody(params=ServiceLedgerGetJournalBodyParams(journal_id="J-1"))
    ),
    ServiceLedgerGetJournalResponse200,
)
assert journal.data.memo == "first sale" and journal.data.reversed_by is None, journal.data
assert len(journal.data.lines) == 2, journal.data.lines
balance = answer(
    service_ledger_balance.sync_detailed(
        client=client, body=ServiceLedgerBalanceBody(params=ServiceLedgerBalanceBodyParams(account="1000"))
    ),
    ServiceLedgerBalanceResponse200,
)
assert balance.data.balance == "250.0000" and balance.data.debit_total == "250.0000", balance.data
print("ledger: a journal posted, read back, and the cash balance is 250.0000")
print("journey ok")
