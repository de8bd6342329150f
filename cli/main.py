"""Entry point, global options, lazy command loading and the one error funnel.

Exit codes (documented in docs/cli.md):
  0 ok, 1 error, 2 usage, 3 denied by policy, 4 verification or decryption failed,
  130 interrupted.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from typing import Any

import click

from sandi import __version__
from sandi.errors import EXIT_ERROR, EXIT_USAGE, SandiError

from .context import CliContext

# name -> (module, attribute, one-line help). Modules load only when their command
# runs, so `sandi --help` and the document commands start fast.
COMMANDS: dict[str, tuple[str, str, str]] = {
    "init": ("sandi_cli.init", "init_cmd", "Create a home: an authority, or an agency workstation."),
    "agency": ("sandi_cli.agency", "agency", "Register and manage agencies (authority)."),
    "keys": ("sandi_cli.keys", "keys", "Issue, enrol, renew, rotate, revoke and export keys."),
    "crl": ("sandi_cli.keys", "crl_cmd", "Write the certificate revocation list signed by the root."),
    "encrypt": ("sandi_cli.crypt", "encrypt_cmd", "Encrypt a file to agencies or a passphrase (age)."),
    "decrypt": ("sandi_cli.crypt", "decrypt_cmd", "Decrypt an age file with an agency key or identity."),
    "sign": ("sandi_cli.documents", "sign_cmd", "Write a detached minisign signature for a file."),
    "verify": ("sandi_cli.documents", "verify_cmd", "Verify a detached signature and its signer."),
    "seal": ("sandi_cli.documents", "seal_cmd", "Sign and encrypt a document to agencies."),
    "open": ("sandi_cli.documents", "open_cmd", "Decrypt and verify a sealed document."),
    "inspect": ("sandi_cli.documents", "inspect_cmd", "Show what a sealed file says."),
    "policy": ("sandi_cli.policy", "policy", "The communication-pattern policy (PHKS)."),
    "audit": ("sandi_cli.audit", "audit", "Read, verify, checkpoint and export the audit log."),
    "directory": ("sandi_cli.directory", "directory", "Publish, import and show the directory."),
    "db": ("sandi_cli.db", "db", "Registry database schema: status and upgrade."),
    "demo": ("sandi_cli.demo", "demo_cmd", "Run the whole product end to end in a fresh home."),
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [name for name, (module, _, _) in COMMANDS.items() if _module_exists(module)]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = COMMANDS.get(cmd_name)
        if entry is None or not _module_exists(entry[0]):
            return None
        module, attr, _ = entry
        command = getattr(importlib.import_module(module), attr)
        assert isinstance(command, click.Command)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # The help listing comes from the table, so `--help` imports no command module.
        rows = [
            (name, help_)
            for name, (module, _, help_) in COMMANDS.items()
            if _module_exists(module)
        ]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


def _module_exists(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


@click.group(
    cls=LazyGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog=(
        "Examples:\n\n"
        "  sandi init --province 'Provinsi Banten'\n\n"
        "  sandi seal surat.pdf --as DISKOMINFO --to BAPPEDA --class R\n\n"
        "Shell completion: eval \"$(_SANDI_COMPLETE=bash_source sandi)\" (zsh_source, fish_source)."
    ),
)
@click.version_option(__version__, "--version", prog_name="sandi")
@click.option(
    "--home",
    type=click.Path(file_okay=False, path_type=str),
    envvar="SANDI_HOME",
    help="The sandi home folder [env SANDI_HOME; default: the user data folder].",
)
@click.option(
    "--database-url",
    envvar="SANDI_DATABASE_URL",
    help="Registry database URL (SQLAlchemy) [env SANDI_DATABASE_URL; default: SQLite in the home].",
)
@click.option("--json", "json_output", is_flag=True, help="Machine-readable JSON output.")
@click.option("--debug", is_flag=True, help="Show tracebacks on errors.")
@click.pass_context
def cli(
    ctx: click.Context, home: str | None, database_url: str | None, json_output: bool, debug: bool
) -> None:
    """sandi: the persandian toolkit of a provincial government.

    A key authority for the province's agencies, sealed official documents
    (age + minisign + X.509), the communication-pattern policy (PHKS) and a
    tamper-evident audit log.
    """
    ctx.obj = CliContext(
        home_option=home, database_url=database_url, json_output=json_output, debug=debug
    )


@cli.result_callback()
@click.pass_context
def _after_command(ctx: click.Context, *_: Any, **__: Any) -> None:
    """An authority republishes its own directory after every registry change, so
    every home reads public data the same way (from the signed directory)."""
    obj = ctx.find_object(CliContext)
    if obj is None:
        return
    obj.check_directory_expiry()
    if obj.registry_changed():
        from .directory import republish_or_warn

        republish_or_warn(obj)


def main(argv: list[str] | None = None) -> None:
    """Run the command line; every error leaves through here with its exit code."""
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args or os.environ.get("SANDI_DEBUG") == "1"
    try:
        # Without standalone mode click *returns* the code of ctx.exit(n).
        code = cli.main(args=args, prog_name="sandi", standalone_mode=False)
        if isinstance(code, int) and code != 0:
            sys.exit(code)
    except SandiError as exc:
        if debug:
            import traceback

            traceback.print_exc()
        _report(str(exc), exc.hint)
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("error: aborted", err=True)
        sys.exit(EXIT_ERROR)
    except click.ClickException as exc:
        # UsageError, BadParameter, NoSuchOption... (exit code 2), FileError (1)
        if isinstance(exc, click.UsageError) and exc.ctx is not None:
            click.echo(exc.ctx.get_usage(), err=True)
        hint = "see 'sandi --help' or 'sandi COMMAND --help'" if exc.exit_code == EXIT_USAGE else ""
        _report(exc.format_message(), hint)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("error: interrupted", err=True)
        sys.exit(130)
    except BrokenPipeError:
        # The reader went away (e.g. `sandi audit log | head`): not our error.
        sys.stderr.close()
        sys.exit(EXIT_ERROR)
    except Exception as exc:  # the funnel: never a bare traceback without --debug
        if debug:
            raise
        _report(
            f"internal error: {exc.__class__.__name__}",
            "this is a bug in sandi; run again with --debug and report the traceback",
        )
        sys.exit(EXIT_ERROR)


def _report(message: str, hint: str | None) -> None:
    click.echo(f"error: {message}", err=True)
    if hint:
        click.echo(f"hint: {hint}", err=True)
