"""``sandi encrypt`` and ``sandi decrypt``: plain age v1 files, to keys or a passphrase.

The commands are thin: every byte of the format is sandi.formats.age. What lives here
is where keys and passphrases come from, and where the output goes:

* an output file (``-o``) is written under a temporary name and renamed into place
  only when the whole input was processed; for decryption that means after the final
  chunk authenticated and nothing followed it. On any failure nothing is left behind,
  and an existing file is never overwritten without ``--force``;
* without ``-o`` the output streams to stdout (decryption then releases chunks as they
  authenticate; a failure at the end exits with code 4 after partial output);
* a *file* passphrase (``encrypt -p``, a passphrase-encrypted file or identity) comes
  from ``--passphrase-file``, then ``$SANDI_FILE_PASSPHRASE``, then a hidden prompt on
  the terminal, asked for only when needed; never from ``$SANDI_PASSPHRASE``, which is
  the key store's: one secret must not silently stand in for the other.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, cast

import click

from sandi.errors import CredentialError, FormatError, UsageError
from sandi.formats.age import (
    DEFAULT_MAX_WORK_FACTOR,
    DEFAULT_WORK_FACTOR,
    DecryptReader,
    EncryptWriter,
    Identity,
    MLKEM768X25519Recipient,
    Recipient,
    ScryptIdentity,
    ScryptRecipient,
    Stanza,
    X25519Recipient,
    parse_identities,
    parse_recipient,
)
from sandi.fsutil import AtomicOutput
from sandi.i18n import N_, _
from sandi.keystore.passphrase import PassphraseSource

from .classes import CLASSIFICATION, resolve_class
from .context import CliContext, pass_cli
from .passphrase import passphrase_source

#: the passphrase of an age file, never the key store's (SANDI_PASSPHRASE)
ENV_FILE_PASSPHRASE = "SANDI_FILE_PASSPHRASE"  # noqa: S105 - a variable name

if TYPE_CHECKING:
    from sandi.audit.events import Outcome
    from sandi.directory.snapshot import DirectorySnapshot

# age's own limit for identity files.
MAX_IDENTITY_FILE = 16 * 1024 * 1024
# Inputs at least this large get a progress bar (when stderr is a terminal).
PROGRESS_THRESHOLD = 32 * 1024 * 1024
_AGENCY_CODE = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,63}")


# -- recipients and identities --------------------------------------------------------


class _Directory:
    """The home's signed directory for this invocation: verified (root, signature,
    expiry) and its near-expiry warning printed at most once, only if an agency
    code needs it."""

    def __init__(self, obj: CliContext) -> None:
        self._obj = obj
        self._snapshot: DirectorySnapshot | None = None

    def get(self) -> DirectorySnapshot:
        if self._snapshot is None:
            from datetime import UTC, datetime

            from sandi.directory.local import installed_snapshot

            now = datetime.now(UTC)
            self._snapshot = installed_snapshot(self._obj.home, now=now)
            warning = self._snapshot.expiry_warning(now)
            if warning:
                self._snapshot.notices.append(warning)
            self._obj.directory_read(self._snapshot.notices)
        return self._snapshot


def resolve_recipient_token(
    token: str, obj: CliContext, directory: _Directory | None = None, *, post_quantum: bool = False
) -> Recipient:
    """Turn one ``-r`` value into a recipient: an ``age1...`` key or an agency code
    (its X25519 key, or with ``post_quantum`` its hybrid ML-KEM-768 + X25519 key).

    An agency code resolves to the agency's current encryption key from the home's
    signed directory: the agency must be active and the certificate current,
    unexpired, unrevoked and issued by the home's root. The PHKS policy for agency
    recipients is checked by ``encrypt_cmd`` (sender ``--as`` and ``--class``).
    """
    token = token.strip()
    if token.lower().startswith("age1tag"):
        raise UsageError(
            _("tagged age recipients (age1tag1...) are not supported"),
            hint=_("use an age1pq1... or age1... recipient, or an agency code"),
        )
    if token.lower().startswith("age1"):
        try:
            return parse_recipient(token)
        except FormatError as exc:
            raise UsageError(
                _("invalid recipient {token}: {reason}").format(token=_shorten(token), reason=exc.message)
            ) from None
    if _AGENCY_CODE.fullmatch(token):
        from datetime import UTC, datetime

        from sandi.directory.trust import chains_to_root, encryption_certs

        code = token.upper()
        snapshot = (directory or _Directory(obj)).get()
        cert = encryption_certs(snapshot, code, datetime.now(UTC), post_quantum=post_quantum)[0]
        if not chains_to_root(cert, snapshot):
            raise CredentialError(_("the encryption certificate of {code} was not issued by this "
                                    "authority").format(code=code))
        if post_quantum:
            return MLKEM768X25519Recipient.from_public_bytes(cert.public_key_bytes())
        return X25519Recipient.from_public_bytes(cert.public_key_bytes())
    raise UsageError(_("invalid recipient {token!r}").format(
        token=token,
    ), hint=_("use an age1... public key or an agency code"))


def _agency_of_raw_key(obj: CliContext, directory: _Directory, token: str, target: Recipient) -> str | None:
    """The agency whose encryption key an ``age1...`` recipient is, if the home's directory
    says so (None without a home or a directory: then it is a plain age key)."""
    if not isinstance(target, X25519Recipient | MLKEM768X25519Recipient) or \
            not token.strip().lower().startswith("age1"):
        return None
    if not obj.home.exists() or not obj.home.directory_path.exists():
        return None
    from datetime import UTC, datetime

    from sandi.directory.trust import encryption_key_owner

    return encryption_key_owner(directory.get(), target.public_bytes, datetime.now(UTC))


def _shorten(token: str) -> str:
    """A recipient as shown in a message: a post-quantum key is ~1960 characters."""
    return repr(token if len(token) <= 80 else token[:40] + "..." + token[-8:])


def resolve_agency_identity(code: str, obj: CliContext) -> list[Identity]:
    """The identities of agency ``code`` from the home's key store: every encryption
    key it holds (current and rotated-out keys, so old files still open)."""
    code = code.upper()
    keystore = obj.keystore(None)
    refs = [r for r in keystore.refs() if r.startswith(f"{code}.encryption.")]
    if not refs:
        raise CredentialError(
            _("this home holds no encryption key of {code}").format(code=code),
            hint=_("decrypt as an agency whose keys are in this home ('sandi keys list'), or use -i"),
        )
    return [keystore.opening_key(ref)[1] for ref in refs]


def _file_passphrase(passphrase_file: Path | None) -> PassphraseSource:
    """The passphrase of an encrypted file or identity file: asked at most once, only if
    needed (--passphrase-file, else $SANDI_PASSPHRASE, else the terminal)."""
    return passphrase_source(passphrase_file, env=ENV_FILE_PASSPHRASE, label=N_("File passphrase"))


class _PassphraseOnDemand:
    """An identity that asks for the passphrase only if the file has an scrypt stanza."""

    def __init__(self, passphrase: PassphraseSource, purpose: str, max_work_factor: int) -> None:
        self._passphrase = passphrase
        self._purpose = purpose
        self._max_work_factor = max_work_factor

    def unwrap(self, stanzas: Sequence[Stanza]) -> bytes | None:
        if not any(s.type == "scrypt" for s in stanzas):
            return None
        identity = ScryptIdentity(self._passphrase.get(self._purpose), self._max_work_factor)
        return identity.unwrap(stanzas)


def read_identity_file(
    path: Path, passphrase: PassphraseSource, max_work_factor: int
) -> Sequence[Identity]:
    """An age-keygen identity file (X25519 and post-quantum keys), or one protected as an
    age scrypt file."""
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_IDENTITY_FILE + 1)
    except OSError as exc:
        raise UsageError(_("cannot read identity file {path}: {reason}").format(
            path=path,
            reason=exc.strerror,
        )) from None
    if len(data) > MAX_IDENTITY_FILE:
        raise UsageError(_("identity file {path} is larger than 16 MiB").format(path=path))
    stripped = data.lstrip()
    if data.startswith(b"age-encryption.org/") or stripped.startswith(b"-----BEGIN AGE ENCRYPTED FILE-----"):
        import io

        ident = _PassphraseOnDemand(passphrase, _("identity file {name}").format(name=path.name),
                                    max_work_factor)
        reader = DecryptReader(io.BytesIO(data), [ident], max_work_factor=max_work_factor)
        data = reader.read()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise FormatError(_("identity file {path} is not text").format(path=path)) from None
    try:
        return parse_identities(text)
    except FormatError as exc:
        raise FormatError(f"{path}: {exc}") from None


# -- input and output -----------------------------------------------------------------


class _Progress:
    """A file wrapper that advances a click progress bar as it is read."""

    def __init__(self, src: BinaryIO, bar: Any) -> None:
        self._src = src
        self._bar = bar

    def readinto(self, buf: memoryview | bytearray) -> int:
        n = self._src.readinto(buf)  # type: ignore[attr-defined]
        if n:
            self._bar.update(n)
        return int(n or 0)

    def read(self, n: int = -1) -> bytes:
        data = self._src.read(n)
        self._bar.update(len(data))
        return data


def _show_progress(size: int) -> bool:
    return size >= PROGRESS_THRESHOLD and sys.stderr.isatty()


@contextmanager
def _open_input(path: Path | None) -> Iterator[BinaryIO]:
    if path is None or str(path) == "-":
        yield sys.stdin.buffer
        return
    try:
        f = open(path, "rb")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise UsageError(_("cannot read {path}: {reason}").format(path=path, reason=exc.strerror)) from None
    with f:
        size = os.fstat(f.fileno()).st_size
        if _show_progress(size):
            with click.progressbar(length=size, file=sys.stderr, label=path.name) as bar:
                yield cast(BinaryIO, _Progress(f, bar))
        else:
            yield f


@contextmanager
def _open_output(
    path: Path | None, *, force: bool, mode: int
) -> Iterator[tuple[BinaryIO, Callable[[], None]]]:
    """Yield (file, commit). A file output appears only when commit() was called."""
    if path is None or str(path) == "-":
        out = sys.stdout.buffer
        yield out, out.flush
        return
    with AtomicOutput(path, mode=mode, overwrite=force) as atomic:
        yield atomic.file, atomic.commit


# -- commands -------------------------------------------------------------------------


@click.command("encrypt", help=_(
    "Encrypt FILE (or stdin) as an age v1 file that `age -d` can open.\n"
    "\n"
    "To agency codes, the communication-pattern policy must allow the sender (--as)\n"
    "to send the classification (--class) to every agency: otherwise nothing is\n"
    "written and the exit code is 3. An age1... key that the directory lists as an\n"
    "agency's is that agency, and is checked the same way.\n"
    "\n"
    "\b\n"
    "Example:\n"
    "  sandi encrypt -r SETDA --as BAPPEDA --class T -o data.xlsx.age data.xlsx\n"
    "  sandi encrypt -r age1xmwwc06ly3ee5rytxm9mflaz2u56jjj36s0mypdrwsvlul66mv4q47ryef \\\n"
    "      -o laporan.pdf.age laporan.pdf\n"
    "  sandi encrypt -p --armor -o catatan.txt.age catatan.txt\n"
    "\n"
    "Post-quantum (age1pq1...) recipients cannot be mixed with X25519 ones."
))
@click.option("-r", "--recipient", "recipients", multiple=True, metavar="age1...|age1pq1...|CODE",
              help=_("Encrypt to this age public key (X25519 or post-quantum) or agency code (repeatable)."))
@click.option("-p", "--passphrase", "use_passphrase", is_flag=True,
              help=_("Encrypt with a passphrase instead (it must be the only recipient)."))
@click.option("--passphrase-file", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help=_("Read the passphrase from this file (mode 0600) [else ${env_passphrase}, "
                     "else a prompt].").format(env_passphrase=ENV_FILE_PASSPHRASE))
@click.option("--work-factor", type=click.IntRange(1, DEFAULT_MAX_WORK_FACTOR), default=DEFAULT_WORK_FACTOR,
              show_default=True, help=_("scrypt work factor (log2 N) for -p."))
@click.option("-a", "--armor", is_flag=True, help=_("Write ASCII armor (PEM) instead of binary."))
@click.option("--as", "sender", metavar="CODE",
              help=_("The sending agency, for agency recipients [default: this workstation's agency]."))
@click.option("--class", "classification", type=CLASSIFICATION,
              help=_("Classification, by code or name, required for agency recipients "
                     "(the policy is checked)."))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help=_("Write to this file [default: stdout]."))
@click.option("--force", is_flag=True, help=_("Replace an existing output file."))
@click.argument("input_path", metavar="[FILE]", required=False,
                type=click.Path(dir_okay=False, path_type=Path))
@pass_cli
def encrypt_cmd(
    obj: CliContext,
    recipients: tuple[str, ...],
    use_passphrase: bool,
    passphrase_file: Path | None,
    work_factor: int,
    armor: bool,
    sender: str | None,
    classification: str | None,
    output: Path | None,
    force: bool,
    input_path: Path | None,
) -> None:
    if use_passphrase and recipients:
        raise UsageError(_("-p cannot be combined with -r"),
                         hint=_("a passphrase must be the only recipient"))
    if not use_passphrase and not recipients:
        raise UsageError(_("nothing to encrypt to"), hint=_("give -r age1...|CODE (repeatable) or -p"))
    targets: list[Recipient]
    if use_passphrase:
        passphrase = _file_passphrase(passphrase_file).get("the encrypted file", confirm=True)
        targets = [ScryptRecipient(passphrase, work_factor)]
    else:
        directory = _Directory(obj)
        targets = [resolve_recipient_token(t, obj, directory) for t in recipients]
    agencies = [t.strip().upper() for t in recipients
                if not t.strip().lower().startswith("age1") and _AGENCY_CODE.fullmatch(t.strip())]
    owners: dict[int, str] = {}  # -r position -> the agency whose key that raw key is
    if not use_passphrase:
        # A raw key that an agency's certificate carries is that agency (its policy applies).
        for position, (token, target) in enumerate(zip(recipients, targets, strict=True)):
            owner = _agency_of_raw_key(obj, directory, token, target)
            if owner is not None:
                owners[position] = owner
                if (sender is None and not obj.config().agency) or classification is None:
                    raise UsageError(
                        _("{key} is the encryption key of {code}: encrypting to an agency needs the "
                          "sending agency (--as) and the classification (--class)").format(
                            key=_shorten(token.strip()), code=owner),
                        hint=_("the communication-pattern policy is checked as for -r {code}").format(
                            code=owner),
                    )
                agencies.append(owner)
        agencies = list(dict.fromkeys(agencies))
    if agencies:
        code, level = _check_policy(obj, directory, agencies, sender, classification)
        # Other people's X25519 keys cannot go post-quantum: then only a policy rule can
        # demand it (and the age layer refuses the mix).
        others_classical = any(isinstance(t, X25519Recipient) and i not in owners
                               for i, t in enumerate(targets))
        if _post_quantum(obj, directory, code, agencies, level, prefer=not others_classical):
            # Agencies, named by code or by one of their keys, get their hybrid keys.
            targets = [resolve_recipient_token(owners.get(i, token), obj, directory, post_quantum=True)
                       for i, token in enumerate(recipients)]
    to_stdout = output is None or str(output) == "-"
    if to_stdout and not armor and sys.stdout.isatty():
        raise UsageError(_("refusing to write binary ciphertext to the terminal"),
                         hint=_("use -o FILE, --armor, or redirect the output"))
    with _open_input(input_path) as src, _open_output(output, force=force, mode=0o644) as (dst, commit):
        with EncryptWriter(dst, targets, armor=armor) as writer:
            writer.write_from(src)
        if agencies:
            _journal(obj, code, "file.encrypt", output.name if output else "<stdout>", "ok",
                     {"recipients": agencies, "class": level, "size": writer.plaintext_size})
        commit()


def _check_policy(
    obj: CliContext, directory: _Directory, agencies: list[str], sender: str | None,
    classification: str | None,
) -> tuple[str, str]:
    """Sender and level for agency recipients, after the policy allowed every relation."""
    from datetime import UTC, datetime

    from sandi.documents import DirectoryPolicy
    from sandi.errors import PolicyDenied

    code = (sender or obj.config().agency or "").upper()
    if not code:
        raise UsageError(_("encrypting to agencies needs the sending agency: --as CODE"),
                         hint=_("the communication-pattern policy is checked for the sender"))
    if classification is None:
        raise UsageError(_("encrypting to agencies needs --class SR|R|T|B"),
                         hint=_("the communication-pattern policy is checked for the classification"))
    gate = DirectoryPolicy(directory.get())
    now = datetime.now(UTC)
    level = resolve_class(classification, gate.levels(now))
    try:
        gate.before_seal(code, agencies, level, now)
    except PolicyDenied as exc:
        _journal(obj, code, "policy.deny", ",".join(agencies), "denied",
                 {"class": level, "reason": exc.source_message, "op": "encrypt"})
        raise
    return code, level


def _post_quantum(obj: CliContext, directory: _Directory, code: str, agencies: list[str], level: str,
                  *, prefer: bool) -> bool:
    """Whether agency recipients get their hybrid keys: when the policy requires it for
    the level (refused, exit 3, if one has none), or when ``prefer`` and every one of
    them has one."""
    from datetime import UTC, datetime

    from sandi.directory.trust import has_post_quantum_key
    from sandi.documents import DirectoryPolicy
    from sandi.documents.policygate import post_quantum_missing

    now = datetime.now(UTC)
    snapshot = directory.get()
    lacking = [a for a in agencies if not has_post_quantum_key(snapshot, a, now)]
    if DirectoryPolicy(snapshot).requires_post_quantum(level, now):
        if lacking:
            exc = post_quantum_missing(level, lacking)
            _journal(obj, code, "policy.deny", ",".join(agencies), "denied",
                     {"class": level, "reason": exc.message, "op": "encrypt"})
            raise exc
        return True
    return prefer and not lacking


def _journal(obj: CliContext, actor: str, action: str, subject: str, outcome: Outcome,
             details: dict[str, Any]) -> None:
    """Record in the home's audit journal (raises AuditError: the command fails closed)."""
    from sandi.audit.journal import record_by_operator

    record_by_operator(obj.home.journal_path, actor, action, subject, outcome, details)


