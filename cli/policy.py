"""``sandi policy``: the communication-pattern policy (PHKS).

Commands that take no policy FILE use the version in force: on an authority home
the newest version in the registry, on a workstation the one in the installed,
verified directory (its root signature checked before use).
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from sandi.errors import EXIT_DENIED, AlreadyExistsError, NotFoundError, PolicyError, UsageError
from sandi.i18n import _, translated
from sandi.timefmt import iso_time, show_time

from .classes import CLASS_HELP, CLASSIFICATION, class_label, resolve_class
from .context import CliContext, pass_cli
from .passphrase import passphrase_file_option
from .policyfiles import POLICY_FILE

if TYPE_CHECKING:
    from sandi.policy import CompiledPolicy, Forbid, Policy

FILE = POLICY_FILE  # a path, or the name of a shipped policy (banten)


def _json_flag(f: Any) -> Any:
    return click.option("--json", "json_local", is_flag=True,
                        help=_("Machine-readable JSON output (same as 'sandi --json')."))(f)


def _use_json(obj: CliContext, json_local: bool) -> None:
    if json_local:
        obj.json_output = True


def _parse_time(value: str | None) -> datetime:
    if value is None:
        return datetime.now(UTC)
    from sandi.timefmt import parse_time

    try:
        return parse_time(value)  # no offset: the home's zone
    except UsageError as exc:
        raise UsageError(_("--at {value!r} is not an ISO 8601 time").format(value=value),
                         hint=exc.hint) from None


def _load(path: Path) -> Policy:
    from sandi.policy import load_policy

    return load_policy(path)


def _active(obj: CliContext, at: datetime) -> CompiledPolicy:
    """The policy in force at ``at`` on this home (registry or directory)."""
    config = obj.config()
    if config.role == "authority":
        from sandi.policy.store import active_policy, compile_record

        with obj.registry().reading() as session:
            record = active_policy(session, at)
        if record is None:
            raise NotFoundError(_("no policy version is in force at {at}").format(at=show_time(at)),
                                hint=_("apply one with 'sandi policy apply FILE', or give --policy FILE"))
        return compile_record(record)
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from sandi.directory.local import installed_snapshot
    from sandi.policy.versions import compile_verified

    snapshot = installed_snapshot(obj.home)
    entry = snapshot.policy_in_force(at)
    if entry is None:
        raise NotFoundError(_("the directory holds no policy in force at {at}").format(at=show_time(at)),
                            hint=_("import a newer directory, or give --policy FILE"))
    key = snapshot.root_certificate.public_key()
    if not isinstance(key, Ed25519PublicKey):
        raise NotFoundError(_("the directory's root key is not Ed25519"))
    return compile_verified(entry, key.public_bytes_raw())


def _compiled(obj: CliContext, path: Path | None, at: datetime) -> CompiledPolicy:
    from sandi.policy import compile_policy

    return compile_policy(_load(path)) if path is not None else _active(obj, at)


@click.group("policy", help=_(
    "The communication-pattern policy (PHKS): check, explain, test, compare, draw, apply.\n"
    "\n"
    "\b\n"
    "Example:\n"
    "  sandi policy validate policies/banten.toml\n"
    "  sandi policy explain --from DISKOMINFO --to BAPPEDA --class R --policy policies/banten.toml"
))
def policy() -> None:
    pass

@policy.command("validate", help=_(
    "Check a policy file strictly; every problem is reported with its line.\n"
    "\n"
    "Exit code 0 when valid, 1 with the list of problems otherwise.\n"
    "\n"
    "\b\n"
    "Example:\n"
    "  sandi policy validate policies/banten.toml"
))
@click.argument("file", type=FILE)
@_json_flag
@pass_cli
def validate_cmd(obj: CliContext, file: Path, json_local: bool) -> None:
    _use_json(obj, json_local)
    p = _load(file)
    obj.emit(
        {"file": str(file), "valid": True, "id": p.id, "version": p.version,
         "entities": len(p.entities), "groups": len(p.groups), "relations": len(p.relations),
         "forbids": len(p.forbids)},
        _("{file}: valid — {id} v{version}: {count} entities, {count2} groups, {count3} "
          "relations, {count4} forbids").format(
            file=file,
            id=p.id,
            version=p.version,
            count=len(p.entities),
            count2=len(p.groups),
            count3=len(p.relations),
            count4=len(p.forbids),
        ),
    )


@policy.command("lint", help=_(
    "Validate, then warn about what is legal but probably not meant.\n"
    "\n"
    "Warnings: entities with no relation, unused groups, relations shadowed by\n"
    "others, rules that can never apply, forbids with no effect. Exit code 0 with\n"
    "warnings; 1 only when the file is invalid.\n"
    "\n"
    "\b\n"
    "Example:\n"
    "  sandi policy lint policies/banten.toml"
))
@click.argument("file", type=FILE)
@_json_flag
@pass_cli
def lint_cmd(obj: CliContext, file: Path, json_local: bool) -> None:
    from sandi.policy.lint import lint_policy

    _use_json(obj, json_local)
    p = _load(file)
    warnings = lint_policy(p, file.read_text(encoding="utf-8"))
    human = [str(w) for w in warnings] + [_("{file}: {count} warning(s), 0 errors").format(
        file=file, count=len(warnings))]
    obj.emit({"file": str(file), "errors": 0, "warnings": [w.to_dict() for w in warnings]}, human)


@policy.command("show", help=_(
    "Show a policy: its decree, levels, entities, groups, relations and forbids.\n"
    "\n"
    "Without FILE, the version in force on this home.\n"
    "\n"
    "\b\n"
    "Example:\n"
    "  sandi policy show policies/banten.toml\n"
    "  sandi --home ./authority policy show --json"
))
@click.argument("file", type=FILE, required=False)
@click.option("--at", help=_("With no FILE: the version in force at this time (ISO 8601) [default: now]."))
@_json_flag
@pass_cli
def show_cmd(obj: CliContext, file: Path | None, at: str | None, json_local: bool) -> None:
    _use_json(obj, json_local)
    p = _load(file) if file is not None else _active(obj, _parse_time(at)).policy
    lines = [
        f"{p.title}",
        _("  id: {id}   version: {version}").format(id=p.id, version=p.version),
        _("  effective: {effective}   expires: {expires}").format(
            effective=show_time(p.effective), expires=show_time(p.expires) if p.expires else _("never")),
        _("  decree: {decree}").format(decree=p.decree),
        _("  levels (lowest first): {levels}").format(
            levels=", ".join(f"{lv.code} {lv.name}" + (_(" [post-quantum]") if lv.post_quantum else "")
                             for lv in p.levels)),
        _("entities ({count}):").format(count=len(p.entities)),
    ]
    kinds: dict[str, list[str]] = {}
    for e in p.entities.values():
        kinds.setdefault(e.kind, []).append(e.code)
    lines += [f"  {kind}: {' '.join(codes)}" for kind, codes in kinds.items()]
    lines.append(_("groups ({count}):").format(count=len(p.groups)))
    lines += [f"  {g.name} = {' '.join(g.members)}" for g in p.groups.values()]
    lines.append(_("relations ({count}):").format(count=len(p.relations)))
    for r in p.relations:
        arrow = "<->" if r.direction == "both" else "->"
        extra = f"  [{translated(r.window.describe())}]" if not r.window.unbounded else ""
        lines.append(_("  {id}: {sources} {arrow} {targets} up to {max_level}{value}{extra}").format(
            id=r.id,
            sources=','.join(r.sources),
            arrow=arrow,
            targets=','.join(r.targets),
            max_level=r.max_level,
            value='  ' + r.network if r.network else '',
            extra=extra,
        ))
    lines.append(_("forbids ({count}):").format(count=len(p.forbids)))
    for f in p.forbids:
        arrow = "<->" if f.direction == "both" else "->"
        scope = _("above {level}").format(level=f.above) if f.above else _("at any level")
        lines.append(f"  {f.id}: {','.join(f.sources)} {arrow} {','.join(f.targets)} {scope}")
    obj.emit(p.summary(), lines)


@policy.command("explain", help=_(
    "Decide one relation and say why: the deciding rule and every rule for the pair.\n"
    "\n"
    "Exit code 0 when allowed, 3 when denied.\n"
    "\n"
    "\b\n"
    "Example:\n"
    "  sandi policy explain --from DINSOS --to KESBANGPOL --class SR \\\n"
    "      --policy policies/banten.toml --at 2026-06-01T09:00:00+07:00"
))
@click.option("--from", "sender", required=True, help=_("Sender entity code."))
@click.option("--to", "recipient", required=True, help=_("Recipient entity code."))
@click.option("--class", "classification", required=True, type=CLASSIFICATION, help=CLASS_HELP)
@click.option("--at", help=_("Time of the decision (ISO 8601; no offset means the home's zone) "
                             "[default: now]."))
@click.option("--policy", "policy_file", type=FILE, help=_("Policy file [default: the version in force]."))
@_json_flag
@pass_cli
def explain_cmd(obj: CliContext, sender: str, recipient: str, classification: str, at: str | None,
                policy_file: Path | None, json_local: bool) -> None:
    from sandi.policy import Relation

    _use_json(obj, json_local)
    when = _parse_time(at)
    compiled = _compiled(obj, policy_file, when)
    p = compiled.policy
    classification = resolve_class(classification, p.levels)
    d = compiled.decide(sender, recipient, classification, when)
    forbids, allows = compiled.matching_rules(sender, recipient)
    rules: dict[str, Relation | Forbid] = {r.id: r for r in p.relations}
    rules.update((f.id, f) for f in p.forbids)
    lines = [
        (_("ALLOW: {sender} → {recipient} at {level} ({policy} v{version}, at {at})") if d.allowed
         else _("DENY: {sender} → {recipient} at {level} ({policy} v{version}, at {at})")).format(
            sender=sender, recipient=recipient, level=class_label(classification, p.levels),
            policy=p.id, version=p.version, at=show_time(when)),
        _("  reason: {reason}").format(reason=translated(d.reason)),
    ]
    if d.rule_id is not None:
        rule = rules[d.rule_id]
        lines.append(_("  rule: {rule}").format(rule=d.rule_id)
                     + (f" — {rule.description}" if rule.description else "")
                     + (f" ({p.source_name}:{rule.line})" if rule.line else ""))
    post_quantum = compiled.requires_post_quantum(classification)
    if post_quantum:
        lines.append(_("  sealing: post-quantum only: the documents must be sealed to hybrid "
                       "ML-KEM-768 + X25519 keys (age1pq1), never to X25519 keys alone"))
    if forbids or allows:
        lines.append(_("  rules covering this pair:"))
        for rid in forbids + allows:
            rule = rules[rid]
            if isinstance(rule, Relation):
                what = _("allows up to {level}").format(level=rule.max_level)
            elif rule.above:
                what = _("forbids above {level}").format(level=rule.above)
            else:
                what = _("forbids every level")
            window = "" if rule.window.unbounded else f", {translated(rule.window.describe())}"
            lines.append(f"    {rid}: {what}{window}")
    data = d.to_dict() | {"at": iso_time(when), "forbids": forbids, "relations": allows,
                          "post_quantum": post_quantum}
    obj.emit(data, lines)
    if not d.allowed:
        # not an error, an answer: the explanation is printed, the exit code says "denied"
        sys.exit(EXIT_DENIED)


@policy.command("test", help=_(
    "Run expected decisions against a policy (like 'opa test').\n"
    "\n"
    "Each mismatch is printed with its line; exit code 1 if any case fails.\n"
    "\n"
    "\b\n"
    "Example:\n"
    "  sandi policy test policies/banten-tests.toml\n"
    "  sandi policy test my-cases.toml --policy policies/banten.toml"
))
@click.argument("cases", type=FILE)
@click.option("--policy", "policy_file", type=FILE,
              help=_("Policy file [default: the file the cases name, else the version in force]."))
@_json_flag
@pass_cli
def test_cmd(obj: CliContext, cases: Path, policy_file: Path | None, json_local: bool) -> None:
    from sandi.policy.testing import load_cases, run_cases

    _use_json(obj, json_local)
    case_file = load_cases(cases)
    path = policy_file or case_file.policy_path
    compiled = _compiled(obj, path, datetime.now(UTC))
    results = run_cases(compiled, case_file)
    failed = [r for r in results if not r.ok]
    lines = []
    for r in failed:
        lines.append(_("FAIL {name}:{line}: {name2}: {problem}").format(
            name=cases.name,
            line=r.case.line or '?',
            name2=r.case.name,
            problem=translated(r.problem),
        ))
        lines.append(f"     {translated(r.decision.reason)}")
    lines.append(_("{passed} passed, {failed} failed ({id} v{version})").format(
        passed=len(results) - len(failed),
        failed=len(failed),
        id=compiled.id,
        version=compiled.version,
    ))
    obj.emit({"policy": compiled.id, "version": compiled.version, "passed": len(results) - len(failed),
              "failed": len(failed), "results": [r.to_dict() for r in results]}, lines)
    if failed:
        raise PolicyError(_("{failed} of {total} policy test case(s) failed").format(
            failed=len(failed), total=len(results)), hint=_("each mismatch is listed above"))


@policy.command("diff", help=_(
    "What a new version changes: rules, and the sender → recipient pairs it opens or closes.\n"
    "\n"
    "\b\n"
    "Example:\n"
    "  sandi policy diff policies/banten.toml banten-v2.toml"
))
@click.argument("old", type=FILE)
@click.argument("new", type=FILE)
@click.option("--at", help=_("Compare at this time (rule windows evaluated) [default: every rule counts]."))
@_json_flag
@pass_cli
def diff_cmd(obj: CliContext, old: Path, new: Path, at: str | None, json_local: bool) -> None:
    from sandi.policy.diff import diff_policies

    _use_json(obj, json_local)
    d = diff_policies(_load(old), _load(new), _parse_time(at) if at else None)
    lines = [f"{d.old[0]} v{d.old[1]} -> {d.new[0]} v{d.new[1]}"]
    lines += [f"  {k}: {a} -> {b}" for k, (a, b) in d.meta.items()]
    lines += [_("  entity added: {code}").format(code=c) for c in d.entities_added]
    lines += [_("  entity removed: {code}").format(code=c) for c in d.entities_removed]
    lines += [f"  {translated(r.describe())}" for r in d.rules]
    lines += [f"  {translated(p.describe())}" for p in d.pairs]
    opens = sum(1 for p in d.pairs if p.change == "opens")
    lines.append(_("{count} rule change(s); opens {opens} pair(s), closes {value} pair(s)").format(
        count=len(d.rules),
        opens=opens,
        value=len(d.pairs) - opens,
    ) if not d.empty else _("no changes"))
    obj.emit(d.to_dict(), lines)


@policy.command("graph", help=_(
    "Draw the pattern: entities clustered by kind, relations labelled with their ceiling.\n"
    "\n"
    "SVG and PNG need Graphviz's 'dot' (scripts/install-tools.sh installs it).\n"
    "\n"
    "\b\n"
    "Example:\n"
    "  sandi policy graph --policy policies/banten.toml --format svg -o banten.svg"
))
@click.option("--policy", "policy_file", type=FILE, help=_("Policy file [default: the version in force]."))
@click.option("--format", "fmt", type=click.Choice(["dot", "svg", "png"]), default="dot", show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help=_("Output file [default for dot: standard output]."))
@click.option("--force", is_flag=True, help=_("Replace the output file if it exists."))
@pass_cli
def graph_cmd(obj: CliContext, policy_file: Path | None, fmt: str, output: Path | None, force: bool) -> None:
    from sandi.policy.graph import render, to_dot

    _refuse_existing(output, force)
    p = _load(policy_file) if policy_file is not None else _active(obj, datetime.now(UTC)).policy
    text = to_dot(p)
    if output is None:
        if fmt != "dot":
            raise UsageError(_("--format {fmt} needs -o FILE").format(fmt=fmt))
        sys.stdout.write(text)
        return
    render(text, fmt, output, overwrite=force)
    obj.note(_("wrote {output}").format(output=output))


def _refuse_existing(output: Path | None, force: bool) -> None:
    """One rule for every command that writes a file: no silent replacement."""
    if output is not None and output.exists() and not force:
        raise AlreadyExistsError(_("{path} exists already").format(path=output),
                                 hint=_("choose another name, or add --force to replace it"))


@policy.command("apply", help=_(
    "Validate, sign with the authority's root key and store a new policy version.\n"
    "\n"
    "Older versions are kept; the version number must be greater than the newest\n"
    "stored one. Recorded in the audit log (policy.apply).\n"
    "\n"
    "\b\n"
    "Example:\n"
    "  sandi --home ./authority policy apply policies/banten.toml"
))
@click.argument("file", type=FILE)
@passphrase_file_option
@pass_cli
def apply_cmd(obj: CliContext, file: Path, passphrase_file: Path | None) -> None:
    from sandi.audit.events import current_operator
    from sandi.authority.root import load_root_signer
    from sandi.policy import load_policy
    from sandi.policy.store import apply_policy

    load_policy(file)  # fail on a bad file before asking for a passphrase
    data = file.read_bytes()
    home = obj.home
    signer = load_root_signer(home, obj.keystore(passphrase_file))
    with obj.registry().transaction() as session:
        record = apply_policy(session, data, signer, current_operator(), source_name=file.name)
    obj.emit(
        {"policy_id": record.policy_id, "version": record.version, "sha256": record.sha256,
         "effective": record.effective_from.isoformat(),
         "expires": record.expires_at.isoformat() if record.expires_at else None},
        [_("applied {policy_id} v{version} (sha256 {sha256})").format(
            policy_id=record.policy_id,
            version=record.version,
            sha256=record.sha256,
        ),
         _("effective {effective_from}, expires {value}").format(
             effective_from=show_time(record.effective_from),
             value=show_time(record.expires_at) if record.expires_at else _("never"),
         ),
         _("publish a new directory so the workstations get it: sandi directory publish")],
    )


@policy.command("versions", help=_(
    "List the policy versions stored in the registry (authority).\n"
    "\n"
    "\b\n"
    "Example:\n"
    "  sandi --home ./authority policy versions"
))
@_json_flag
@pass_cli
def versions_cmd(obj: CliContext, json_local: bool) -> None:
    from sandi.policy.store import list_versions
    from sandi.policy.versions import select_active

    _use_json(obj, json_local)
    with obj.registry().reading() as session:
        records = list_versions(session)
    active = select_active(records, datetime.now(UTC))
    rows = [{"policy_id": r.policy_id, "version": r.version, "sha256": r.sha256,
             "effective": r.effective_from.isoformat(),
             "expires": r.expires_at.isoformat() if r.expires_at else None,
             "applied_at": r.applied_at.isoformat() if r.applied_at else None,
             "applied_by": r.applied_by, "active": r is active} for r in records]
    lines = [_("{mark} {policy} v{version}  effective {effective}  expires {expires}  applied by "
               "{by}").format(mark="*" if row["active"] else " ", policy=row["policy_id"],
                              version=row["version"], effective=row["effective"],
                              expires=row["expires"] or _("never"), by=row["applied_by"])
             for row in rows] or [_("no policy versions stored")]
    obj.emit(rows, lines)


@policy.command(
    "example",
    help=_("Print or write a policy file that sandi ships (without NAME: list them)."),
    epilog=_("Examples:\n\n  sandi policy example\n\n  sandi policy example banten -o banten.toml"),
)
@click.argument("name", required=False)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help=_("Write the policy to this file [default: standard output]."))
@click.option("--force", is_flag=True, help=_("Replace the output file if it exists."))
def example_cmd(name: str | None, output: Path | None, force: bool) -> None:
    from sandi.fsutil import atomic_write
    from sandi.policy.shipped import shipped_policy_names, shipped_policy_path

    if name is None:
        for shipped in shipped_policy_names():
            click.echo(shipped)
        return
    source = shipped_policy_path(name)
    if source is None:
        raise NotFoundError(
            _("sandi ships no policy named {name!r}").format(name=name),
            hint=_("shipped policies: {names}").format(names=", ".join(shipped_policy_names())),
        )
    data = source.read_bytes()
    if output is None:
        click.echo(data.decode("utf-8"), nl=False)
        return
    atomic_write(output, data, overwrite=force)
    click.echo(_("wrote {path}").format(path=output), err=True)
