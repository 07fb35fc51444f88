"""Summarises bench/run-multitask's results.jsonl: per-task metrics mean ± sd over seeds per method,
and (with timing.jsonl from `bench/run-multitask timing`) the per-step time of the weighting methods
against static weights. Usage: multitask_table.py RESULTS.jsonl [TIMING.jsonl]"""
import json, statistics, sys
from collections import OrderedDict

rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
groups = OrderedDict()
for r in rows:
    groups.setdefault(r["method"], []).append(r)


def ms(rs, k, fmt="{:.3f}"):
    v = [r[k] for r in rs if r.get(k) is not None]
    if not v:
        return "–"
    if len(v) == 1:
        return fmt.format(v[0])
    return f"{fmt.format(statistics.mean(v))} ± {fmt.format(statistics.stdev(v))}"


print("| method | seeds | rates (fortunes/kjv) | fortunes accuracy | fortunes macro-F1 | KJV perplexity | s/step |")
print("|---|---|---|---|---|---|---|")
for m, rs in groups.items():
    rates = rs[0].get("rates", {})
    rt = "/".join(f"{rates[t]:.2f}" if t in rates else "–" for t in ("fortunes", "kjv"))
    print(f"| {m} | {len(rs)} | {rt} | {ms(rs, 'fortunes_accuracy')} | {ms(rs, 'fortunes_macro_f1')} | "
          f"{ms(rs, 'kjv_perplexity', '{:.2f}')} | {ms(rs, 's_per_step', '{:.3f}')} |")

start = rows[0]
print(f"\nstart (the KJV model before fine-tuning): fortunes accuracy {start.get('fortunes_accuracy_start', float('nan')):.3f}, "
      f"macro-F1 {start.get('fortunes_macro_f1_start', float('nan')):.3f}; KJV perplexity "
      f"{next((r['kjv_perplexity_start'] for r in rows if r.get('kjv_perplexity_start')), float('nan')):.2f}")

# per-step overhead: ratio to mt-prop (static) of the same seed, measured in the same locked job
ratios = {}
base = {r["seed"]: r["s_per_step"] for r in rows if r["method"] == "mt-prop"}
for r in rows:
    if r["method"] in ("mt-uw", "mt-pcgrad") and r["seed"] in base:
        ratios.setdefault(r["method"], []).append(r["s_per_step"] / base[r["seed"]])
for m, v in ratios.items():
    sd = f" ± {statistics.stdev(v):.3f}" if len(v) > 1 else ""
    print(f"{m}: {statistics.mean(v):.3f}{sd} x the static step time in the sweep's jobs ({len(v)} seeds; a shared machine: "
          "see the interleaved timing)")
uw = [r["uw_weight"] for r in rows if r.get("uw_weight")]
if uw:
    print("uncertainty weights at the end (exp(-s)/2, start 0.824): " +
          ", ".join(f"{t} {statistics.mean(w[t] for w in uw):.3f}" for t in uw[0]))

# the interleaved timing rounds (bench/run-multitask timing): ratios to static within each round
if len(sys.argv) > 2:
    t = [json.loads(l) for l in open(sys.argv[2]) if l.strip()]
    rounds = {}
    for r in t:
        rounds.setdefault(r["round"], {})[r["weighting"]] = r["s_per_step"]
    print("\n| weighting | s/step (mean ± sd) | x static (per round, mean ± sd) |")
    print("|---|---|---|")
    for w in ("static", "uncertainty", "pcgrad"):
        v = [rd[w] for rd in rounds.values() if w in rd]
        q = [rd[w] / rd["static"] for rd in rounds.values() if w in rd and "static" in rd]
        sd = lambda x: f" ± {statistics.stdev(x):.3f}" if len(x) > 1 else ""
        print(f"| {w} | {statistics.mean(v):.3f}{sd(v)} | {statistics.mean(q):.3f}{sd(q)} |")
