"""How a coverage table is worked out from a route table, for every service's ``coverage`` module: an operation
of the API is supported when a route answers its method on a path of its template (filled with sample values)."""
from __future__ import annotations

import re


def supported(method: str, path_template: str, routes, sample: dict) -> bool:
    """Whether a route of ``routes`` ((method, regex, handler) rows) answers ``method`` on the template's path."""
    path = path_template.format(**sample)
    return any(route_method == method and re.fullmatch(pattern, path, re.IGNORECASE)
               for route_method, pattern, _ in routes)


def coverage_rows(operations, notes: dict, routes, sample: dict) -> list:
    """(operation, method, supported, note) of each (operation, method, path template) of ``operations``."""
    return [(operation, method, supported(method, path, routes, sample), notes.get(operation, ""))
            for operation, method, path in operations]


def markdown_rows(rows: list) -> list:
    """The table's lines: a header and one line per row of ``coverage_rows``."""
    return ["| operation | HTTP | supported | notes |", "|---|---|---|---|"] + [
        "| {} | {} | {} | {} |".format(operation, method, "yes" if ok else "no", note)
        for operation, method, ok, note in rows]
