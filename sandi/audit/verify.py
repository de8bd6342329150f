"""Verifying a chain: every link, every checkpoint, and the first thing that is wrong.

Invariants checked, in seq order, stopping at the first failure (which is named):

* seqs run 1, 2, 3... with no gap (``deleted``), no seq twice (``inserted``) and none
  out of place (``reordered``);
* each entry's hash is the hash of its content (``edited``);
* each entry's ``prev_hash`` is the previous entry's hash, genesis for entry 1
  (``link``: an entry was rewritten with a recomputed hash, or replaced);
* each checkpoint is signed by the given key (``checkpoint-signature``) and names the
  hash of the entry at its seq (``checkpoint-mismatch``: history up to it was rewritten);
* no checkpoint (and no registry head, when given) is beyond the last entry
  (``truncated``: the tail was cut off);
* a registry with entries has its head row (``head-missing``);
* every *witness* - a checkpoint kept outside the store (the home's anchor file, a
  signed directory; ADR 0010) - is signed by the given key, matches the entry at its
  seq (``checkpoint-mismatch``), is still among the log's checkpoints
  (``checkpoint-missing``) and is not beyond the last entry (``truncated``): a log
  cannot silently lose its signed past;
* a line that does not parse (garbage, a cut last line) is ``malformed``; like every
  other problem it is a verification failure (exit 4), not an error.

Entries are streamed (one pass, constant memory), so a journal or table of millions
of entries verifies without loading it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from sandi.audit.checkpoint import Checkpoint, Witness, key_fingerprint, signature_valid
from sandi.audit.entry import GENESIS_HASH, AuditEntry
from sandi.errors import AuditError, FormatError, VerificationError
from sandi.i18n import Message, _, translated

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from sandi.audit.journal import Journal

KINDS = (
    "edited",
    "link",
    "deleted",
    "reordered",
    "inserted",
    "checkpoint-signature",
    "checkpoint-mismatch",
    "checkpoint-missing",
    "head-missing",
    "truncated",
    "malformed",
)


@dataclass(frozen=True)
class Problem:
    """The first thing wrong with a chain: at which entry, what kind, in words."""

    seq: int
    kind: str
    message: str


class ChainBroken(VerificationError):
    """The audit log does not verify; ``.seq`` is the first bad entry, ``.kind`` what is wrong."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(
            _("the audit log does not verify: entry {seq}: {kind}: {message}").format(
                seq=problem.seq, kind=problem.kind, message=translated(problem.message)
            ),
            hint=_("entries before {seq} verify; keep a copy of the log and investigate from that "
                   "entry on").format(seq=problem.seq),
        )
        self.seq = problem.seq
        self.kind = problem.kind
        self.problem = problem


@dataclass(frozen=True)
class VerifyReport:
    entries: int  # entries checked (up to the problem, if any)
    checkpoints: int  # checkpoints checked and found good
    last_seq: int
    head_hash: str
    last_checkpoint_seq: int  # 0 if none
    signatures_checked: bool
    problem: Problem | None
    witnesses: int = 0  # checkpoints kept outside the log, checked and found in it
    last_checkpoint: Checkpoint | None = None  # the highest good checkpoint in the log

    @property
    def ok(self) -> bool:
        return self.problem is None

    @property
    def unsigned_tail(self) -> int:
        """Entries after the last checkpoint: protected by the chain only, not a signature."""
        return max(0, self.last_seq - self.last_checkpoint_seq)

    def raise_for_problem(self) -> None:
        if self.problem is not None:
            raise ChainBroken(self.problem)

    def to_dict(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "entries": self.entries,
            "checkpoints": self.checkpoints,
            "last_seq": self.last_seq,
            "head_hash": self.head_hash,
            "last_checkpoint_seq": self.last_checkpoint_seq,
            "unsigned_tail": self.unsigned_tail,
            "signatures_checked": self.signatures_checked,
            "witnesses": self.witnesses,
            "problem": None
            if self.problem is None
            else {"seq": self.problem.seq, "kind": self.problem.kind, "message": self.problem.message},
        }


