"""``sandi demo``: the whole product, end to end, in a fresh home.

Each step says what it does, shows the command a person would type, and runs it
(in this process, through the same command line). Nothing outside the demo folder
is touched: the demo never uses an existing home.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from sandi.errors import SandiError, UsageError
from sandi.i18n import _

from .context import CliContext, pass_cli

DEMO_PASSPHRASE = "demo-passphrase"  # noqa: S105 - a throwaway home's passphrase, printed on purpose
LETTER = """PEMERINTAH PROVINSI BANTEN
DINAS KOMUNIKASI, INFORMATIKA, STATISTIK DAN PERSANDIAN

Nomor    : 005/117/DISKOMINFO/2026
Sifat    : Segera
Lampiran : -
Hal      : Koordinasi pengamanan informasi

Yth. Kepala Badan Perencanaan Pembangunan Daerah
     Sekretaris Daerah Provinsi Banten

Dengan hormat, bersama ini kami sampaikan rencana pengamanan jaring komunikasi
sandi menjelang akhir tahun anggaran 2026.
"""


def bundled_policy() -> Path:
    """The shipped Banten policy (installed as ``sandi_policies``)."""
    from sandi.policy.shipped import shipped_policy_path

    found = shipped_policy_path("banten")
    if found is None:
        raise UsageError(_("the shipped Banten policy is missing from this installation"),
                         hint=_("reinstall sandi (pip install --force-reinstall sandi)"))
    return found


class _Demo:
    def __init__(self, root: Path, obj: CliContext) -> None:
        self.root = root
        self.home = root / "authority"
        self.work = root / "surat"
        self.obj = obj
        self.step_no = 0
        self.done: list[str] = []

    def step(self, title: str) -> None:
        self.step_no += 1
        click.secho(f"\n== {self.step_no}. {title}", bold=True)

    def say(self, text: str) -> None:
        click.echo(f"   {text}")

    def sandi(self, *args: str, expect_code: int = 0) -> int:
        """Run ``sandi ARGS`` as a person would, here in this process."""
        from .main import cli

        click.secho("$ sandi " + " ".join(shlex.quote(a) for a in args), fg="cyan")
        code = 0
        try:
            cli.main(args=[*self._globals(), *args], prog_name="sandi", standalone_mode=False)
        except SandiError as exc:
            code = exc.exit_code
            click.echo(_("error: {exc}").format(exc=exc))
            if exc.hint:
                click.echo(_("hint: {hint}").format(hint=exc.hint))
        except click.exceptions.Exit as exc:
            code = exc.exit_code
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        if code != expect_code:
            raise click.ClickException(
                _("demo step failed: 'sandi {args}' exited {code}, expected {expect_code}").format(
                    args=' '.join(args),
                    code=code,
                    expect_code=expect_code,
                )
            )
        return code

    def _globals(self) -> list[str]:
        return ["--json"] if self.obj.json_output else []

    def shell(self, command: str, *, cwd: Path) -> bool:
        click.secho(f"$ {command}", fg="cyan")
        result = subprocess.run(["bash", "-o", "pipefail", "-c", command], cwd=cwd,
                                capture_output=True, text=True, check=False)
        for line in (result.stdout + result.stderr).strip().splitlines():
            click.echo(f"  {line}")
        return result.returncode == 0


@contextmanager
def _env(**values: str) -> Iterator[None]:
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in old.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@click.command("demo", help=_(
    "Run the whole product end to end in a fresh home, explaining each step.\n"
    "\n"
    "It creates an authority for the Province of Banten (SQLite registry, file key\n"
    "store with a demo passphrase), registers the entities of policies/banten.toml,\n"
    "issues their keys, applies the policy, seals a Rahasia letter from DISKOMINFO to\n"
    "BAPPEDA and SETDA, opens it, shows a relation the policy refuses, checks the\n"
    "letter with age, tar and minisign, revokes a key, verifies the audit log and\n"
    "draws the communication pattern.\n"
    "\n"
    "\b\n"
    "Example:\n"
    "  sandi demo\n"
    "  sandi demo --dir ./sandi-demo"
))
@click.option("--dir", "folder", type=click.Path(file_okay=False, path_type=Path),
              help=_("Folder for the demo (must not exist or be empty) [default: a new temporary folder]."))
@pass_cli
def demo_cmd(obj: CliContext, folder: Path | None) -> None:
    if folder is None:
        folder = Path(tempfile.mkdtemp(prefix="sandi-demo-"))
    elif folder.exists() and any(folder.iterdir()):
        raise UsageError(_("{folder} is not empty").format(
            folder=folder,
        ), hint=_("give a new or empty folder to --dir"))
    folder = folder.absolute()
    folder.mkdir(parents=True, exist_ok=True)
    demo = _Demo(folder, obj)
    env = {"SANDI_HOME": str(demo.home), "SANDI_PASSPHRASE": DEMO_PASSPHRASE,
           "SANDI_EXPORT_PASSPHRASE": DEMO_PASSPHRASE}
    obj.home_option = str(demo.home)
    obj.database_url = None
    with _env(**env):
        _run(demo)


def _run(demo: _Demo) -> None:
    policy = bundled_policy()
    click.secho(_("sandi demo: an authority for the Province of Banten, end to end"), bold=True)
    click.echo(_("everything happens in {root}; the commands below use:").format(root=demo.root))
    click.secho(_("$ export SANDI_HOME={quote}").format(quote=shlex.quote(str(demo.home))), fg="cyan")
    click.secho(_("$ export SANDI_PASSPHRASE={demo_passphrase}   # demo only: normally you are "
                  "asked").format(demo_passphrase=DEMO_PASSPHRASE),
                fg="cyan")

    demo.step(_("Create the authority: home, registry (SQLite), encrypted key store, root CA"))
    demo.sandi("init", "--province", "Provinsi Banten")

    demo.step(_("Register every entity the Banten policy names (leaders, agencies, regencies, cities, "
                "central bodies)"))
    demo.sandi("agency", "add", "--from-policy", str(policy))

    demo.step(_("Apply the communication-pattern policy (PHKS), signed by the root key"))
    demo.sandi("policy", "apply", str(policy))

    demo.step(_("Issue signing (Ed25519) and encryption (X25519) keys with X.509 certificates"))
    for code in ("DISKOMINFO", "BAPPEDA", "SETDA", "DINSOS", "DISPAR"):
        demo.sandi("keys", "issue", code)
    demo.sandi("keys", "list", "DISKOMINFO")

    demo.step(_("Seal a Rahasia letter from DISKOMINFO to BAPPEDA and SETDA"))
    demo.work.mkdir()
    letter = demo.work / "surat-koordinasi.txt"
    letter.write_text(LETTER, encoding="utf-8")
    sealed = demo.work / "surat-koordinasi.txt.sandi"
    demo.sandi("seal", str(letter), "--as", "DISKOMINFO", "--to", "BAPPEDA", "--to", "SETDA",
               "--class", "Rahasia", "--nomor", "005/117/DISKOMINFO/2026", "--sifat", "Segera",
               "--lampiran", "1 (satu) berkas", "--hal", "Koordinasi pengamanan informasi",
               "--kepada", "Kepala BAPPEDA Provinsi Banten",
               "--tembusan", "Gubernur Banten", "--tembusan", "Sekretaris Daerah Provinsi Banten",
               "--penandatangan", "Dr. Ahmad Fauzi", "--jabatan", "Kepala Dinas", "--nip",
               "19750312 200212 1 003", "-o", str(sealed))
    demo.sandi("inspect", str(sealed))

    demo.step(_("Open it as BAPPEDA: decrypt, verify signature, certificate, recipients, policy"))
    inbox = demo.work / "masuk-bappeda"
    inbox.mkdir()
    demo.sandi("open", str(sealed), "--as", "BAPPEDA", "--output-dir", str(inbox))

    demo.step(_("A relation the policy refuses: DINSOS may not send Rahasia to DISPAR"))
    demo.say(_("nothing is written, the exit code is 3, and the refusal is in the audit log"))
    refused = demo.work / "nota-dinsos.txt"
    refused.write_text("Nota dinas DINSOS\n", encoding="utf-8")
    demo.sandi("seal", str(refused), "--as", "DINSOS", "--to", "DISPAR", "--class", "R", expect_code=3)
    demo.sandi("policy", "explain", "--from", "DINSOS", "--to", "DISPAR", "--class", "R", expect_code=3)

    demo.step(_("Check the sealed letter with the standard tools (age, tar, minisign)"))
    _standard_tools(demo, sealed)

    demo.step(_("Revoke DISKOMINFO's keys (key compromise): its letters no longer verify"))
    demo.sandi("keys", "revoke", "DISKOMINFO", "--reason", "keyCompromise", "--yes")
    inbox2 = demo.work / "masuk-setda"
    inbox2.mkdir()
    demo.sandi("open", str(sealed), "--as", "SETDA", "--output-dir", str(inbox2), expect_code=4)

    demo.step(_("Verify the audit log: every event above, hash-chained and signed"))
    demo.sandi("audit", "checkpoint")
    demo.sandi("audit", "verify")
    demo.sandi("audit", "log", "--limit", "8")

    demo.step(_("Draw the communication pattern"))
    picture = demo.work / ("pola-hubungan.svg" if shutil.which("dot") else "pola-hubungan.dot")
    demo.sandi("policy", "graph", "--policy", str(policy), "--format", picture.suffix[1:], "-o", str(picture))

    click.secho(_("\nDone. Where everything is:"), bold=True)
    for label, path in [
        (_("authority home"), demo.home),
        (_("registry (SQLite)"), demo.home / "registry.db"),
        (_("encrypted key store"), demo.home / "keys"),
        (_("signed directory"), demo.home / "directory.json"),
        (_("root certificate / CRL"), demo.home / "root.pem"),
        (_("sealed letter"), sealed),
        (_("opened letter"), inbox / letter.name),
        (_("communication pattern"), picture),
    ]:
        click.echo(f"  {label:<24} {path}")
    click.echo(_("\nTry more with: export SANDI_HOME={quote}; sandi --help").format(
        quote=shlex.quote(str(demo.home)),
    ))


def _standard_tools(demo: _Demo, sealed: Path) -> None:
    missing = [t for t in ("age", "tar", "minisign") if shutil.which(t) is None]
    if missing:
        demo.say(_("skipped: {missing} not installed (scripts/install-tools.sh installs them)").format(
            missing=', '.join(missing),
        ))
        return
    check = demo.work / "periksa"
    check.mkdir()
    demo.say(_("export BAPPEDA's age identity (unencrypted, for this check only) and DISKOMINFO's public "
               "keys"))
    demo.sandi("keys", "export", "BAPPEDA", "--unencrypted-age-identity", str(check / "bappeda.identity.txt"))
    demo.sandi("keys", "export", "DISKOMINFO", "--public", "-o", str(check / "diskominfo"))
    ok = demo.shell(f"age -d -i bappeda.identity.txt {shlex.quote(str(sealed))} | tar -xv", cwd=check)
    ok = ok and demo.shell(
        "minisign -V -p diskominfo/DISKOMINFO.minisign.pub -m surat-koordinasi.txt", cwd=check)
    (check / "bappeda.identity.txt").unlink()
    if not ok:
        raise click.ClickException(_("the standard tools did not accept the sealed letter"))
