"""A picture of the pattern: Graphviz DOT, rendered to SVG/PNG by the ``dot`` program.

Invariants: entities are nodes, clustered by kind; groups are separate nodes (a
folder shape) with faint dashed edges from their members, so a rule over a group is
one edge, not hundreds; relations are edges labelled with their ceiling (two-headed
when both ways); forbids are red edges labelled with what they deny. Every label is
escaped; the DOT text depends only on the policy (stable output for review). The
renderer calls ``dot`` with an argument list (no shell) and fails with a clear
error when Graphviz is not installed.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from sandi.errors import NotFoundError, SandiError, UsageError
from sandi.i18n import _
from sandi.policy.model import WILDCARD, Policy

FORMATS = ("dot", "svg", "png")
KIND_LABELS = {
    "leader": "Pimpinan (leaders)", "agency": "Perangkat Daerah (agencies)", "unit": "Units",
    "regency": "Kabupaten (regencies)", "city": "Kota (cities)", "central": "Pusat (central bodies)",
    "external": "External",
}
KIND_COLOURS = {
    "leader": "#f6d55c", "agency": "#a8d5e2", "unit": "#d0e8f0", "regency": "#b5e7a0",
    "city": "#cdeac0", "central": "#f4a6a6", "external": "#dddddd",
}


def _q(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _node(name: str) -> str:
    return _q("ANY" if name == WILDCARD else name)


def to_dot(policy: Policy) -> str:
    lines = [
        f"digraph {_q(policy.id)} {{",
        f"  label={_q(f'{policy.title} (v{policy.version})')}; labelloc=t; fontsize=20;",
        "  rankdir=LR; newrank=true; compound=true; nodesep=0.15; ranksep=1.2; fontname=Helvetica;",
        "  node [shape=box, style=\"rounded,filled\", fontname=Helvetica, fontsize=10];",
        "  edge [fontname=Helvetica, fontsize=9];",
    ]
    kinds: dict[str, list[str]] = {}
    for e in policy.entities.values():
        kinds.setdefault(e.kind, []).append(e.code)
    for kind, codes in kinds.items():
        lines.append(f"  subgraph {_q('cluster_' + kind)} {{")
        lines.append(f"    label={_q(KIND_LABELS.get(kind, kind))}; style=rounded; color=gray60;")
        for code in codes:
            ent = policy.entities[code]
            lines.append(f"    {_q(code)} [fillcolor={_q(KIND_COLOURS.get(kind, '#eeeeee'))}, "
                         f"tooltip={_q(ent.name)}];")
        lines.append("  }")
    if policy.groups:
        lines.append(f"  subgraph {_q('cluster_groups')} {{")
        lines.append("    label=\"Groups\"; style=dashed; color=gray60;")
        for g in policy.groups.values():
            lines.append(f"    {_q(g.name)} [shape=folder, fillcolor=\"#ffffff\", "
                         f"tooltip={_q(g.description or g.name)}];")
        lines.append("  }")
        for g in policy.groups.values():
            # a group that is exactly one whole kind gets one edge from that cluster
            whole = [k for k, codes in kinds.items() if set(codes) == set(g.members)]
            if whole:
                lines.append(f"  {_q(g.members[0])} -> {_q(g.name)} [ltail={_q('cluster_' + whole[0])}, "
                             "style=dashed, color=gray60, arrowhead=none, weight=0];")
                continue
            for m in g.members:
                lines.append(f"  {_q(m)} -> {_q(g.name)} [style=dashed, color=gray70, "
                             "arrowhead=none, weight=0];")
    uses_any = any(WILDCARD in (*r.sources, *r.targets) for r in policy.relations) or any(
        WILDCARD in (*f.sources, *f.targets) for f in policy.forbids)
    if uses_any:
        lines.append("  \"ANY\" [label=\"* (any)\", shape=ellipse, fillcolor=\"#ffffff\"];")
    for r in policy.relations:
        label = f"≤{r.max_level}"
        if not r.window.unbounded:
            label += " (windowed)"
        attrs = f"label={_q(label)}, tooltip={_q(r.id)}, color=\"#2b6cb0\", penwidth=1.4"
        if r.direction == "both":
            attrs += ", dir=both"
        for s in r.sources:
            for t in r.targets:
                lines.append(f"  {_node(s)} -> {_node(t)} [{attrs}];")
    for f in policy.forbids:
        label = f"✕ >{f.above}" if f.above else "✕ all"
        attrs = (f"label={_q(label)}, tooltip={_q(f.id)}, color=\"#c53030\", fontcolor=\"#c53030\", "
                 "style=bold")
        if f.direction == "both":
            attrs += ", dir=both"
        for s in f.sources:
            for t in f.targets:
                lines.append(f"  {_node(s)} -> {_node(t)} [{attrs}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def render(dot_text: str, fmt: str, out: str | Path, *, overwrite: bool = False) -> None:
    """Write ``dot_text`` as ``fmt`` (dot, svg, png) to ``out``, atomically; an existing
    ``out`` is replaced only with ``overwrite``."""
    from sandi.fsutil import AtomicOutput

    if fmt not in FORMATS:
        raise UsageError(_("unknown graph format {fmt!r}; formats: {formats}").format(
            fmt=fmt, formats=", ".join(FORMATS)))
    with AtomicOutput(Path(out), mode=0o644, overwrite=overwrite) as target:
        if fmt == "dot":
            target.file.write(dot_text.encode("utf-8"))
        else:
            target.file.write(_run_dot(dot_text, fmt))
        target.commit()


def _run_dot(dot_text: str, fmt: str) -> bytes:
    exe = shutil.which("dot")
    if exe is None:
        raise NotFoundError(_("Graphviz 'dot' is not installed, so no SVG or PNG can be drawn"),
                            hint=_("run scripts/install-tools.sh (or apt install graphviz), or use "
                                   "--format dot"))
    try:
        proc = subprocess.run([exe, f"-T{fmt}"], input=dot_text.encode("utf-8"),
                              capture_output=True, timeout=120, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SandiError(_("running Graphviz failed: {exc}").format(exc=exc)) from None
    if proc.returncode != 0:
        raise SandiError(_("Graphviz 'dot' failed: {detail}").format(
            detail=proc.stderr.decode("utf-8", "replace").strip()[:500]))
    return proc.stdout