class _Peekable:
    def __init__(self, items: Iterable[AuditEntry]) -> None:
        self._it: Iterator[AuditEntry] = iter(items)
        self._next: AuditEntry | None = None
        self._done = False

    def peek(self) -> AuditEntry | None:
        if self._next is None and not self._done:
            try:
                self._next = next(self._it)
            except StopIteration:
                self._done = True
        return self._next

    def pop(self) -> AuditEntry | None:
        item = self.peek()
        self._next = None
        return item

    def rest(self) -> Iterator[AuditEntry]:
        while (item := self.pop()) is not None:
            yield item


def verify_chain(
    entries: Iterable[AuditEntry],
    checkpoints: Iterable[Checkpoint],
    public_key_bytes: bytes | Collection[bytes] | None,
    *,
    expected_head: tuple[int, str] | None = None,
    head_required: bool = False,
    witnesses: Iterable[Witness] = (),
) -> VerifyReport:
    """Check ``entries`` (in stored order) and ``checkpoints`` against ``public_key_bytes``.

    ``public_key_bytes`` is the raw 32-byte Ed25519 key that signs the checkpoints
    (the root key for the registry, the agency key for a workstation journal), or
    several such keys (an agency's keys over its rotations): each checkpoint must be
    signed by one of them. None checks the checkpoints' hashes but not their
    signatures (the report says so).
    ``expected_head`` is the registry's head row, if any: it must name the last entry;
    with ``head_required`` a log with entries but no head row is refused.
    ``witnesses`` are checkpoints kept outside the log (anchors, directories): each
    must be signed, match its entry and still be among ``checkpoints``.
    Returns a report; ``report.raise_for_problem()`` raises :class:`ChainBroken`.
    """
    by_seq: dict[int, list[Checkpoint]] = defaultdict(list)
    stored: list[Checkpoint] = []
    for cp in checkpoints:
        by_seq[cp.seq].append(cp)
        stored.append(cp)
    witnessed: dict[int, list[Witness]] = defaultdict(list)
    for witness in witnesses:
        witnessed[witness.checkpoint.seq].append(witness)
    trusted = _trusted_keys(public_key_bytes)

    stream = _Peekable(entries)
    count = 0
    good_checkpoints = 0
    good_witnesses = 0
    last_cp = 0
    last_checkpoint: Checkpoint | None = None
    prev_hash = GENESIS_HASH
    last_seq = 0

    def report(problem: Problem | None) -> VerifyReport:
        return VerifyReport(
            entries=count,
            checkpoints=good_checkpoints,
            last_seq=last_seq,
            head_hash=prev_hash,
            last_checkpoint_seq=last_cp,
            signatures_checked=trusted is not None,
            problem=problem,
            witnesses=good_witnesses,
            last_checkpoint=last_checkpoint,
        )

    bad_low = sorted(s for s in [*by_seq, *witnessed] if s < 1)
    if bad_low:
        return report(Problem(1, "malformed", Message(
            "a checkpoint names seq {bad_low}, before entry 1",
            bad_low=bad_low[0],
        )))

    try:
        while (entry := stream.pop()) is not None:
            expected = last_seq + 1
            if entry.seq != expected:
                return report(_seq_problem(entry, expected, stream))
            following = stream.peek()
            if following is not None and following.seq == entry.seq:
                return report(Problem(entry.seq, "inserted",
                                      Message(
                                          "two entries carry seq {seq} (an entry was inserted or copied)",
                                          seq=entry.seq,
                                      )))
            if entry.compute_hash() != entry.hash:
                return report(Problem(entry.seq, "edited", Message("its content does not match its hash")))
            if entry.prev_hash != prev_hash:
                if entry.seq == 1:
                    return report(Problem(1, "link", Message(
                        "the first entry does not start from the genesis hash",
                    )))
                return report(Problem(
                    entry.seq - 1, "link",
                    Message(
                        "entry {seq} does not chain to entry {value}: entry {value} was rewritten (hash "
                        "recomputed) or entry {seq} replaced",
                        seq=entry.seq,
                        value=entry.seq - 1,
                    ),
                ))
            count += 1
            last_seq = entry.seq
            prev_hash = entry.hash
            for cp in by_seq.pop(entry.seq, ()):
                problem = _checkpoint_problem(cp, entry, trusted)
                if problem is not None:
                    return report(problem)
                good_checkpoints += 1
                last_cp = entry.seq
                last_checkpoint = cp
            for witness in witnessed.pop(entry.seq, ()):
                problem = _witness_problem(witness, entry, trusted, stored)
                if problem is not None:
                    return report(problem)
                good_witnesses += 1
    except (AuditError, FormatError) as exc:
        # A line that does not parse: the log is not what was written (exit 4).
        return report(Problem(last_seq + 1, "malformed", exc.message))

    if by_seq:
        beyond = min(by_seq)
        return report(Problem(
            last_seq + 1, "truncated",
            Message(
                "the log ends at entry {last_seq} but a checkpoint covers entry {beyond}: entries "
                "{value}..{beyond} were removed",
                last_seq=last_seq,
                beyond=beyond,
                value=last_seq + 1,
            ),
        ))
    if witnessed:
        witness = witnessed[max(witnessed)][0]
        return report(Problem(
            last_seq + 1, "truncated",
            Message(
                "the log ends at entry {last} but {source} holds a checkpoint of entry {seq} "
                "signed {time}: entries {first}..{seq} were removed",
                last=last_seq, source=witness.source, seq=witness.checkpoint.seq,
                time=witness.checkpoint.time, first=last_seq + 1,
            ),
        ))
    if expected_head is None and head_required and last_seq > 0:
        return report(Problem(
            last_seq, "head-missing",
            Message("the log has {count} entries but no head row: the head row was deleted "
                    "(it is what shows a cut tail)", count=last_seq),
        ))
    if expected_head is not None:
        head_seq, head_hash = expected_head
        if head_seq > last_seq:
            return report(Problem(
                last_seq + 1, "truncated",
                Message(
                    "the log ends at entry {last_seq} but its head row says {head_seq}: entries "
                    "{value}..{head_seq} were removed",
                    last_seq=last_seq,
                    head_seq=head_seq,
                    value=last_seq + 1,
                ),
            ))
        if head_seq < last_seq:
            return report(Problem(
                head_seq + 1, "inserted",
                Message("entries after {head_seq} were added behind the head row's back", head_seq=head_seq),
            ))
        if head_seq > 0 and head_hash != prev_hash:
            return report(Problem(last_seq, "edited",
                                  Message("the last entry does not match the head row (rewritten)")))
    return report(None)


