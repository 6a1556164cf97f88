"""Fixtures of the `capsule sync` tests: a sandbox, and a PostgreSQL schema of the test's own."""

from __future__ import annotations

import uuid

import pytest
from psycopg import sql
from sync_helpers import TOKEN, SyncDB, postgres_reachable

from tap_capsule.sandbox import Sandbox


@pytest.fixture
def schema():
    postgres_reachable()
    name = f"sync_test_{uuid.uuid4().hex[:10]}"
    db = SyncDB(name)
    yield db
    db.conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))
    db.conn.close()


@pytest.fixture
def sandbox():
    with Sandbox(token=TOKEN, scale=12, seed=5) as sb:
        yield sb
