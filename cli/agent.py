"""``sandi agent``: unlock the key store once for a working day (ADR 0018).

``start`` asks the passphrase here, in the foreground, and hands it to a background
process (``sandi agent serve``, hidden) on its standard input; that process unlocks the
store and answers on its socket (:mod:`sandi.keystore.agent`); ``start`` returns once it
says it is ready, or with its error (a wrong passphrase). ``status``, ``lock`` and
``stop`` talk to it. Where no agent can run (Windows), ``start`` refuses and says what
to use instead.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path
from typing import Any

import click

from sandi.errors import ConfigError, NotFoundError, SandiError, UsageError
from sandi.i18n import _

from .context import CliContext, pass_cli
from .passphrase import passphrase_file_option

_DURATION = re.compile(r"^\s*(\d{1,7})\s*([smhd]?)\s*$")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
#: what the background process may inherit: never a passphrase or PIN variable
_SECRET_VARIABLES = ("SANDI_PASSPHRASE", "SANDI_EXPORT_PASSPHRASE", "SANDI_FILE_PASSPHRASE",
                     "SANDI_PKCS11_PIN")
#: how long 'start' waits for the unlock (scrypt at work factor 22 takes tens of seconds)
_READY_SECONDS = 300


def parse_duration(text: str, option: str) -> int:
    """``8h``, ``30m``, ``90s``, ``1d`` or plain seconds; ``0``/``off`` is 0."""
    if text.strip().lower() in ("off", "0"):
        return 0
    match = _DURATION.match(text.lower())
    if match is None:
        raise UsageError(_("{option}: not a duration: {value!r}").format(option=option, value=text),
                         hint=_("write it like 8h, 30m, 90s or 1d"))
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def _keys_dir_of(obj: CliContext) -> Path:
    """The key folder an agent would serve: a file store, or a token's file fallback."""
    home = obj.home
    config = home.load_config()
    kind = config.keystore
    if kind == "pkcs11":
        from sandi.keystore.pkcs11 import TokenConfig

        kind = TokenConfig.from_settings(config.extra, source=str(home.config_path)).fallback
    if kind != "file":
        raise ConfigError(
            _("this home's key store ({kind}) asks for no passphrase: "
              "a key agent has nothing to hold").format(kind=kind),
            hint=_("the key agent serves the passphrase-protected file key store"),
        )
    return home.keys_dir


def _client(obj: CliContext) -> Any:
    from sandi.keystore.agent import AgentClient, require_agent_support

    require_agent_support()
    return AgentClient.find(obj.home.keys_dir)


@click.group("agent", help=_(
    "Unlock the key store once, not for every command (a key agent, like ssh-agent).\n"
    "\n"
    "'sandi agent start' asks the key store passphrase once; a background process keeps\n"
    "the keys unlocked in its memory until its timeout, an idle timeout, 'sandi agent\n"
    "lock' or 'sandi agent stop'. Meanwhile seal, open, sign and decrypt sign and unwrap\n"
    "through it and ask no passphrase; the keys never leave it. Without a running,\n"
    "unlocked agent, commands ask the passphrase as usual.\n"
    "\n"
    "Not on Windows: there the keyring key store (Windows Credential Manager,\n"
    "'sandi init --keystore keyring') asks no passphrase at all.\n"
    "\n"
    "\b\n"
    "Example:\n"
    "  sandi agent start --timeout 8h\n"
    "  sandi seal surat.pdf --as DISKOMINFO --to BAPPEDA --class R\n"
    "  sandi agent lock"
))
def agent() -> None:
    pass


@agent.command("start", help=_(
    "Ask the key store passphrase once and start the key agent of this home.\n"
    "\n"
    "The agent locks itself (forgets the keys) after --idle-timeout without use and\n"
    "ends after --timeout. Its unlock, locks and every signature and unwrap it makes\n"
    "are written to the home's audit journal.\n"
    "\n"
    "\b\n"
    "Example:\n"
    "  sandi agent start\n"
    "  sandi agent start --timeout 4h --idle-timeout 30m"
))
@click.option("--timeout", "timeout", default="8h", show_default=True,
              help=_("End the agent (and forget the keys) this long after it starts."))
