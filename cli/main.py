"""Entry point, global options, lazy command loading and the one error funnel.

Exit codes (documented in docs/cli.md):
  0 ok, 1 error, 2 usage, 3 denied by policy, 4 verification or decryption failed,
  5 the change was saved but the directory could not be republished, 130 interrupted.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from pathlib import Path
from typing import Any

import click

from sandi import __version__
from sandi.errors import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_USAGE, SandiError
from sandi.i18n import N_, _, current_language

from .clicktext import bind_click_catalog
from .context import CliContext

# name -> (module, attribute, one-line help). Modules load only when their command
# runs, so `sandi --help` and the document commands start fast.
COMMANDS: dict[str, tuple[str, str, str]] = {
    "init": ("sandi_cli.init", "init_cmd", N_("Create a home: an authority, or an agency workstation.")),
    "agency": ("sandi_cli.agency", "agency", N_("Register and manage agencies (authority).")),
    "official": ("sandi_cli.official", "official",
                 N_("Named officials of an agency and their personal signing keys.")),
    "keys": ("sandi_cli.keys", "keys", N_("Issue, enrol, renew, rotate, revoke and export keys.")),
    "agent": ("sandi_cli.agent", "agent",
              N_("Unlock the key store once for the day (a key agent, like ssh-agent).")),
    "crl": ("sandi_cli.keys", "crl_cmd", N_("Write the certificate revocation list signed by the root.")),
    "pdf-root": ("sandi_cli.pdfroot", "pdf_root",
                 N_("The PDF root: the P-256 CA for PDF signatures that viewers validate.")),
    "encrypt": ("sandi_cli.crypt", "encrypt_cmd", N_("Encrypt a file to agencies or a passphrase (age).")),
    "decrypt": ("sandi_cli.crypt", "decrypt_cmd", N_("Decrypt an age file with an agency key or identity.")),
    "sign": ("sandi_cli.documents", "sign_cmd", N_("Write a detached minisign signature for a file.")),
    "verify": ("sandi_cli.documents", "verify_cmd", N_("Verify a detached signature and its signer.")),
    "seal": ("sandi_cli.documents", "seal_cmd", N_("Sign and encrypt a document to agencies.")),
    "open": ("sandi_cli.documents", "open_cmd", N_("Decrypt and verify a sealed document.")),
    "inspect": ("sandi_cli.documents", "inspect_cmd", N_("Show what a sealed file says.")),
    "policy": ("sandi_cli.policy", "policy", N_("The communication-pattern policy (PHKS).")),
    "audit": ("sandi_cli.audit", "audit", N_("Read, verify, checkpoint and export the audit log.")),
    "directory": ("sandi_cli.directory", "directory", N_("Publish, import and show the directory.")),
    "db": ("sandi_cli.db", "db", N_("Registry database schema: status and upgrade.")),
    "serve": ("sandi_cli.serve", "serve_cmd",
              N_("Serve the directory, CRL, root and enrolment over HTTP (authority).")),
    "demo": ("sandi_cli.demo", "demo_cmd", N_("Run the whole product end to end in a fresh home.")),
}


# Commands that read the directory: on a workstation with a server, each refreshes a
# directory near its expiry first (sandi.directory.online).
REFRESHING_COMMANDS = frozenset({"seal", "open", "sign", "verify", "encrypt", "decrypt", "inspect"})


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
            with formatter.section(_("Commands")):
                formatter.write_dl([(name, _(help_)) for name, help_ in rows])


def _module_exists(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


ROOT_HELP = N_(
    "sandi: the persandian toolkit of a provincial government.\n\n"
    "A key authority for the province's agencies, sealed official documents "
    "(age + minisign + X.509), the communication-pattern policy (PHKS) and a "
    "tamper-evident audit log."
)
ROOT_EPILOG = N_(
    "Examples:\n\n"
    "  sandi init --province 'Provinsi Banten'\n\n"
    "  sandi seal surat.pdf --as DISKOMINFO --to BAPPEDA --class R\n\n"
    "Shell completion: eval \"$(_SANDI_COMPLETE=bash_source sandi)\" (zsh_source, fish_source); "
    "PowerShell: $env:_SANDI_COMPLETE = \"powershell_source\"; sandi | Out-String | Invoke-Expression"
)
# Root option name -> its help, translated when the language is known (see _localise_root).
ROOT_OPTION_HELP = {
    "home": N_("The sandi home folder [env SANDI_HOME; default: the user data folder]."),
    "database_url": N_(
        "Registry database URL (SQLAlchemy) [env SANDI_DATABASE_URL; default: SQLite in the home]."
    ),
    "lang": N_("Language of messages: en or id [env SANDI_LANG; default: the home's, then the locale]."),
    "pin_file": N_("PKCS#11 token PIN from this file (mode 0600) [else $SANDI_PKCS11_PIN, else a prompt]."),
    "json_output": N_("Machine-readable JSON output."),
    "debug": N_("Show tracebacks on errors."),
    "version": N_("Show the version and exit."),
}


@click.group(
    cls=LazyGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    help=ROOT_HELP,
    epilog=ROOT_EPILOG,
)
@click.version_option(__version__, "--version", prog_name="sandi")
@click.option(
    "--home",
    type=click.Path(file_okay=False, path_type=str),
    envvar="SANDI_HOME",
)
@click.option("--database-url", envvar="SANDI_DATABASE_URL")
# The language was chosen before click parsed anything (see main); the option is
# declared so that it is accepted and documented.
@click.option("--lang", metavar="LANG", expose_value=False)
@click.option("--pin-file", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option("--json", "json_output", is_flag=True)
@click.option("--debug", is_flag=True)
@click.pass_context
def cli(
    ctx: click.Context, home: str | None, database_url: str | None, pin_file: Path | None,
    json_output: bool, debug: bool,
) -> None:
    ctx.obj = CliContext(
        home_option=home, database_url=database_url, json_output=json_output, debug=debug,
        pin_file=pin_file,
    )
    ctx.call_on_close(ctx.obj.close_stores)
    if ctx.invoked_subcommand in REFRESHING_COMMANDS and not {"--help", "-h"} & set(ctx.args):
        ctx.obj.refresh_directory()


@cli.result_callback()
@click.pass_context
def _after_command(ctx: click.Context, *_results: Any, **_params: Any) -> None:
    """An authority republishes its own directory after every registry change, so
    every home reads public data the same way (from the signed directory)."""
    obj = ctx.find_object(CliContext)
    if obj is None:
        return
    obj.check_directory_expiry()
    if obj.registry_changed():
        from .directory import republish_or_warn

        republish_or_warn(obj)


def _localise_root() -> None:
    """Put the root group's texts in the chosen language (they were built at import)."""
    cli.help = _(ROOT_HELP)
    cli.epilog = _(ROOT_EPILOG)
    for param in cli.params:
        if isinstance(param, click.Option) and param.name in ROOT_OPTION_HELP:
            param.help = _(ROOT_OPTION_HELP[param.name])
    # The help option is created per context; its text comes from click's own catalog.


