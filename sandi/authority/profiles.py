"""Key profiles: which key pairs an agency gets, their lifetimes, overlap and naming.

Invariants:

* a profile is parsed strictly: unknown tables or keys, a wrong algorithm, a
  lifetime outside 1..3650 days or an overlap not shorter than the lifetime are
  :class:`PolicyError`-free :class:`UsageError` s naming the file and the key;
* the shipped profiles (``keys/default.toml`` and ``keys/pq.toml`` in the source
  tree) are built in (``DEFAULT_PROFILE_TOML``, ``PQ_PROFILE_TOML``, kept identical
  by a test), so an installed sandi has them without data files; an operator
  overrides one with ``<home>/profiles/NAME.toml`` (a file named ``default.toml``
  there replaces the built-in default);
* an optional ``[encryption_pq]`` table adds a hybrid post-quantum encryption key
  (ML-KEM-768 + X25519, age's ``age1pq1``) beside the X25519 one (ADR 0011); a
  profile without it issues exactly what it did before.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sandi.errors import NotFoundError, UsageError
from sandi.formats.bounded import load_toml
from sandi.i18n import Message, _

if TYPE_CHECKING:
    from sandi.home import Home

PROFILES_DIR = "profiles"
MAX_PROFILE_BYTES = 64 * 1024
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_PLACEHOLDERS = {"code", "name", "purpose", "province"}

DEFAULT_PROFILE_TOML = """\
# sandi key profile: what an agency gets when the authority issues its keys.
#
# The shipped default. To override it, copy this file to <home>/profiles/NAME.toml,
# edit it, and pass `--profile NAME` to `sandi keys issue / certify / renew / rotate`.
format = 1
name = "default"
description = "An Ed25519 signing key and an X25519 encryption key, certificates valid one year"

[signing]
algorithm = "ed25519"
validity_days = 365

[encryption]
algorithm = "x25519"
validity_days = 365

[rotation]
# Renew or rotate this many days before the certificates expire: the new ones are
# valid from the day they are issued, so old and new overlap until the old expire.
# `sandi keys list` marks certificates inside this window as "due".
overlap_days = 30

[naming]
# The certificate subject: C=ID, O=<province>, OU=<organizational_unit>, CN=<common_name>.
# Placeholders: {code}, {name}, {purpose} (signing | encryption | encryption-pq), {province}.
common_name = "{code} {purpose}"
organizational_unit = "{name}"
"""


PQ_PROFILE_TOML = """\
# sandi key profile "pq": the default keys plus a hybrid post-quantum encryption key.
#
# Shipped with sandi. Agencies that receive Rahasia / Sangat Rahasia documents need
# it where the PHKS policy requires post-quantum sealing (docs/policy.md, post_quantum).
# Issue with `sandi keys issue CODE --profile pq` (or renew / rotate to it).
format = 1
name = "pq"
description = "Ed25519 signing, X25519 and hybrid ML-KEM-768 + X25519 (age1pq1) encryption keys, one year"

[signing]
algorithm = "ed25519"
validity_days = 365

[encryption]
algorithm = "x25519"
validity_days = 365

[encryption_pq]
# age's hybrid post-quantum type mlkem768x25519: ML-KEM-768 and X25519 together, so
# a document stays secret unless both are broken (ADR 0011).
algorithm = "mlkem768x25519"
validity_days = 365

[rotation]
overlap_days = 30

[naming]
common_name = "{code} {purpose}"
organizational_unit = "{name}"
"""
BUILT_IN = {"default": DEFAULT_PROFILE_TOML, "pq": PQ_PROFILE_TOML}


X520_NAME_LIMIT = 64
ELLIPSIS = "\u2026"


def shorten_x520(text: str, limit: int = X520_NAME_LIMIT) -> str:
    """``text`` within X.520's ``limit`` characters: cut after the last whole word that
    fits and marked with an ellipsis, never in the middle of a word (unless one word is
    longer than the limit)."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    room = text[: limit - 1]
    cut = room.rsplit(" ", 1)[0] if " " in room else room
    return cut.rstrip(" ,;:-") + ELLIPSIS