@click.command("decrypt", help=_(
    "Decrypt an age v1 file (binary or armored) from FILE or stdin.\n"
    "\n"
    "Without -i or --as, a workstation uses its agency's keys, and a\n"
    "passphrase-encrypted file asks for its passphrase.\n"
    "With -o the plaintext appears only after the whole file authenticated.\n"
    "\n"
    "\b\n"
    "Example:\n"
    "  sandi decrypt -i key.txt -o laporan.pdf laporan.pdf.age\n"
    "  sandi decrypt --passphrase-file pass.txt catatan.txt.age > catatan.txt"
))
@click.option("-i", "--identity", "identity_files", multiple=True,
              type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help=_("An age identity file (age-keygen format, or passphrase-protected); repeatable."))
@click.option("--as", "as_code", metavar="CODE", help=_("Decrypt with the keys of this agency (key store)."))
@click.option("--passphrase-file", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help=_("Passphrase for a passphrase-encrypted file or identity file [else "
                     "${env_passphrase}, else a prompt].").format(
                  env_passphrase=ENV_FILE_PASSPHRASE,
              ))
@click.option("--max-work-factor", type=click.IntRange(1, DEFAULT_MAX_WORK_FACTOR),
              default=DEFAULT_MAX_WORK_FACTOR, show_default=True,
              help=_("Refuse passphrase files whose scrypt work factor is higher."))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help=_("Write the plaintext to this file, only once it fully verified [default: stdout]."))
