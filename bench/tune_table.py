"""Tables for bench/run-tune: sampler quality (median best value over seeds, with the 25th-75th
percentiles), the tuner's overhead per trial, and the KJV study."""
import json, math, statistics, sys
from collections import defaultdict


def q(v, p):
    v = sorted(v)
    k = (len(v) - 1) * p
    lo = int(k)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


def ms(v):
    return f"{statistics.mean(v):.3f} ± {statistics.stdev(v):.3f}" if len(v) > 1 else f"{v[0]:.3f}"


rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
qual = defaultdict(list)
secs = defaultdict(list)
for r in rows:
    if "function" in r and "seed" in r:
        qual[(r["function"], r["tool"], r["sampler"], r["trials"])].append(r["best"])
        secs[(r["function"], r["tool"], r["sampler"])].append(r["seconds"] / r["trials"] * 1000)
if qual:
    print("## Sampler quality: best value found (median over seeds; 25th-75th percentile)\n")
    print("| function | trials | lmforge TPE | lmforge TPE multivariate | Optuna TPE | lmforge random | Optuna random | seeds |")
    print("|---|---|---|---|---|---|---|---|")
    for f in ["branin", "hartmann6", "noisy-hartmann6", "rosen10"]:
        keys = [k for k in qual if k[0] == f]
        if not keys:
            continue
        t = keys[0][3]
        cells = []
        for tool, s in [("lmforge", "tpe"), ("lmforge", "tpe-mv"), ("optuna", "tpe"), ("lmforge", "random"), ("optuna", "random")]:
            v = qual.get((f, tool, s, t))
            cells.append(f"{statistics.median(v):.4g} ({q(v, .25):.4g}–{q(v, .75):.4g})" if v else "-")
        n = len(qual.get((f, "lmforge", "tpe", t), []))
        print(f"| {f} | {t} | " + " | ".join(cells) + f" | {n} |")
    print("\nlmforge TPE against Optuna TPE (Mann-Whitney U over the seeds' best values, normal approximation,"
          " two-sided; P(lmforge < Optuna) = U / n²):\n")
    print("| function | P(lmforge TPE better) | p |")
    print("|---|---|---|")
    for f in ["branin", "hartmann6", "noisy-hartmann6", "rosen10"]:
        ks = [k for k in qual if k[0] == f and k[1] == "lmforge" and k[2] == "tpe"]
        if not ks:
            continue
        a, b = qual[ks[0]], qual.get((f, "optuna", "tpe", ks[0][3]))
        if not b:
            continue
        u = sum((x < y) + 0.5 * (x == y) for x in a for y in b)
        n1, n2 = len(a), len(b)
        mu, sd = n1 * n2 / 2, math.sqrt(n1 * n2 * (n1 + n2 + 1) / 12)
        z = (u - mu) / sd
        pval = math.erfc(abs(z) / math.sqrt(2))
        print(f"| {f} | {u / (n1 * n2):.2f} | {pval:.2f} |")
    print("\n(optimum: branin 0.3979, hartmann6 -3.3224, rosen10 0)\n")
    print("Time per trial in those runs, ms (objective included, lmforge: its SQLite study; Optuna: in memory):\n")
    print("| function | lmforge TPE | Optuna TPE |")
    print("|---|---|---|")
    for f in ["branin", "hartmann6", "noisy-hartmann6", "rosen10"]:
        a, b = secs.get((f, "lmforge", "tpe")), secs.get((f, "optuna", "tpe"))
        if a and b:
            print(f"| {f} | {ms(a)} | {ms(b)} |")
ov = defaultdict(list)
for r in rows:
    if r.get("storage") == "sqlite":
        ov[r["tool"]].append(r["ms_per_trial"])
if ov:
    print("\n## Overhead per trial, SQLite storage on both sides (Hartmann-6, TPE, ms per trial, mean ± sd of repeats)\n")
    print("| lmforge | Optuna | ratio |")
    print("|---|---|---|")
    a, b = ov.get("lmforge", [float("nan")]), ov.get("optuna", [float("nan")])
    print(f"| {ms(a)} | {ms(b)} | {statistics.mean(b) / statistics.mean(a):.0f}x |")
kj = [r for r in rows if r.get("study") == "kjv"]
if kj:
    print("\n## KJV study (lr, warmup_steps, weight_decay, dropout; median pruning)\n")
    print("| driver | workers | sampler seed | trials | complete | pruned | failed | best val loss | wall s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in kj:
        best = r.get("best_value", r.get("best"))
        wall = r.get("wall_s", r.get("seconds"))
        print(f"| {'lmforge tune' if r['tool'] == 'lmforge' else 'Optuna + lmforge train'} | {r['workers']} | "
              f"{r.get('sampler_seed', 0)} | {r['trials']} | {r['complete']} | {r['pruned']} | {r['failed']} | {best:.4f} | {wall:.0f} |")
    by = defaultdict(list)
    for r in kj:
        by[r["tool"]].append((r.get("best_value", r.get("best")), r["pruned"]))
    if all(len(v) > 1 for v in by.values()):
        print("\n| driver | studies | best val loss (mean ± sd) | pruned (mean ± sd) |")
        print("|---|---|---|---|")
        for k, v in by.items():
            print(f"| {k} | {len(v)} | {ms([x[0] for x in v])} | {ms([float(x[1]) for x in v])} |")
    for r in kj:
        print(f"\n{r['tool']} ({r['workers']} worker{'s' if r['workers'] > 1 else ''}, seed {r.get('sampler_seed', 0)}) best "
              f"parameters: {json.dumps(r.get('best_params'))}")
base = defaultdict(list)
for r in rows:
    if r.get("study") == "kjv-baseline":
        base[r["config"]].append(r["best_val_loss"])
if base:
    print("\n## Best found vs the default configuration (retrained, seeds 1337, 1, 2)\n")
    print("| configuration | best val loss (mean ± sd) | seeds |")
    print("|---|---|---|")
    for k in ["default", "best"]:
        if k in base:
            print(f"| {k} | {ms(base[k])} | {len(base[k])} |")