@dataclass(frozen=True)
class KeyProfile:
    name: str
    description: str
    signing_validity_days: int
    encryption_validity_days: int
    overlap_days: int
    common_name: str
    organizational_unit: str
    #: days a hybrid post-quantum encryption certificate is valid; None: none is issued
    hybrid_validity_days: int | None = None

    @property
    def purposes(self) -> tuple[str, ...]:
        """The certificates an issuance under this profile makes, in order."""
        if self.hybrid_validity_days is None:
            return ("signing", "encryption")
        return ("signing", "encryption", "encryption-pq")
    #: [signing] token = true: agencies' signing keys are generated on the home's
    #: PKCS#11 token (keystore = "pkcs11"), never in software
    signing_on_token: bool = False

    def validity_days(self, purpose: str) -> int:
        if purpose == "signing":
            return self.signing_validity_days
        if purpose == "encryption-pq" and self.hybrid_validity_days is not None:
            return self.hybrid_validity_days
        return self.encryption_validity_days

    def subject_fields(self, *, code: str, name: str, purpose: str, province: str) -> tuple[str, str]:
        """(CN, OU) for one certificate; both bounded to the X.520 limit of 64 characters."""
        values = {"code": code, "name": name, "purpose": purpose, "province": province}
        cn = self.common_name.format(**values)
        if not 1 <= len(cn) <= 64:
            raise UsageError(
                _("the certificate name {cn!r} is longer than 64 characters").format(cn=cn),
                hint=_("use a shorter agency code, or change [naming] in profile {name!r}").format(
                    name=self.name,
                ),
            )
        # The OU carries the agency's full name, which may be long: shortened at a word
        # boundary with a visible ellipsis, never refused (the full name goes into the
        # subject's description attribute, see issue_certificate).
        ou = shorten_x520(self.organizational_unit.format(**values)) or code
        return cn, ou


def parse_profile(text: str, *, source: str) -> KeyProfile:
    """Parse and validate one profile file's text."""
    if len(text.encode()) > MAX_PROFILE_BYTES:
        raise UsageError(_("{source}: profile is larger than {max_profile_bytes} bytes").format(
            source=source,
            max_profile_bytes=MAX_PROFILE_BYTES,
        ))

    def refuse(reason: str) -> UsageError:
        return UsageError(Message("{source}: not a valid profile: {reason}", source=source, reason=reason))

    data = load_toml(text, max_bytes=MAX_PROFILE_BYTES, error=refuse)
    _keys(data, {"format", "name", "description", "signing", "encryption", "encryption_pq", "rotation",
                 "naming"}, source)
    if data.get("format") != 1:
        raise UsageError(_("{source}: unsupported profile format {get!r}").format(
            source=source,
            get=data.get('format'),
        ))
    name = data.get("name")
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
        raise UsageError(_("{source}: 'name' must match {pattern}").format(
            source=source,
            pattern=_NAME_RE.pattern,
        ))
    description = data.get("description", "")
    if not isinstance(description, str):
        raise UsageError(_("{source}: 'description' must be a string").format(source=source))
    signing = _table(data, "signing", source)
    encryption = _table(data, "encryption", source)
    rotation = _table(data, "rotation", source)
    naming = _table(data, "naming", source)
    _keys(signing, {"algorithm", "validity_days", "token"}, f"{source} [signing]")
    _keys(encryption, {"algorithm", "validity_days"}, f"{source} [encryption]")
    _keys(rotation, {"overlap_days"}, f"{source} [rotation]")
    _keys(naming, {"common_name", "organizational_unit"}, f"{source} [naming]")
    if signing.get("algorithm") != "ed25519":
        raise UsageError(_("{source}: [signing] algorithm must be \"ed25519\"").format(source=source))
    if encryption.get("algorithm") != "x25519":
        raise UsageError(_("{source}: [encryption] algorithm must be \"x25519\"").format(source=source))
    sig_days = _days(signing, "validity_days", source, 1, 3650)
    enc_days = _days(encryption, "validity_days", source, 1, 3650)
    hybrid_days: int | None = None
    if "encryption_pq" in data:
        hybrid = _table(data, "encryption_pq", source)
        _keys(hybrid, {"algorithm", "validity_days"}, f"{source} [encryption_pq]")
        if hybrid.get("algorithm") != "mlkem768x25519":
            raise UsageError(_('{source}: [encryption_pq] algorithm must be "mlkem768x25519"').format(
                source=source))
        hybrid_days = _days(hybrid, "validity_days", source, 1, 3650)
    overlap = _days(rotation, "overlap_days", source, 0, 3650)
    if overlap >= min(sig_days, enc_days, hybrid_days or enc_days):
        raise UsageError(_("{source}: [rotation] overlap_days must be shorter than the validity").format(
            source=source,
        ))
    cn = _template(naming, "common_name", source)
    ou = _template(naming, "organizational_unit", source)
    on_token = signing.get("token", False)
    if not isinstance(on_token, bool):
        raise UsageError(_("{source}: [signing] token must be true or false").format(source=source))
    return KeyProfile(name, description, sig_days, enc_days, overlap, cn, ou, hybrid_days, on_token)


