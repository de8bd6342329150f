"""The least-privilege roles of docs/operations.md, run as written against a real server:
operators can work but not change the schema or the audit log; auditors only read."""

from __future__ import annotations

import json
import re
import secrets
from pathlib import Path

import psycopg
import pytest

from sandi.registry import db as registry_db
from tests import test_authority_support as support
from tests.conftest import RunSandi
from tests.pg import PgSource
from tests.test_registry_schema import _later_migrations, _snapshot

fast_env = support.fast_env
DOC = Path(__file__).parents[1] / "docs" / "operations.md"

pytestmark = pytest.mark.postgres


def _blocks() -> dict[str, list[str]]:
    """The SQL blocks of the roles section, keyed by their first comment word, as statements."""
    out: dict[str, list[str]] = {}
    for block in re.findall(r"```sql\n(.*?)```", DOC.read_text(), flags=re.S):
        first = block.splitlines()[0]
        key = first.removeprefix("-- ").split(":")[0]
        body = "\n".join(line for line in block.splitlines() if not line.startswith("--"))
        out[key] = [s.strip() for s in body.split(";") if s.strip()]
    return out


def _run(url: str, statements: list[str]) -> None:
    with psycopg.connect(url.replace("+psycopg", ""), autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement.encode())


def _refused(url: str, statement: str) -> None:
    """``statement`` fails for lack of privilege ("permission denied", "must be owner")."""
    with pytest.raises(psycopg.errors.InsufficientPrivilege), \
            psycopg.connect(url.replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute(statement.encode())


def test_documented_roles(
    pg_source: PgSource, tmp_path: Path, run_sandi: RunSandi, fast_env: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server = pg_source.server
    if server is None:
        pytest.skip("needs the throwaway server's superuser (not SANDI_TEST_POSTGRES_URL)")
    blocks = _blocks()
    assert set(blocks) >= {"roles", "schema", "grants"}
    tag = secrets.token_hex(4)
    names = {"sandi_registry": f"reg_{tag}", "sandi_owner": f"own_{tag}",
             "sandi_operator": f"op_{tag}", "sandi_auditor": f"aud_{tag}"}
    passwords = {role: secrets.token_urlsafe(12) for role in ("OWNER", "OPERATOR", "AUDITOR")}

    def adapt(statements: list[str]) -> list[str]:
        out = []
        for s in statements:
            for doc_name, name in names.items():
                s = re.sub(rf"\b{doc_name}\b", name, s)
            for role, pw in passwords.items():
                s = s.replace(f"CHANGE-ME-{role}", pw)
            out.append(s)
        return out

    db = names["sandi_registry"]
    _run(server.admin_url(), adapt(blocks["roles"]))
    _run(server.admin_url(db), adapt(blocks["schema"]))
    owner = server.url(db, user=names["sandi_owner"], password=passwords["OWNER"])
    operator = server.url(db, user=names["sandi_operator"], password=passwords["OPERATOR"])
    auditor = server.url(db, user=names["sandi_auditor"], password=passwords["AUDITOR"])

    # Before the grants an operator cannot even read; the owner upgrades.
    r = run_sandi("--database-url", operator, "db", "upgrade")
    assert r.code == 1 and "permission denied" in r.stderr, r
    r = run_sandi("--database-url", owner, "db", "upgrade")
    assert r.code == 0, r
    _run(owner, adapt(blocks["grants"]))

    # An operator does the daily work.
    home = tmp_path / "authority"
    for args in (("init", "--province", "Provinsi Banten"),
                 ("agency", "add", "DINKES", "--name", "Dinas Kesehatan"),
                 ("keys", "issue", "DINKES"),
                 ("keys", "renew", "DINKES"),
                 ("agency", "suspend", "--yes", "DINKES", "--reason", "audit"),
                 ("keys", "revoke", "--yes", "DINKES", "--reason", "cessationOfOperation")):
        r = run_sandi("--home", home, "--database-url", operator, *args)
        assert r.code == 0, (args, r)

    # ... but cannot change the schema, nor edit or delete the audit log.
    for statement in ("UPDATE audit_entries SET actor = 'someone else'",
                      "DELETE FROM audit_entries",
                      "DELETE FROM revocations",
                      "DROP TABLE agencies",
                      "CREATE TABLE mine (id int)",
                      "UPDATE alembic_version SET version_num = 'x'"):
        _refused(operator, statement)
    before = _snapshot(owner)
    monkeypatch.setattr(registry_db, "MIGRATIONS_DIR", _later_migrations(tmp_path))
    r = run_sandi("--database-url", operator, "db", "upgrade")
    assert r.code == 1 and "permission denied" in r.stderr, r
    monkeypatch.undo()
    assert _snapshot(owner) == before

    # An auditor reads and verifies, and writes nothing.
    r = run_sandi("--home", home, "--database-url", auditor, "--json", "db", "status")
    assert r.code == 0 and json.loads(r.stdout)["status"] == "current", r
    r = run_sandi("--home", home, "--database-url", auditor, "audit", "verify")
    assert r.code == 0, r
    r = run_sandi("--home", home, "--database-url", auditor, "agency", "add", "DISPAR", "--name", "Pariwisata")
    assert r.code == 1 and "permission denied" in r.stderr, r
    for statement in ("INSERT INTO audit_head (id, seq, hash) VALUES (2, 0, 'x')",
                      "UPDATE agencies SET status = 'active'"):
        _refused(auditor, statement)
    assert _snapshot(owner) == before
