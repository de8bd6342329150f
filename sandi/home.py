"""The home: where one authority's or one agency's state lives.

Resolution order: an explicit path (``--home``), then ``SANDI_HOME``, then the
platform's user data folder. A home holds:

* ``sandi.toml``: the configuration (role, province, agency, root fingerprint...);
* ``registry.db``: the registry (authority homes, SQLite default);
* ``keys/`` (0700): the encrypted key files of the file key store;
* ``directory.json``: the signed public directory (root, certificates, CRL, policies);
* ``directory.index``: its index (SQLite), which document commands read (ADR 0015);
* ``audit.journal``: the audit journal of document operations;
* ``directory.anchor.json``, ``audit.registry.anchor``, ``audit.journal.anchor``: the
  highest directory and audit checkpoints this home has seen (ADR 0010), so that a
  rolled-back directory or a cut or rewritten audit log is noticed;
  ``directory.anchor-header.json`` is the highest directory's signed header.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from sandi.errors import AlreadyExistsError, ConfigError
from sandi.formats.bounded import load_toml
from sandi.fsutil import atomic_write, ensure_private_dir
from sandi.i18n import SUPPORTED_LANGUAGES, Message, _, normalise_language
from sandi.timefmt import normalise_zone

CONFIG_NAME = "sandi.toml"
REGISTRY_NAME = "registry.db"
KEYS_DIR = "keys"
DIRECTORY_NAME = "directory.json"
JOURNAL_NAME = "audit.journal"
#: a copy of the highest directory this home installed (rollback guard, ADR 0010)
DIRECTORY_ANCHOR_NAME = "directory.anchor.json"
#: the signed header of that highest directory (v2), and the index of the installed one (ADR 0015)
DIRECTORY_ANCHOR_HEADER_NAME = "directory.anchor-header.json"
DIRECTORY_INDEX_NAME = "directory.index"
#: the highest checkpoint of the registry's / the journal's audit chain seen (ADR 0010)
REGISTRY_AUDIT_ANCHOR_NAME = "audit.registry.anchor"
JOURNAL_AUDIT_ANCHOR_NAME = "audit.journal.anchor"
#: sandi.toml is a few hundred bytes; anything this large is not one
MAX_CONFIG_BYTES = 64 * 1024
ENV_HOME = "SANDI_HOME"
ENV_DATABASE_URL = "SANDI_DATABASE_URL"

Role = Literal["authority", "workstation"]


def default_home() -> Path:
    """The platform's user data folder for sandi (e.g. ``~/.local/share/sandi``)."""
    import platformdirs  # lazy: only needed when no home was given

    return Path(platformdirs.user_data_dir("sandi", appauthor=False))