def _seq_problem(entry: AuditEntry, expected: int, stream: _Peekable) -> Problem:
    if entry.seq > expected:
        if any(later.seq == expected for later in stream.rest()):
            return Problem(expected, "reordered",
                           Message(
                               "entry {expected} comes after entry {seq} (entries were moved)",
                               expected=expected,
                               seq=entry.seq,
                           ))
        if expected == 1:
            return Problem(1, "deleted",
                           Message(
                               "the log starts at entry {seq}: entries before it are missing",
                               seq=entry.seq,
                           ))
        gap = f"{expected}" if entry.seq == expected + 1 else f"{expected}..{entry.seq - 1}"
        return Problem(expected, "deleted",
                       Message(
                           "entry {value} is followed by entry {seq}: entry {gap} missing",
                           value=expected - 1,
                           seq=entry.seq,
                           gap=gap,
                       ))
    return Problem(entry.seq, "inserted",
                   Message(
                       "a second entry {seq} follows entry {value} (inserted or copied)",
                       seq=entry.seq,
                       value=expected - 1,
                   ))


def _trusted_keys(keys: bytes | Collection[bytes] | None) -> dict[str, bytes] | None:
    if keys is None:
        return None
    if isinstance(keys, bytes | bytearray):
        keys = [bytes(keys)]
    return {key_fingerprint(k): k for k in keys}


