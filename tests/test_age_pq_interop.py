"""Post-quantum interop with the reference JavaScript age (npm ``age-encryption`` 0.3.1,
by age's author), both directions: the Debian ``age`` (1.1.1) predates the hybrid type.

sandi -> typage and typage -> sandi, binary and armored, one and several hybrid
recipients, sizes around the 64 KiB chunk boundary. The package is installed by
scripts/install-tools.sh into ``$AGE_JS_DIR`` (default /opt/sandi-tools/age-js).
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from sandi.formats.age import (
    CHUNK_SIZE,
    MLKEM768X25519_TYPE,
    MLKEM768X25519Identity,
    MLKEM768X25519Recipient,
    decrypt,
    encrypt,
    parse_header,
)

AGE_JS_DIR = Path(os.environ.get("AGE_JS_DIR", "/opt/sandi-tools/age-js"))
SCRIPT = Path(__file__).parent / "interop" / "age_js.mjs"

pytestmark = [
    pytest.mark.interop,
    pytest.mark.skipif(
        shutil.which("node") is None or not (AGE_JS_DIR / "node_modules" / "age-encryption").is_dir(),
        reason="node and the age-encryption package are not installed (scripts/install-tools.sh)",
    ),
]

SIZES = {"empty": 0, "1B": 1, "64KiB": CHUNK_SIZE, "64KiB+1": CHUNK_SIZE + 1}


def _js(*args: str, data: bytes = b"") -> bytes:
    env = {**os.environ, "AGE_JS_DIR": str(AGE_JS_DIR)}
    done = subprocess.run(["node", str(SCRIPT), *args], input=data, capture_output=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    return done.stdout


@pytest.fixture(scope="module")
def js_pair() -> tuple[str, str]:
    identity, recipient = _js("keygen").decode().split()
    return identity, recipient


def test_keys_agree(js_pair: tuple[str, str]) -> None:
    identity, recipient = js_pair
    assert MLKEM768X25519Identity.from_bech32(identity).recipient.to_bech32() == recipient


@pytest.mark.parametrize("armor", [False, True], ids=["binary", "armor"])
@pytest.mark.parametrize("size", SIZES.values(), ids=SIZES.keys())
def test_sandi_to_js(js_pair: tuple[str, str], size: int, armor: bool) -> None:
    identity, recipient = js_pair
    data = os.urandom(size)
    out = io.BytesIO()
    others = [MLKEM768X25519Identity.generate().recipient for _ in range(2)]
    encrypt(io.BytesIO(data), out, [*others, MLKEM768X25519Recipient.from_bech32(recipient)], armor=armor)
    assert _js("decrypt", identity, data=out.getvalue()) == data


@pytest.mark.parametrize("armor", [False, True], ids=["binary", "armor"])
@pytest.mark.parametrize("size", SIZES.values(), ids=SIZES.keys())
def test_js_to_sandi(size: int, armor: bool) -> None:
    ours = MLKEM768X25519Identity.generate()
    other = MLKEM768X25519Identity.generate()
    data = os.urandom(size)
    args = ["encrypt", *(["-a"] if armor else []), other.recipient.to_bech32(), ours.recipient.to_bech32()]
    ct = _js(*args, data=data)
    assert [s.type for s in parse_header(io.BytesIO(ct)).stanzas] == [MLKEM768X25519_TYPE] * 2
    plain = io.BytesIO()
    decrypt(io.BytesIO(ct), plain, [ours])
    assert plain.getvalue() == data
