#!/usr/bin/env python3
"""db/__NAME__: a remote db provider (query, execute, transaction, metadata) on SQLite through
Python's own sqlite3 module: one database file per tenant in data/ beside this file, so a
tenant's tables survive a restart of this service and no tenant can name another's.

`query` runs under an authorizer that allows reads only, so no statement it runs can write.
Run: python3 service.py --port 9400 (see switchyard_protocol.py for the protocol).
"""

import base64
import os
import re
import sqlite3

from switchyard_protocol import Problem, serve

# Beside this file, whatever directory the service is started from.
DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
CONNECTIONS = {}  # tenant -> connection
READS = {sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_FUNCTION,
         sqlite3.SQLITE_RECURSIVE}
CONTROL = {sqlite3.SQLITE_TRANSACTION, sqlite3.SQLITE_SAVEPOINT}
I64 = (-(2 ** 63), 2 ** 63 - 1)


def connection(tenant):
    if tenant not in CONNECTIONS:
        os.makedirs(DATA, exist_ok=True)
        # The tenant id is [a-z0-9-] (the runtime checks it), so it is a safe file name.
        conn = sqlite3.connect(os.path.join(DATA, f"{tenant}.sqlite3"),
                               isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA foreign_keys = ON")
        CONNECTIONS[tenant] = conn
    return CONNECTIONS[tenant]


def bound(params, at):
    for i, value in enumerate(params):
        if isinstance(value, int) and not isinstance(value, bool) and not I64[0] <= value <= I64[1]:
            raise Problem(400, "params_invalid", "an integer beyond 64 bits cannot be bound",
                          f"{at}/{i}")
    return params


def failed(e, pointer):
    if isinstance(e, sqlite3.IntegrityError):
        return Problem(409, "conflict", f"constraint violated: {e}", pointer)
    return Problem(422, "statement_failed", str(e), pointer)


def without_params(sql):
    """The statement with every parameter replaced by NULL (outside quotes), so that a view
    of it can be made to read its columns' declared types."""
    return re.sub(r"('(?:[^']|'')*'|\"(?:[^\"]|\"\")*\")|\?\d*|[:@$][A-Za-z_]\w*",
                  lambda m: m.group(1) or "NULL", sql)


def column_types(conn, sql, names, rows):
    """Each column's declared type, as SQLite's sqlite3_column_decltype gives it; for an
    expression, the type of its first non-null value."""
    declared = {}
    try:
        conn.execute("DROP VIEW IF EXISTS temp.switchyard_columns")
        conn.execute(f"CREATE TEMP VIEW switchyard_columns AS {without_params(sql)}")
        declared = {i: r[2] for i, r in
                    enumerate(conn.execute("PRAGMA temp.table_info(switchyard_columns)"))}
        conn.execute("DROP VIEW temp.switchyard_columns")
    except sqlite3.Error:
        pass
    types = []
    for i, _ in enumerate(names):
        t = declared.get(i) or ""
        if not t:
            value = next((r[i] for r in rows if r[i] is not None), None)
            t = {int: "INTEGER", float: "REAL", str: "TEXT", bytes: "BLOB"}.get(type(value), "NULL")
        types.append(t)
    return types


def value(v):
    return base64.b64encode(v).decode() if isinstance(v, bytes) else v


class Engine:
    def __init__(self, tenant, config):
        self.tenant = tenant
        self.conn = connection(tenant)

    def execute(self, sql, params, pointer):
        cur = self.conn.cursor()
        try:
            cur.execute(sql, bound(params, pointer.rsplit("/", 1)[0] + "/params"))
        except (sqlite3.Error, sqlite3.Warning) as e:
            raise failed(e, pointer)
        inserted = cur.rowcount > 0 and sql.lstrip().upper().startswith(("INSERT", "REPLACE"))
        return {"rows_affected": max(cur.rowcount, 0),
                "last_insert_id": cur.lastrowid if inserted else None}

    def query(self, p):
        max_rows = p.get("max_rows", 10000)
        self.conn.set_authorizer(lambda action, *_: sqlite3.SQLITE_OK if action in READS
                                 else sqlite3.SQLITE_DENY)
        try:
            cur = self.conn.execute(p["sql"], bound(p.get("params", []), "/params"))
            rows = cur.fetchmany(max_rows + 1)
        except (sqlite3.Error, sqlite3.Warning) as e:
            raise failed(e, "/sql")
        finally:
            self.conn.set_authorizer(None)
        names = [d[0] for d in cur.description or []]
        truncated = len(rows) > max_rows
        rows = rows[:max_rows]
        types = column_types(self.conn, p["sql"], names, rows)
        return {"columns": [{"name": n, "type": t} for n, t in zip(names, types)],
                "rows": [{n: value(v) for n, v in zip(names, r)} for r in rows],
                "row_count": len(rows), "truncated": truncated}

    def transaction(self, p):
        """All statements or none: a statement that would end the batch's transaction early
        (COMMIT, END, ROLLBACK, a savepoint) is refused by the authorizer."""
        results = []
        self.conn.execute("BEGIN")
        self.conn.set_authorizer(lambda action, *_: sqlite3.SQLITE_DENY if action in CONTROL
                                 else sqlite3.SQLITE_OK)
        try:
            for i, s in enumerate(p["statements"]):
                results.append(self.execute(s["sql"], s.get("params", []),
                                            f"/statements/{i}/sql"))
        except Problem:
            self.conn.set_authorizer(None)
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            raise
        self.conn.set_authorizer(None)
        self.conn.execute("COMMIT")
        return {"results": results}

    def metadata(self, p):
        names = [r[0] for r in self.conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' "
            "AND name NOT LIKE 'sqlite_%' ORDER BY name")]
        if "table" in p:
            if p["table"] not in names:
                raise Problem(404, "resource_not_found", f"no table {p['table']}", "/table")
            names = [p["table"]]
        tables = []
        for name in names:
            columns = [{"name": c[1], "type": c[2], "nullable": c[3] == 0 and c[5] == 0,
                        "primary_key": c[5] > 0}
                       for c in self.conn.execute("SELECT * FROM pragma_table_info(?)", (name,))]
            tables.append({"name": name, "columns": columns})
        return {"tables": tables}

    def invoke(self, action, p):
        if action == "query":
            return self.query(p)
        if action == "execute":
            return self.execute(p["sql"], p.get("params", []), "/sql")
        if action == "transaction":
            return self.transaction(p)
        if action == "metadata":
            return self.metadata(p)
        raise Problem(404, "action_not_found", f"db/__NAME__ has no action {action}")


if __name__ == "__main__":
    serve("db/__NAME__", Engine)