def _checkpoint_problem(
    cp: Checkpoint, entry: AuditEntry, trusted: dict[str, bytes] | None
) -> Problem | None:
    if trusted is not None:
        public_key = trusted.get(cp.signer)
        if public_key is None:
            return Problem(cp.seq, "checkpoint-signature",
                           Message(
                               "the checkpoint at entry {seq} is signed by another key ({signer}...)",
                               seq=cp.seq,
                               signer=cp.signer[:16],
                           ))
        if not signature_valid(cp, public_key):
            return Problem(cp.seq, "checkpoint-signature",
                           Message("the checkpoint at entry {seq} has a bad signature", seq=cp.seq))
    if cp.head_hash != entry.hash:
        return Problem(cp.seq, "checkpoint-mismatch",
                       Message(
                           "the checkpoint signed {time} does not match entry {seq}: the log up to entry "
                           "{seq} was rewritten",
                           time=cp.time,
                           seq=cp.seq,
                       ))
    return None


def _witness_problem(
    witness: Witness, entry: AuditEntry, trusted: dict[str, bytes] | None, stored: list[Checkpoint]
) -> Problem | None:
    cp = witness.checkpoint
    if trusted is not None:
        public_key = trusted.get(cp.signer)
        if public_key is None or not signature_valid(cp, public_key):
            return Problem(cp.seq, "checkpoint-signature", Message(
                "the checkpoint of entry {seq} that {source} holds is not signed by the log's key",
                seq=cp.seq, source=witness.source))
    if cp.head_hash != entry.hash:
        return Problem(cp.seq, "checkpoint-mismatch", Message(
            "{source} holds a checkpoint of entry {seq} signed {time} that the log no longer "
            "matches: the log up to entry {seq} was rewritten",
            source=witness.source, seq=cp.seq, time=cp.time))
    if not any(witness.same_as(other) for other in stored):
        return Problem(cp.seq, "checkpoint-missing", Message(
            "the checkpoint of entry {seq} signed {time}, which {source} holds, is no longer in "
            "the log: it was deleted", seq=cp.seq, time=cp.time, source=witness.source))
    return None


def verify_journal(
    journal: Journal, public_key_bytes: bytes | Collection[bytes] | None,
    *, witnesses: Iterable[Witness] = (),
) -> VerifyReport:
    """Verify a journal file (two streaming passes: checkpoints, then entries).

    A line that does not parse is reported as ``malformed`` at the entry it follows.
    """
    try:
        checkpoints = journal.checkpoints()
    except AuditError as exc:
        # The entry pass reads every line too and names the first bad one (or an
        # earlier problem of the chain).
        report = verify_chain(journal.entries(), [], public_key_bytes)
        if report.problem is None:
            report = replace(report, problem=Problem(report.last_seq + 1, "malformed", exc.message))
        return report
    return verify_chain(journal.entries(), checkpoints, public_key_bytes, witnesses=witnesses)


def verify_registry(
    session: Session, public_key_bytes: bytes | Collection[bytes] | None, *,
    witnesses: Iterable[Witness] = (),
) -> VerifyReport:
    """Verify the registry chain, its checkpoints and its head row (inside a transaction)."""
    from sandi.audit.registry_sink import iter_entries, read_checkpoints, read_head

    return verify_chain(
        iter_entries(session), read_checkpoints(session), public_key_bytes,
        expected_head=read_head(session), head_required=True, witnesses=witnesses,
    )
