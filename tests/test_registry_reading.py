"""Registry.reading(): the read-only transaction behind listings and audit reads.

It must see one consistent state from start to end, never commit, and on SQLite not
take the write lock, so that a long ``audit verify`` does not stop other operators.
"""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select

from sandi.errors import RegistryError
from sandi.registry import Registry
from sandi.registry.base import utcnow
from sandi.registry.models import AgencyRow


def _add(reg: Registry, code: str) -> None:
    now = utcnow()
    with reg.transaction() as session:
        session.add(AgencyRow(code=code, name=f"Dinas {code}", kind="agency", status="active",
                              created_at=now, updated_at=now))


def _count(session: object) -> int:
    return int(session.execute(select(func.count()).select_from(AgencyRow)).scalar_one())  # type: ignore[attr-defined]


def test_a_long_read_neither_blocks_writers_nor_sees_them(registry: Registry, registry_url: str) -> None:
    _add(registry, "A1")
    other = Registry(registry_url)  # another operator's process, in effect
    done = threading.Event()
    errors: list[BaseException] = []

    def write() -> None:
        try:
            _add(other, "A2")
            done.set()
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    with registry.reading() as session:
        assert _count(session) == 1
        writer = threading.Thread(target=write)
        writer.start()
        writer.join(15)  # a writer queued behind a lock would wait the full lock timeout (60 s)
        assert errors == []
        assert done.is_set(), "the writer waited for the reader"
        assert _count(session) == 1  # one state from start to end
    with registry.reading() as session:
        assert _count(session) == 2
    other.dispose()


def test_nothing_done_while_reading_is_kept(registry: Registry) -> None:
    now = utcnow()
    try:
        with registry.reading() as session:
            session.add(AgencyRow(code="X1", name="Dinas X1", kind="agency", status="active",
                                  created_at=now, updated_at=now))
            session.flush()  # SQLite takes the row into the transaction; it is rolled back
    except RegistryError as exc:  # PostgreSQL refuses it outright
        assert registry.dialect == "postgresql" and "read-only transaction" in str(exc), exc
    else:
        assert registry.dialect == "sqlite"
    with registry.reading() as session:
        assert _count(session) == 0


def test_an_error_inside_a_read_propagates_and_releases_the_connection(registry: Registry) -> None:
    with pytest.raises(ZeroDivisionError), registry.reading() as session:
        _count(session)
        1 / 0  # noqa: B018
    _add(registry, "A1")  # the write lock (SQLite) and the connection were released
    with registry.reading() as session:
        assert _count(session) == 1