@click.option("--idle-timeout", "idle", default="1h", show_default=True,
              help=_("Forget the keys after this long without use (0 or off: never)."))
@passphrase_file_option
@pass_cli
def start_cmd(obj: CliContext, timeout: str, idle: str, passphrase_file: Path | None) -> None:
    from sandi.keystore.agent import AgentUnavailable, check_settings

    settings = check_settings(parse_duration(timeout, "--timeout"), parse_duration(idle, "--idle-timeout"))
    keys_dir = _keys_dir_of(obj)
    client = _client(obj)
    if client is not None:
        try:
            status = client.status()
        except AgentUnavailable:
            status = None
        if status is not None and not status.get("locked"):
            obj.emit({"started": False, **status}, _("a key agent runs already for this home (pid {pid}), "
                                                      "unlocked").format(pid=status.get("pid")))
            return
        if status is not None:
            client.stop()  # a locked agent makes way for a fresh one
    passphrase = obj.store_passphrase(passphrase_file).get("the key store")
    ready = _spawn(obj, keys_dir, settings.lifetime_seconds, settings.idle_seconds, passphrase)
    obj.emit({"started": True, **ready}, _(
        "key agent started (pid {pid}): {keys} keys unlocked until {until}, idle timeout {idle}").format(
        pid=ready["pid"], keys=ready["keys"], until=_show(ready["expires_at"]),
        idle=_show_idle(settings.idle_seconds)))


def _spawn(obj: CliContext, keys_dir: Path, lifetime: int, idle: int, passphrase: bytes) -> dict[str, Any]:
    from sandi import portable

    env = {k: v for k, v in os.environ.items() if k not in _SECRET_VARIABLES}
    argv = [sys.executable, "-m", "sandi", "--home", str(obj.home.path), "agent", "serve",
            "--lifetime", str(lifetime), "--idle", str(idle)]
    process = portable.spawn_detached(argv, env, portable.agent_runtime_dir())
    assert process.stdin is not None and process.stdout is not None
    try:
        process.stdin.write(passphrase + b"\n")
        process.stdin.close()
    except OSError:
        pass  # it died at once: its answer (or none) says why
    import selectors

    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        line = process.stdout.readline(64 * 1024) if selector.select(_READY_SECONDS) else b""
    process.stdout.close()
    try:
        answer = json.loads(line)
    except ValueError:
        answer = None
    if not isinstance(answer, dict) or answer.get("ok") is not True:
        if process.poll() is None and not isinstance(answer, dict):
            process.kill()
        message = answer.get("error") if isinstance(answer, dict) else None
        hint = answer.get("hint") if isinstance(answer, dict) else None
        raise SandiError(str(message or _("the key agent did not start")), hint=str(hint or "") or None)
    return answer


@agent.command("serve", hidden=True)
@click.option("--lifetime", type=int, required=True)
@click.option("--idle", type=int, required=True)
@pass_cli
def serve_cmd(obj: CliContext, lifetime: int, idle: int) -> None:
    """The agent process itself (started by 'sandi agent start'): reads the passphrase on
    stdin, answers one JSON line on stdout (ready, or the error), then serves."""
    from sandi import portable
    from sandi.keystore import FixedPassphrase
    from sandi.keystore.agent import AgentServer, check_settings
    from sandi.keystore.passphrase import MAX_PASSPHRASE_BYTES

    portable.harden_secret_process()  # before any key is in memory
    out = sys.stdout
    try:
        line = sys.stdin.buffer.read(MAX_PASSPHRASE_BYTES + 2).split(b"\n", 1)[0].rstrip(b"\r")
        sys.stdin.close()
        home = obj.home
        server = AgentServer.unlock(home.path, _keys_dir_of(obj), home.journal_path, FixedPassphrase(line),
                                    check_settings(lifetime, idle))
        del line
    except SandiError as exc:
        out.write(json.dumps({"ok": False, "error": exc.message, "hint": exc.hint}) + "\n")
        out.flush()
        sys.exit(exc.exit_code)
    out.write(json.dumps({"ok": True, **server.status()}) + "\n")
    out.flush()
    # Nothing more goes to the terminal that started it: it may be gone already.
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    os.close(devnull)
    server.serve()