def resolve_home(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The home folder to use: ``explicit``, else ``$SANDI_HOME``, else the default."""
    if explicit:
        return Path(explicit).expanduser().absolute()
    env = os.environ.get(ENV_HOME)
    if env:
        return Path(env).expanduser().absolute()
    return default_home()


def read_home_settings(explicit: str | os.PathLike[str] | None, *keys: str) -> dict[str, str]:
    """The string settings ``keys`` of a home's configuration that are set (one read).

    Read before the command line parses anything (the language, the time zone), so it
    never raises: no home, an unreadable or broken configuration give ``{}``, and the
    command reports a broken configuration later, in the chosen language.
    """
    try:
        data = (resolve_home(explicit) / CONFIG_NAME).read_bytes()
        config = load_toml(data, max_bytes=MAX_CONFIG_BYTES, error=ConfigError)
    except (OSError, ConfigError):
        return {}
    return {key: value for key in keys if isinstance(value := config.get(key), str)}


@dataclass(frozen=True)
class HomeConfig:
    role: Role
    province: str
    agency: str | None = None
    root_fingerprint: str | None = None
    database_url: str | None = None
    keystore: str = "file"
    directory_validity_days: int = 7
    #: the language this home speaks unless SANDI_LANG or --lang say otherwise
    language: str | None = None
    #: the zone times are shown and read in (an IANA name; None: Asia/Jakarta, WIB)
    timezone: str | None = None
    #: the urgencies (sifat) a letter may have here (None: the defaults)
    urgencies: tuple[str, ...] | None = None
    extra: dict[str, object] = field(default_factory=dict)

    def to_toml(self) -> str:
        lines = ["# sandi home configuration", "format = 1", f"role = {_q(self.role)}",
                 f"province = {_q(self.province)}"]
        if self.agency:
            lines.append(f"agency = {_q(self.agency)}")
        if self.root_fingerprint:
            lines.append(f"root_fingerprint = {_q(self.root_fingerprint)}")
        if self.database_url:
            lines.append(f"database_url = {_q(self.database_url)}")
        lines.append(f"keystore = {_q(self.keystore)}")
        lines.append(f"directory_validity_days = {int(self.directory_validity_days)}")
        if self.language:
            lines.append(f"language = {_q(self.language)}")
        if self.timezone:
            lines.append(f"timezone = {_q(self.timezone)}")
        if self.urgencies:
            lines.append(f"urgencies = [{', '.join(_q(u) for u in self.urgencies)}]")
        for key, value in sorted(self.extra.items()):  # settings of other parts, kept as given
            if isinstance(value, bool):
                lines.append(f"{key} = {'true' if value else 'false'}")
            elif isinstance(value, int | float):
                lines.append(f"{key} = {value!r}")
            elif isinstance(value, str):
                lines.append(f"{key} = {_q(value)}")
        return "\n".join(lines) + "\n"

    @classmethod
    def from_toml(cls, text: str | bytes, *, source: str) -> HomeConfig:
        def refuse(reason: str) -> ConfigError:
            return ConfigError(Message("{source}: not a valid configuration: {reason}",
                                       source=source, reason=reason))

        data = load_toml(text, max_bytes=MAX_CONFIG_BYTES, error=refuse)
        if data.get("format") != 1:
            raise ConfigError(_("{source}: unsupported configuration format {get!r}").format(
                source=source,
                get=data.get('format'),
            ))
        role = data.get("role")
        if role not in ("authority", "workstation"):
            raise ConfigError(_("{source}: role must be 'authority' or 'workstation', not {role!r}").format(
                source=source,
                role=role,
            ))
        province = data.get("province")
        if not isinstance(province, str) or not province:
            raise ConfigError(_("{source}: 'province' is missing").format(source=source))
        days = data.get("directory_validity_days", 7)
        if not isinstance(days, int) or not 1 <= days <= 366:
            raise ConfigError(_("{source}: directory_validity_days must be 1..366").format(source=source))
        language = _opt_str(data, "language", source)
        if language is not None and normalise_language(language) is None:
            raise ConfigError(
                _("{source}: unknown language {language!r}").format(source=source, language=language),
                hint=_("choose one of: {choices}").format(choices=", ".join(SUPPORTED_LANGUAGES)),
            )
        timezone = _opt_str(data, "timezone", source)
        if timezone is not None and normalise_zone(timezone) is None:
            raise ConfigError(
                _("{source}: unknown time zone {zone!r}").format(source=source, zone=timezone),
                hint=_("use WIB, WITA or WIT, or an IANA name such as Asia/Jakarta"),
            )
        urgencies = _urgencies(data, source)
        known = {"format", "role", "province", "agency", "root_fingerprint", "database_url",
                 "keystore", "directory_validity_days", "language", "timezone", "urgencies"}
        return cls(
            role=role,
            province=province,
            agency=_opt_str(data, "agency", source),
            root_fingerprint=_opt_str(data, "root_fingerprint", source),
            database_url=_opt_str(data, "database_url", source),
            keystore=_opt_str(data, "keystore", source) or "file",
            directory_validity_days=days,
            language=language,
            timezone=None if timezone is None else normalise_zone(timezone),
            urgencies=urgencies,
            extra={k: v for k, v in data.items() if k not in known},
        )


class Home:
    """An existing (or about to be created) home folder."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __repr__(self) -> str:
        return f"Home({str(self.path)!r})"

    @property
    def config_path(self) -> Path:
        return self.path / CONFIG_NAME

    @property
    def keys_dir(self) -> Path:
        return self.path / KEYS_DIR

    @property
    def registry_path(self) -> Path:
        return self.path / REGISTRY_NAME

    @property
    def directory_path(self) -> Path:
        return self.path / DIRECTORY_NAME

    @property
    def journal_path(self) -> Path:
        return self.path / JOURNAL_NAME

    @property
    def directory_anchor_path(self) -> Path:
        return self.path / DIRECTORY_ANCHOR_NAME

    @property
    def directory_anchor_header_path(self) -> Path:
        return self.path / DIRECTORY_ANCHOR_HEADER_NAME

    @property
    def directory_index_path(self) -> Path:
        return self.path / DIRECTORY_INDEX_NAME

    @property
    def registry_audit_anchor_path(self) -> Path:
        return self.path / REGISTRY_AUDIT_ANCHOR_NAME

    @property
    def journal_audit_anchor_path(self) -> Path:
        return self.path / JOURNAL_AUDIT_ANCHOR_NAME

    def exists(self) -> bool:
        return self.config_path.exists()

    def load_config(self) -> HomeConfig:
        if not self.config_path.exists():
            raise ConfigError(
                _("no sandi home at {path}").format(path=self.path),
                hint=_("create one with 'sandi init', or point --home / SANDI_HOME at an existing home"),
            )
        try:
            text = self.config_path.read_bytes()
        except OSError as exc:
            raise ConfigError(_("cannot read {config_path}: {reason}").format(
                config_path=self.config_path,
                reason=exc.strerror,
            )) from None
        return HomeConfig.from_toml(text, source=str(self.config_path))

    def database_url(self, override: str | None = None) -> str:
        """The registry URL: ``override``, ``$SANDI_DATABASE_URL``, the config, or SQLite here."""
        if override:
            return override
        env = os.environ.get(ENV_DATABASE_URL)
        if env:
            return env
        cfg = self.load_config()
        if cfg.database_url:
            return cfg.database_url
        return f"sqlite:///{self.registry_path}"

    def create(self, config: HomeConfig, *, force: bool = False) -> None:
        """Lay out a new home: folder, key folder (0700), configuration.

        Refuses when a home is there already unless ``force``; even then it never
        deletes keys: ``force`` only allows re-using a folder that has no config.
        """
        if self.config_path.exists():
            raise AlreadyExistsError(
                _("a sandi home exists already at {path}").format(path=self.path),
                hint=_("use another --home, or remove that folder if you really mean to start over"),
            )
        if self.path.exists() and any(self.path.iterdir()) and not force:
            raise AlreadyExistsError(
                _("{path} exists and is not empty").format(path=self.path),
                hint=_("choose an empty or new folder, or pass --force to use it anyway"),
            )
        ensure_private_dir(self.path)
        ensure_private_dir(self.keys_dir)
        atomic_write(self.config_path, config.to_toml().encode(), mode=0o600, overwrite=False)


def _q(value: str) -> str:
    # A JSON string is a valid TOML basic string (same escapes, \uXXXX included).
    return json.dumps(value, ensure_ascii=False)


def _opt_str(data: dict[str, object], key: str, source: str) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ConfigError(_("{source}: '{key}' must be a string").format(source=source, key=key))
    return value


def _urgencies(data: dict[str, object], source: str) -> tuple[str, ...] | None:
    value = data.get("urgencies")
    if value is None:
        return None
    if (not isinstance(value, list) or not value
            or not all(isinstance(u, str) and u.strip() and len(u) <= 64 for u in value)):
        raise ConfigError(
            _("{source}: 'urgencies' must be a non-empty list of short names").format(source=source),
            hint=_('e.g. urgencies = ["Sangat Segera", "Segera", "Biasa"]'),
        )
    return tuple(u.strip() for u in value)
