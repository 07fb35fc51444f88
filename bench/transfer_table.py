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
    extra = ""
    ci = rs[0].get("ci")
    if ci and len(rs) == 1:
        try:
            extra = f" [{ci['accuracy'][0]:.3f}, {ci['accuracy'][1]:.3f}]"
        except (KeyError, TypeError, IndexError):
            extra = ""
    tr = rs[0].get("trainable", "")
    sps = [r["s_per_step"] for r in rs if r.get("s_per_step")]
    pk = max((r.get("peak_gib") or 0) for r in rs)
    f1x = f" [{ci['macro_f1'][0]:.3f}, {ci['macro_f1'][1]:.3f}]" if extra else ""
    print(f"| {s} | {m} | {len(rs)} | {ms(acc)}{extra} | {ms(f1)}{f1x} | {tr:,} | "
          f"{(f'{statistics.mean(sps):.2f}' if sps else '–')} | {pk:.2f} |" if isinstance(tr, int) else
          f"| {s} | {m} | {len(rs)} | {ms(acc)}{extra} | {ms(f1)}{f1x} | – | – | {pk:.2f} |")
