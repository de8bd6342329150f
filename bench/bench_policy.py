"""Benchmark the PHKS engine: a generated policy of 1,000 entities and 50,000 relations.

Prints the time to parse + validate the TOML, the time to compile it into the
decision index, and decision throughput with the median latency (perf_counter_ns per
decision), for first-time pairs (cold: the pair's rules are merged) and repeated
pairs (warm: the memoised path). Targets: compile < 1 s, median decision < 5 µs.

    /work/venv/bin/python bench/bench_policy.py [--entities 1000] [--relations 50000]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from datetime import UTC, datetime

from sandi.policy import CompiledPolicy, parse_policy

KINDS = ("agency", "agency", "agency", "regency", "city", "central", "unit")
LEVELS = ("B", "T", "R", "SR")


def generate(n_entities: int, n_relations: int, n_groups: int, seed: int = 6) -> str:
    rnd = random.Random(seed)
    codes = [f"E{i:05d}" for i in range(n_entities)]
    out = [
        "[policy]", 'id = "bench"', 'title = "Generated benchmark policy"', "version = 1",
        "effective = 2026-01-01", "expires = 2030-01-01", 'decree = "bench"', 'timezone = "+07:00"', "",
        "[entities]",
    ]
    out += [f'{c} = {{ name = "Entity {c}", kind = "{rnd.choice(KINDS)}" }}' for c in codes]
    groups = [f"G{i:03d}" for i in range(n_groups)]
    for i, g in enumerate(groups):
        members = rnd.sample(codes, rnd.randint(10, 60))
        if i > 0 and rnd.random() < 0.3:
            members.append(groups[rnd.randrange(i)])  # nested, acyclic: only earlier groups
        out += ["", f"[groups.{g}]", "members = [" + ", ".join(f'"{m}"' for m in members) + "]"]
    n_group_rel = n_relations // 20
    for i in range(n_relations):
        if i < n_group_rel:
            src, dst = rnd.choice(groups), rnd.choice(groups + codes)
        else:
            src, dst = rnd.choice(codes), rnd.choice(codes)
        window = ""
        if rnd.random() < 0.05:
            window = "valid_from = 2026-03-01\nvalid_until = 2027-03-01\n"
        out += ["", "[[relation]]", f'id = "r{i}"', f'from = "{src}"', f'to = "{dst}"',
                f'max = "{rnd.choice(LEVELS)}"', f'direction = "{rnd.choice(("one-way", "both"))}"',
                'network = "JKS"' + ("\n" + window if window else "")]
    for i in range(n_relations // 100):
        out += ["", "[[forbid]]", f'id = "f{i}"', f'from = "{rnd.choice(codes)}"',
                f'to = "{rnd.choice(groups)}"', f'above = "{rnd.choice(LEVELS[:3])}"',
                'direction = "one-way"']
    return "\n".join(out) + "\n"


def latencies(policy: CompiledPolicy, queries: list[tuple[str, str, str]], at: datetime) -> list[int]:
    clock = time.perf_counter_ns
    decide = policy.decide
    out = []
    for s, r, lv in queries:
        t0 = clock()
        decide(s, r, lv, at)
        out.append(clock() - t0)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--entities", type=int, default=1000)
    ap.add_argument("--relations", type=int, default=50_000)
    ap.add_argument("--groups", type=int, default=100)
    ap.add_argument("--decisions", type=int, default=200_000)
    args = ap.parse_args()

    text = generate(args.entities, args.relations, args.groups)
    print(f"policy: {args.entities} entities, {args.groups} groups, {args.relations} relations, "
          f"{args.relations // 100} forbids, {len(text) / 1e6:.1f} MB of TOML")
    t0 = time.perf_counter()
    policy = parse_policy(text, "bench.toml")
    t1 = time.perf_counter()
    compiled = CompiledPolicy(policy)
    t2 = time.perf_counter()
    print(f"parse + validate: {t1 - t0:.3f} s")
    print(f"compile (index):  {t2 - t1:.3f} s   (target < 1 s)")

    rnd = random.Random(7)
    codes = list(policy.entities)
    at = datetime(2026, 6, 1, tzinfo=UTC)
    cold = [(rnd.choice(codes), rnd.choice(codes), rnd.choice(LEVELS)) for _ in range(args.decisions)]
    # cold: pairs seen for the first time (most of 200k random pairs out of 1M)
    lat_cold = latencies(compiled, cold, at)
    # warm: the same queries again (memoised pairs)
    lat_warm = latencies(compiled, cold, at)
    allowed = sum(compiled.decide(s, r, lv, at).allowed for s, r, lv in cold[:10_000])
    for name, lat in (("first-time pairs", lat_cold), ("repeated pairs  ", lat_warm)):
        med = statistics.median(lat) / 1000
        p99 = sorted(lat)[int(len(lat) * 0.99)] / 1000
        rate = len(lat) / (sum(lat) / 1e9)
        print(f"decisions, {name}: median {med:.2f} µs, p99 {p99:.2f} µs, "
              f"{rate:,.0f} decisions/s   (target median < 5 µs)")
    print(f"({allowed} of 10,000 sampled decisions allowed)")


if __name__ == "__main__":
    main()