def default_profile() -> KeyProfile:
    return parse_profile(DEFAULT_PROFILE_TOML, source="<built-in default profile>")


def load_profile(name: str | None = None, *, home: Home | None = None) -> KeyProfile:
    """The profile ``name`` (default: ``default``): the home's override, else the built-in."""
    name = name or "default"
    if not _NAME_RE.fullmatch(name):
        raise UsageError(
            _("not a profile name: {name!r}").format(
                name=name,
            ), hint=_("profile names are like 'default' or 'short-lived'")
        )
    if home is not None:
        path = home.path / PROFILES_DIR / f"{name}.toml"
        if path.is_file():
            profile = load_profile_file(path)
            if profile.name != name:
                raise UsageError(_("{path}: the file declares name = {name!r}, not {name2!r}").format(
                    path=path,
                    name=profile.name,
                    name2=name,
                ))
            return profile
    if name in BUILT_IN:
        return parse_profile(BUILT_IN[name], source=f"<built-in profile {name}>")
    raise NotFoundError(
        _("no key profile {name!r}").format(name=name),
        hint=_("write one with 'sandi keys profile show default > {name}.toml', edit it, "
               "and put it in {folder} in the home").format(name=name, folder=PROFILES_DIR),
    )


def profile_names(home: Home | None = None) -> list[str]:
    """Every profile a command on ``home`` can use: the built-in default and the home's files."""
    found = set(BUILT_IN)
    if home is not None and (home.path / PROFILES_DIR).is_dir():
        found.update(p.stem for p in (home.path / PROFILES_DIR).glob("*.toml") if _NAME_RE.fullmatch(p.stem))
    return sorted(found)


def profile_text(name: str | None = None, *, home: Home | None = None) -> tuple[str, str]:
    """The TOML source of profile ``name`` and where it comes from (a path, or ``built-in``).

    The text is checked first (:func:`load_profile`), so what is shown is what is used.
    """
    profile = load_profile(name, home=home)
    if home is not None:
        path = home.path / PROFILES_DIR / f"{profile.name}.toml"
        if path.is_file():
            return path.read_text(encoding="utf-8"), str(path)
    return BUILT_IN[profile.name], "built-in"


def load_profile_file(path: Path) -> KeyProfile:
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_PROFILE_BYTES + 1)
    except OSError as exc:
        raise UsageError(_("cannot read profile {path}: {reason}").format(
            path=path,
            reason=exc.strerror,
        )) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError(_("{path}: profile is not UTF-8").format(path=path)) from None
    return parse_profile(text, source=str(path))


def _table(data: dict[str, Any], key: str, source: str) -> dict[str, Any]:
    value = data.get(key)
    if not isinstance(value, dict):
        raise UsageError(_("{source}: table [{key}] is missing").format(source=source, key=key))
    return value


def _keys(data: dict[str, Any], allowed: set[str], source: str) -> None:
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise UsageError(_("{source}: unknown key(s) {unknown}").format(
            source=source,
            unknown=', '.join(unknown),
        ))


def _days(data: dict[str, Any], key: str, source: str, low: int, high: int) -> int:
    value = data.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise UsageError(_("{source}: {key} must be a whole number of days in {low}..{high}").format(
            source=source,
            key=key,
            low=low,
            high=high,
        ))
    return value


def _template(data: dict[str, Any], key: str, source: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise UsageError(_("{source}: [naming] {key} must be a non-empty string").format(
            source=source,
            key=key,
        ))
    names = set(re.findall(r"{([^{}]*)}", value))
    if names - _PLACEHOLDERS:
        raise UsageError(
            _("{source}: [naming] {key} uses unknown placeholder(s) {value}").format(
                source=source,
                key=key,
                value=sorted(names - _PLACEHOLDERS),
            )
        )
    return value
