"""Summarises bench/run-prune's results.jsonl: per model, perplexity (mean ± sd over calibration seeds)
for each method and sparsity with the ratio to the dense model; then the calibration-cost rows:
lmforge prune's seconds against the PyTorch peer's on the same windows, and the perplexity of each
side's pruned model. The last run of a (model, method, pattern, seed) wins."""
import json
import statistics
import sys
from collections import OrderedDict

rows = OrderedDict()
for line in open(sys.argv[1]):
    if line.strip():
        r = json.loads(line)
        rows[(r["model"], r["method"], r["pattern"], r["seed"])] = r


def ms(v, spec=".2f"):
    if not v:
        return "–"
    if len(v) == 1:
        return format(v[0], spec)
    return f"{format(statistics.mean(v), spec)} ± {format(statistics.stdev(v), spec)}"


models = list(OrderedDict.fromkeys(k[0] for k in rows))
patterns = ["0.25", "0.5", "0.6", "0.7", "2:4"]
methods = ["magnitude", "wanda", "sparsegpt"]
for model in models:
    dense = [r["ppl"] for k, r in rows.items() if k[0] == model and k[1] == "dense"]
    d = statistics.mean(dense) if dense else None
    print(f"\n{model}: dense perplexity {ms(dense)}")
    print("| sparsity | " + " | ".join(f"{m} PPL | × dense" for m in methods) + " | seeds |")
    print("|---|" + "---|---|" * len(methods) + "---|")
    for p in patterns:
        cells, nseeds = [], set()
        for m in methods:
            v = [r["ppl"] for k, r in rows.items() if k[0] == model and k[1] == m and k[2] == p]
            cells.append(ms(v))
            cells.append(f"{statistics.mean(v) / d:.2f}×" if v and d else "–")
            if v:
                nseeds.add(f"{m[0]}:{len(v)}")
        if any(c != "–" for c in cells):
            label = p if ":" in p else f"{float(p) * 100:.0f} %"
            print(f"| {label} | " + " | ".join(cells) + f" | {' '.join(sorted(nseeds))} |")
    nz = [r for k, r in rows.items() if k[0] == model and k[1] == "sparsegpt" and k[2] == "0.5"]
    if nz:
        r = nz[0]
        print(f"(50 %: {r['params_nonzero']:,} nonzero of {r['params']:,} parameters; linear sparsity {r['linear_sparsity']:.4f})")
    timing = [r for k, r in rows.items() if k[0] == model and k[1].endswith("-timing")]
    if timing:
        print("\n| method | pattern | lmforge s (calibration forward) | PyTorch peer s | peer / lmforge | PPL lmforge | PPL peer |")
        print("|---|---|---|---|---|---|---|")
        for r in timing:
            p = r["peer"] or {}
            ps = p.get("seconds")
            print(f"| {r['method'][:-7]} | {r['pattern']} | {r['prune_seconds']:.2f} ({r['calib_seconds']:.2f}) | "
                  f"{ps:.2f} | {ps / r['prune_seconds']:.2f}× | {r['ppl']:.3f} | {p.get('ppl', float('nan')):.3f} |"
                  if ps else f"| {r['method'][:-7]} | {r['pattern']} | {r['prune_seconds']:.2f} | – | – | {r['ppl']:.3f} | – |")
