"""``sandi serve``: start the authority's HTTP front end (``sandi_server``) under uvicorn.

A thin starter: it checks the home and the registry the way every command does (so a
mistake is reported here, in the person's language, not in a worker's log), refuses to
run as root, and hands the rest to uvicorn. The web framework is imported only here
and in ``sandi_server``.
"""

from __future__ import annotations

import os
from pathlib import Path

import click

from sandi.errors import ConfigError, UsageError
from sandi.i18n import _

from .context import CliContext, pass_cli


@click.command("serve", help=_(
    "Serve the directory, CRL, root certificate and online enrolment over HTTP (authority).\n"
    "\n"
    "Reads the registry the other commands write (SQLite here, or PostgreSQL for\n"
    "replicas behind a load balancer). Needs no private key but, with --tsa, the\n"
    "time-stamp authority's (RFC 3161 time-stamps at /timestamp); run it as an\n"
    "unprivileged user. TLS: --ssl-certfile/--ssl-keyfile\n"
    "or a reverse proxy (docs/operations.md).\n"
    "\n"
    "\b\n"
    "Example:\n"
    "  sandi serve --host 0.0.0.0 --port 8080 --workers 2"
))
@click.option("--host", default="127.0.0.1", show_default=True, help=_("Address to listen on."))
@click.option("--port", type=click.IntRange(1, 65535), default=8080, show_default=True,
              help=_("Port to listen on."))
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True,
              help=_("Worker processes."))
@click.option("--ssl-certfile", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help=_("TLS certificate chain (PEM); without it, plain HTTP."))
@click.option("--ssl-keyfile", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help=_("TLS private key (PEM) for --ssl-certfile."))
@click.option("--forwarded-allow-ips", default="127.0.0.1", show_default=True,
              help=_("Reverse proxies whose X-Forwarded-For is trusted (comma-separated)."))
@click.option("--tsa", "tsa_dir", type=click.Path(file_okay=False, exists=True, path_type=Path),
              help=_("Folder with tsa.key and tsa.pem ('sandi keys tsa'): answer RFC 3161 time-stamp "
                     "requests [default: tsa_dir in sandi.toml; none: no time-stamps]."))
@click.option("--allow-root", is_flag=True,
              help=_("Serve even as root (a container whose root is not the host's)."))
@pass_cli
def serve_cmd(obj: CliContext, host: str, port: int, workers: int, ssl_certfile: Path | None,
              ssl_keyfile: Path | None, forwarded_allow_ips: str, tsa_dir: Path | None,
              allow_root: bool) -> None:
    if hasattr(os, "geteuid") and os.geteuid() == 0 and not allow_root:
        raise UsageError(_("refusing to serve as root"),
                         hint=_("run 'sandi serve' as an unprivileged user (docs/operations.md has a "
                                "systemd unit)"))
    if (ssl_certfile is None) != (ssl_keyfile is None):
        raise UsageError(_("--ssl-certfile and --ssl-keyfile go together"))
    if obj.config().role != "authority":
        raise ConfigError(_("{path} is an agency workstation: only the authority serves").format(
            path=obj.home.path))
    obj.registry()  # the schema is current, the database reachable: else an error here
    if tsa_dir is None and isinstance(setting := obj.config().extra.get("tsa_dir"), str) and setting:
        tsa_dir = Path(setting)
    if tsa_dir is not None:
        from sandi.authority.tsa import CERT_NAME, KEY_NAME, load_tsa_files

        # Checked here, in the person's language: the key is private, P-256, and the
        # certificate is for it (each worker loads them again).
        load_tsa_files(tsa_dir / KEY_NAME, tsa_dir / CERT_NAME)
    from importlib.util import find_spec

    # Only sandi_server imports the framework; here we only ask whether it is installed.
    if find_spec("uvicorn") is None or find_spec("starlette") is None:
        raise ConfigError(_("the server is not installed"),
                          hint=_("install it with: pip install 'sandi[server]'"))
    from importlib import import_module

    # By name: sandi_server is installed from server/ (mypy checks it there, not as a module).
    server = import_module("sandi_server")
    # The workers find the home and the registry as every command does.
    os.environ["SANDI_HOME"] = str(obj.home.path)
    if obj.database_url:
        os.environ["SANDI_DATABASE_URL"] = obj.database_url
    if tsa_dir is not None:
        os.environ["SANDI_TSA_DIR"] = str(tsa_dir.absolute())
    else:
        os.environ.pop("SANDI_TSA_DIR", None)
    obj.note(_("serving {home} on {scheme}://{host}:{port} ({workers} worker(s))").format(
        home=obj.home.path, scheme="https" if ssl_certfile else "http", host=host, port=port,
        workers=workers))
    server.run(host=host, port=port, workers=workers, ssl_certfile=ssl_certfile,
               ssl_keyfile=ssl_keyfile, forwarded_allow_ips=forwarded_allow_ips)
