"""The emulator's state: one SQLite database under the data directory.

Every service keeps its resources here (moto keeps them in dicts; we keep them on disk so a
restart loses nothing). One connection shared by the server threads, serialised by a lock:
SQLite writes are serialised anyway and the emulator's request rate is small.
"""
from __future__ import annotations

import contextlib
import sqlite3
import threading
from pathlib import Path
from typing import Any, Iterator, Optional


class Store:
    """A thread-safe wrapper around one SQLite connection."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA foreign_keys=ON")

    def ensure_schema(self, sql: str) -> None:
        """Create tables (``CREATE TABLE IF NOT EXISTS ...`` statements)."""
        with self._lock:
            self._db.executescript(sql)

    def execute(self, sql: str, params: Any = ()) -> int:
        """Run one statement; returns the number of rows changed."""
        with self._lock:
            return self._db.execute(sql, params).rowcount

    def query(self, sql: str, params: Any = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    def query_one(self, sql: str, params: Any = ()) -> Optional[sqlite3.Row]:
        with self._lock:
            return self._db.execute(sql, params).fetchone()

    @contextlib.contextmanager
    def transaction(self) -> Iterator["Store"]:
        """Group statements atomically: ``with store.transaction(): ...``."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            self._db.close()
