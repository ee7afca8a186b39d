"""The analyst query guard: one read-only SELECT over gold.* objects, parsed with sqlglot, with a LIMIT.

Example::

    guarded = guard("SELECT store_id, sum(revenue) FROM gold.sales_by_store_day GROUP BY 1", max_rows=1000)
    guarded.sql      # what runs: regenerated from the checked tree, comments dropped, "LIMIT 1000" added
    guard("DELETE FROM gold.sales_by_store_day", max_rows=10)   # raises QueryRefused("only a SELECT ...")

The guard is the first line; the query still runs as scout_reader in a read-only transaction with a
statement timeout (ingest_api.analytics).
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

MAX_QUERY_CHARS = 20_000
ALLOWED_SCHEMA = "gold"

# Statements and clauses refused anywhere in the tree (data-modifying CTEs, SELECT INTO, FOR UPDATE, ...).
_FORBIDDEN: dict[str, str] = {
    "Insert": "INSERT", "Update": "UPDATE", "Delete": "DELETE", "Merge": "MERGE", "Create": "CREATE",
    "Drop": "DROP", "Alter": "ALTER", "AlterTable": "ALTER", "TruncateTable": "TRUNCATE", "Copy": "COPY",
    "Command": "a command", "Into": "SELECT ... INTO", "Lock": "row locks (FOR UPDATE/SHARE)", "Set": "SET",
    "Transaction": "transaction control", "Commit": "COMMIT", "Rollback": "ROLLBACK", "Grant": "GRANT",
    "Revoke": "REVOKE", "Use": "USE", "Describe": "DESCRIBE", "Pragma": "PRAGMA", "Analyze": "ANALYZE",
    "Kill": "KILL", "LoadData": "LOAD", "Refresh": "REFRESH", "Cache": "CACHE", "Uncache": "UNCACHE",
    "Comment": "COMMENT ON", "Declare": "DECLARE", "Execute": "EXECUTE", "Show": "SHOW",
    "Placeholder": "query parameters", "Parameter": "query parameters", "SessionParameter": "session parameters",
}
_FORBIDDEN_TYPES: tuple[tuple[type[exp.Expr], str], ...] = tuple(
    (getattr(exp, name), what) for name, what in _FORBIDDEN.items() if hasattr(exp, name)
)

# Functions with side effects, that read files or other sessions, run SQL given as text, or sleep.
BANNED_FUNCTIONS = frozenset({
    "set_config", "current_setting", "nextval", "setval", "currval", "lastval", "setseed", "loread",
    "lowrite", "ts_stat", "ts_rewrite", "dblink",
})
BANNED_PREFIXES = (
    "pg_",             # pg_sleep*, pg_read_file, pg_ls_dir, pg_terminate_backend, pg_advisory_lock, pg_notify ...
    "lo_",             # large objects: lo_import, lo_export, lo_unlink ...
    "dblink",          # dblink_exec, dblink_connect ...
    "txid_",           # txid_current assigns a transaction id
    "query_to_", "table_to_", "cursor_to_", "schema_to_", "database_to_",  # run SQL given as text
    "brin_", "gin_",   # index maintenance
    "binary_upgrade_",
)


class QueryRefused(ValueError):
    """The query is not a single read-only SELECT over gold; the message says why."""


@dataclass(frozen=True)
class GuardedQuery:
    sql: str            # the statement to run, regenerated from the checked tree
    limit: int          # the LIMIT in force
    limit_applied: bool  # True when the guard added or lowered the LIMIT


def guard(text: str, *, max_rows: int) -> GuardedQuery:
    """Check ``text`` and return what to run, or raise QueryRefused with the reason."""
    if not text or not text.strip():
        raise QueryRefused("the query is empty")
    if len(text) > MAX_QUERY_CHARS:
        raise QueryRefused(f"the query is longer than {MAX_QUERY_CHARS} characters")
    try:
        return _guard(text, max_rows=max_rows)
    except RecursionError:  # sqlglot parses and walks recursively: "(((...)))" thousands deep
        raise QueryRefused("the query is nested too deeply") from None


def _guard(text: str, *, max_rows: int) -> GuardedQuery:
    query = _parse_one(text)
    check(query)
    limit, applied = _enforce_limit(query, max_rows)
    sql = query.sql(dialect="postgres", comments=False, normalize_functions=False)
    check(_parse_one(sql))  # what runs passes the same checks as what was sent
    return GuardedQuery(sql, limit, applied)


def _parse_one(text: str) -> exp.Expr:
    try:
        statements = [s for s in sqlglot.parse(text, dialect="postgres")
                      if s is not None and not isinstance(s, exp.Semicolon)]
    except SqlglotError as exc:
        raise QueryRefused(f"the query could not be parsed: {str(exc).splitlines()[0]}") from None
    if len(statements) != 1:
        raise QueryRefused(f"exactly one statement is allowed; found {len(statements)}")
    query = statements[0]
    while isinstance(query, exp.Subquery) and query.this is not None:  # "(SELECT ...)"
        query = query.this
    return query


def check(query: exp.Expr) -> None:
    """Raise QueryRefused unless ``query`` is one SELECT (or UNION/INTERSECT/EXCEPT) that only reads gold."""
    if not isinstance(query, exp.Select | exp.SetOperation):
        raise QueryRefused(f"only a SELECT query is allowed; this is {_kind(query)}")
    for node in query.walk():
        for node_type, what in _FORBIDDEN_TYPES:
            if isinstance(node, node_type):
                raise QueryRefused(f"not allowed in an analyst query: {what} (found: {_snippet(node)})")
        if isinstance(node, exp.Table):
            _check_table(node)
        elif isinstance(node, exp.Func):
            _check_function(node)


def _kind(node: exp.Expr) -> str:
    if isinstance(node, exp.Command):
        return f"{str(node.this).upper()} (a command)"
    return type(node).__name__.upper()


def _snippet(node: exp.Expr) -> str:
    text = node.sql(dialect="postgres", comments=False)
    return text if len(text) <= 60 else text[:57] + "..."


def _ident(node: exp.Expr | None) -> str:
    """An identifier as PostgreSQL resolves it: unquoted names fold to lower case."""
    if not isinstance(node, exp.Identifier):
        return node.name if node is not None else ""
    return node.name if node.quoted else node.name.lower()


def _check_table(table: exp.Table) -> None:
    if not table.name and not isinstance(table.this, exp.Identifier):
        return  # a function in FROM: checked as a function
    schema, name = _ident(table.args.get("db")), _ident(table.this)
    if table.args.get("catalog") is not None:
        raise QueryRefused(f"{_snippet(table)}: only objects of schema {ALLOWED_SCHEMA} in this database may be read")
    if not schema:
        if name in _visible_ctes(table):
            return
        raise QueryRefused(f"table {name!r} must be qualified with its schema: {ALLOWED_SCHEMA}.{name}")
    if schema != ALLOWED_SCHEMA:
        raise QueryRefused(f"{schema}.{name} is outside schema {ALLOWED_SCHEMA}; only {ALLOWED_SCHEMA}.* may be read")


def _with_of(node: exp.Expr) -> exp.With | None:
    found = node.args.get("with") or node.args.get("with_")
    return found if isinstance(found, exp.With) else None


def _cte_names(ctes: list[exp.Expr]) -> set[str]:
    return {_ident(c.args["alias"].this) if isinstance(c.args.get("alias"), exp.TableAlias) else c.alias
            for c in ctes}


def _visible_ctes(node: exp.Expr) -> set[str]:
    """CTE names in scope at ``node``, as PostgreSQL scopes them: a non-recursive WITH lets each CTE see
    only the ones before it (not itself); the main query sees them all; inner WITHs shadow outer ones."""
    visible: set[str] = set()
    prev: exp.Expr = node
    cur = node.parent
    while cur is not None:
        if isinstance(cur, exp.With) and isinstance(prev, exp.CTE):
            ctes = list(cur.expressions)
            position = next(i for i, c in enumerate(ctes) if c is prev)
            visible |= _cte_names(ctes if cur.args.get("recursive") else ctes[:position])
        else:
            with_ = _with_of(cur)
            if with_ is not None and prev is not with_:
                visible |= _cte_names(list(with_.expressions))
        prev, cur = cur, cur.parent
    return visible


def _function_name(func: exp.Func) -> str:
    if isinstance(func, exp.Anonymous):
        return str(func.name).lower()
    return func.sql_name().lower()


def _check_function(func: exp.Func) -> None:
    name = _function_name(func)
    if isinstance(func.parent, exp.Dot) and func.parent.expression is func:
        schema = _ident(func.parent.this) if isinstance(func.parent.this, exp.Identifier) else ""
        if schema != "pg_catalog":
            raise QueryRefused(f"function {schema}.{name} is not allowed: only built-in functions may be called")
    if name in BANNED_FUNCTIONS or name.startswith(BANNED_PREFIXES):
        raise QueryRefused(f"function {name} is not allowed: it has side effects, reads files or other sessions, "
                           "runs SQL given as text, or sleeps")


def _literal_rows(limit: exp.Expr | None) -> int | None:
    """The row count of a LIMIT n / FETCH FIRST n ROWS clause when it is a plain integer."""
    if isinstance(limit, exp.Limit):
        value = limit.expression
    elif isinstance(limit, exp.Fetch):
        value = limit.args.get("count")
        if value is None:
            return 1  # FETCH FIRST ROW ONLY
        options = limit.args.get("limit_options")
        if options is not None and (options.args.get("percent") or options.args.get("with_ties")):
            return None
    else:
        return None
    if isinstance(value, exp.Literal) and not value.is_string and value.this.isdigit():
        return int(value.this)
    return None


def _enforce_limit(query: exp.Expr, max_rows: int) -> tuple[int, bool]:
    rows = _literal_rows(query.args.get("limit"))
    if rows is not None and rows <= max_rows:
        return rows, False
    query.set("limit", exp.Limit(expression=exp.Literal.number(max_rows)))
    return max_rows, True
