"""Summarises bench/run-transfer's results.jsonl: mean ± sd over seeds per (set, method)."""
import json, statistics, sys
from collections import OrderedDict

rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
groups = OrderedDict()
for r in rows:
    groups.setdefault((r["set"], r["method"]), []).append(r)

def ms(v):
    if len(v) == 1:
        return f"{v[0]:.4f}"
    return f"{statistics.mean(v):.4f} ± {statistics.stdev(v):.4f}"

print(f"| set | method | seeds | accuracy | macro-F1 | trainable | s/step | peak GiB |")
print(f"|---|---|---|---|---|---|---|---|")
for (s, m), rs in groups.items():
    acc = [r["accuracy"] for r in rs]
    f1 = [r["macro_f1"] for r in rs]
    # a single run: its 95 % bootstrap interval over the test examples; several seeds: the mean
    # half-width of their intervals (test-sampling noise, beside the sd between seeds)
    cis = [r["ci"] for r in rs if r.get("ci")]
    extra = f1x = ""
    if cis and len(rs) == 1:
        extra = f" [{cis[0]['accuracy'][0]:.3f}, {cis[0]['accuracy'][1]:.3f}]"
        f1x = f" [{cis[0]['macro_f1'][0]:.3f}, {cis[0]['macro_f1'][1]:.3f}]"
    elif cis:
        hw = lambda k: statistics.mean((c[k][1] - c[k][0]) / 2 for c in cis)
        extra, f1x = f" (CI ±{hw('accuracy'):.3f})", f" (CI ±{hw('macro_f1'):.3f})"
    tr = rs[0].get("trainable", "")
    sps = [r["s_per_step"] for r in rs if r.get("s_per_step")]
    pk = max((r.get("peak_gib") or 0) for r in rs)
    print(f"| {s} | {m} | {len(rs)} | {ms(acc)}{extra} | {ms(f1)}{f1x} | {tr:,} | "
          f"{(f'{statistics.mean(sps):.2f}' if sps else '–')} | {pk:.2f} |" if isinstance(tr, int) else
          f"| {s} | {m} | {len(rs)} | {ms(acc)}{extra} | {ms(f1)}{f1x} | – | – | {pk:.2f} |")