def _option_value(args: list[str], name: str) -> str | None:
    """The value of a root option given before the command (``--name V`` or ``--name=V``)."""
    for index, arg in enumerate(args):
        if arg == "--":
            break
        if arg == name and index + 1 < len(args):
            return args[index + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None


def choose_language(args: list[str], home_default: str | None) -> None:
    """Settle the language before any command module is imported, so their help
    texts, built at import, are already in it: ``--lang``, ``SANDI_LANG``, the
    home's default (``home_default``), the locale, English."""
    from sandi.errors import UsageError
    from sandi.i18n import UnknownLanguage, language_from_environment, set_language

    explicit = _option_value(args, "--lang")
    if explicit is not None:
        try:
            set_language(explicit)
        except UnknownLanguage as exc:
            raise UsageError(exc.message, hint=exc.hint) from None
        return
    set_language(language_from_environment(os.environ, home_default))


def choose_zone(configured: str | None) -> None:
    """The zone times are shown and read in: the home's (sandi.toml ``timezone``), else
    WIB. An unknown zone in the configuration is reported by the command that loads it."""
    from sandi.timefmt import DEFAULT_ZONE, normalise_zone, set_zone

    set_zone(normalise_zone(configured or "") or DEFAULT_ZONE)


def main(argv: list[str] | None = None) -> None:
    """Run the command line; every error leaves through here with its exit code."""
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args or os.environ.get("SANDI_DEBUG") == "1"
    try:
        from sandi.home import read_home_settings

        # The home's configuration, read once for both, before any command module loads.
        settings = read_home_settings(_option_value(args, "--home"), "language", "timezone")
        choose_language(args, settings.get("language"))
        bind_click_catalog(current_language())
        choose_zone(settings.get("timezone"))
        _localise_root()
        if "_SANDI_COMPLETE" in os.environ:
            from .completion import register

            register()  # PowerShell beside click's bash, zsh and fish
        # Without standalone mode click *returns* the code of ctx.exit(n).
        # NO_COLOR (no-color.org): any non-empty value turns colour off everywhere.
        color = False if os.environ.get("NO_COLOR") else None
        code = cli.main(args=args, prog_name="sandi", standalone_mode=False, color=color)
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
    except click.exceptions.Abort as exc:
        # click turns Ctrl-C into Abort; an interrupt keeps its documented exit code.
        if isinstance(exc.__context__, KeyboardInterrupt):
            click.echo(_("error: interrupted"), err=True)
            sys.exit(EXIT_INTERRUPTED)
        click.echo(_("error: aborted"), err=True)
        sys.exit(EXIT_ERROR)
    except click.ClickException as exc:
        # UsageError, BadParameter, NoSuchOption... (exit code 2), FileError (1)
        if isinstance(exc, click.UsageError) and exc.ctx is not None:
            click.echo(exc.ctx.get_usage(), err=True)
        hint = _("see 'sandi --help' or 'sandi COMMAND --help'") if exc.exit_code == EXIT_USAGE else ""
        _report(exc.format_message(), hint)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo(_("error: interrupted"), err=True)
        sys.exit(EXIT_INTERRUPTED)
    except BrokenPipeError:
        # The reader went away (e.g. `sandi audit log | head`): not our error.
        sys.stderr.close()
        sys.exit(EXIT_ERROR)
    except Exception as exc:  # the funnel: never a bare traceback without --debug
        if debug:
            raise
        _report(
            _("internal error: {kind}").format(kind=exc.__class__.__name__),
            _("this is a bug in sandi; run again with --debug and report the traceback"),
        )
        sys.exit(EXIT_ERROR)


def _report(message: str, hint: str | None) -> None:
    click.echo(_("error: {message}").format(message=message), err=True)
    if hint:
        click.echo(_("hint: {hint}").format(hint=hint), err=True)