@click.option("--force", is_flag=True, help=_("Replace an existing output file."))
@click.argument("input_path", metavar="[FILE]", required=False,
                type=click.Path(dir_okay=False, path_type=Path))
@pass_cli
def decrypt_cmd(
    obj: CliContext,
    identity_files: tuple[Path, ...],
    as_code: str | None,
    passphrase_file: Path | None,
    max_work_factor: int,
    output: Path | None,
    force: bool,
    input_path: Path | None,
) -> None:
    passphrase = _file_passphrase(passphrase_file)
    identities: list[Identity] = []
    if as_code is None and not identity_files and obj.home.exists():
        # On a workstation the agency's own keys are the natural default.
        as_code = obj.config().agency
    if as_code is not None:
        identities += resolve_agency_identity(as_code, obj)
    for path in identity_files:
        identities += read_identity_file(path, passphrase, max_work_factor)
    identities.append(_PassphraseOnDemand(passphrase, _("the encrypted file"), max_work_factor))
    subject = input_path.name if input_path else "<stdin>"
    with _open_input(input_path) as src, _open_output(output, force=force, mode=0o600) as (dst, commit):
        try:
            reader = DecryptReader(src, identities, max_work_factor=max_work_factor)
            for chunk in reader.chunks():
                dst.write(chunk)
        except FormatError as exc:
            if as_code is not None:
                _journal(obj, as_code.upper(), "verify.fail", subject, "failed",
                         {"reason": f"age {getattr(exc, 'kind', 'format')}", "op": "decrypt"})
            raise
        if as_code is not None:
            _journal(obj, as_code.upper(), "file.decrypt", subject, "ok", {})
        commit()