@agent.command("status", help=_(
    "Say whether a key agent runs for this home, and whether it is locked.\n"
    "\n"
    "Exits 0 whatever it finds.\n"
    "\n"
    "\b\n"
    "Example:\n"
    "  sandi agent status\n"
    "  sandi --json agent status"
))
@pass_cli
def status_cmd(obj: CliContext) -> None:
    from sandi.keystore.agent import AgentUnavailable

    client = _client(obj)
    try:
        status = client.status() if client is not None else None
    except AgentUnavailable:
        status = None
    if status is None:
        obj.emit({"running": False}, _("no key agent runs for this home"))
        return
    lines = [_("key agent running (pid {pid})").format(pid=status.get("pid"))]
    if status.get("locked"):
        lines.append(_("  locked ({reason}): commands ask the passphrase").format(
            reason=_lock_reason(str(status.get("locked_reason")))))
    else:
        lines.append(_("  unlocked: {keys} keys").format(keys=status.get("keys")))
    lines.append(_("  ends at:      {when}").format(when=_show(status.get("expires_at"))))
    lines.append(_("  idle timeout: {idle}").format(idle=_show_idle(int(status.get("idle_seconds") or 0))))
    lines.append(_("  last used:    {when}").format(when=_show(status.get("last_use_at"))))
    obj.emit({"running": True, **status}, lines)


def _lock_reason(reason: str) -> str:
    words = {"command": _("sandi agent lock"), "idle": _("idle timeout"), "timeout": _("timeout"),
             "stop": _("stopped")}
    return words.get(reason, reason)


@agent.command("lock", help=_(
    "Make the key agent forget the keys now (it keeps running, locked).\n"
    "\n"
    "Commands then ask the passphrase again; 'sandi agent start' unlocks anew.\n"
    "\n"
    "\b\n"
    "Example:\n"
    "  sandi agent lock"
))
@pass_cli
def lock_cmd(obj: CliContext) -> None:
    from sandi.keystore.agent import AgentUnavailable

    client = _client(obj)
    try:
        if client is None:
            raise AgentUnavailable
        client.lock()
    except AgentUnavailable:
        raise NotFoundError(_("no key agent runs for this home"),
                            hint=_("start one with 'sandi agent start'")) from None
    obj.emit({"locked": True}, _("key agent locked: the keys are forgotten"))


@agent.command("stop", help=_(
    "Stop the key agent of this home (it forgets the keys first).\n"
    "\n"
    "\b\n"
    "Example:\n"
    "  sandi agent stop"
))
@pass_cli
def stop_cmd(obj: CliContext) -> None:
    from sandi.keystore.agent import AgentUnavailable

    client = _client(obj)
    try:
        if client is None:
            raise AgentUnavailable
        client.stop()
    except AgentUnavailable:
        raise NotFoundError(_("no key agent runs for this home"),
                            hint=_("start one with 'sandi agent start'")) from None
    obj.emit({"stopped": True}, _("key agent stopped"))


def _show(epoch: object) -> str:
    from datetime import UTC, datetime

    from sandi.timefmt import show_time

    if not isinstance(epoch, int | float):
        return "-"
    return show_time(datetime.fromtimestamp(epoch, UTC))


def _show_idle(seconds: int) -> str:
    if not seconds:
        return _("off")
    if seconds % 3600 == 0:
        return _("{hours} h").format(hours=seconds // 3600)
    if seconds % 60 == 0:
        return _("{minutes} min").format(minutes=seconds // 60)
    return _("{seconds} s").format(seconds=seconds)
