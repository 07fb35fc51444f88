"""Summarises bench/run-distill: held-out perplexity mean ± sd over seeds per method (results.jsonl),
the difference of each distilled student from the cross-entropy-only student in units of their
seed sd, and the cost table (cost.jsonl: seconds per step, lmforge and PyTorch)."""
import json, math, os, statistics, sys
from collections import OrderedDict

rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()] if os.path.exists(sys.argv[1]) else []
groups = OrderedDict()
for r in rows:
    groups.setdefault(r["method"], []).append(r)


def ms(v):
    return f"{v[0]:.2f}" if len(v) == 1 else f"{statistics.mean(v):.2f} ± {statistics.stdev(v):.2f}"


teacher = groups.get("teacher", [{}])[0].get("params")
base = [r["val_ppl"] for r in groups.get("ce", [])]
print("| method | seeds | held-out perplexity | vs ce-only (Welch t) | parameters | steps |")
print("|---|---|---|---|---|---|")
for m, rs in groups.items():
    v = [r["val_ppl"] for r in rs]
    d = ""
    if m not in ("ce", "teacher") and len(base) > 1 and len(v) > 1:
        diff = statistics.mean(v) - statistics.mean(base)
        se = math.sqrt(statistics.variance(v) / len(v) + statistics.variance(base) / len(base))
        d = f"{diff:+.2f} (t = {diff / se:.1f})" if se > 0 else f"{diff:+.2f}"
    p = rs[0].get("params")
    share = f" ({100 * p / teacher:.0f} %)" if p and teacher else ""
    print(f"| {m} | {len(rs) if m != 'teacher' else '–'} | {ms(v)} | {d} | {p:,}{share} | {rs[0].get('steps') or '–'} |")

if len(sys.argv) > 2 and os.path.exists(sys.argv[2]):
    cost = [json.loads(l) for l in open(sys.argv[2]) if l.strip()]
    last = OrderedDict()
    for c in cost:  # the last invocation's figures
        last[(c["impl"], c["loop"])] = c
    print("\n| implementation | loop | s/step | tokens/s | vs its own plain step |")
    print("|---|---|---|---|---|")
    for (impl, loop), c in last.items():
        plain = last.get((impl, "ce"))
        print(f"| {impl} | {loop} | {c['s_per_step']:.3f} | {c['tokens_per_s']:.0f} | {c['s_per_step'] / plain['s_per_step']:.2f}x |")
