"""Summarises bench/run-prune structured's structured.jsonl: per model, for the dense model and each
structured setting and importance score, the parameters kept, the held-out perplexity straight after
pruning and after the recovery fine-tune (mean ± sd over fine-tune seeds; the dense model gets the
same fine-tune), then the training and generation speed of the dense and pruned models measured in
one invocation. The last record of a (model, setting, importance, stage, seed) wins."""
import json
import statistics
import sys
from collections import OrderedDict

rows = OrderedDict()
for line in open(sys.argv[1]):
    if line.strip():
        r = json.loads(line)
        rows[(r["model"], r["setting"], r.get("importance", "-"), r["stage"], r.get("seed", 0))] = r


def ms(v, spec=".2f"):
    if not v:
        return "–"
    if len(v) == 1:
        return format(v[0], spec)
    return f"{format(statistics.mean(v), spec)} ± {format(statistics.stdev(v), spec)}"


for model in OrderedDict.fromkeys(k[0] for k in rows):
    sel = {k: r for k, r in rows.items() if k[0] == model}
    dense = [r for k, r in sel.items() if k[1] == "dense" and k[3] == "before"]
    if not dense:
        continue
    dp, dppl = dense[-1]["params"], dense[-1]["ppl"]
    dft = [r["ppl"] for k, r in sel.items() if k[1] == "dense" and k[3] == "after"]
    print(f"\n{model}:\n")
    # the ratio is to the better dense model: the original or the same fine-tune applied to it
    best = min([dppl] + ([statistics.mean(dft)] if dft else []))
    print("| model | removed: heads / KV heads / neurons | parameters | PPL pruned | PPL after fine-tune | × best dense |")
    print("|---|---|---|---|---|---|")
    print(f"| dense | – | {dp:,} (100 %) | {dppl:.2f} | {ms(dft)} | 1.00× |")
    combos = OrderedDict.fromkeys((k[1], k[2]) for k in sel if k[1] != "dense" and k[3] in ("before", "after"))
    for setting, imp in combos:
        b = [r for k, r in sel.items() if k[1:4] == (setting, imp, "before")]
        a = [r["ppl"] for k, r in sel.items() if k[1:4] == (setting, imp, "after")]
        if not b:
            continue
        b = b[-1]
        rm = b.get("removed") or {}
        frac = f"{rm.get('heads', 0):.0%} / {rm.get('kv_heads', 0):.0%} / {rm.get('neurons', 0):.0%}"
        ratio = f"{statistics.mean(a) / best:.2f}×" if a else "–"
        print(f"| {setting} {imp} | {frac} | {b['params']:,} ({b['params'] / dp:.0%}) | {b['ppl']:.2f} | {ms(a)} | {ratio} |")
    speed = [r for k, r in sel.items() if k[3] == "speed"]
    if speed:
        d = next((r for r in speed if r["setting"] == "dense"), None)
        print("\n| model | training tokens/s | speedup | generation tokens/s | speedup |")
        print("|---|---|---|---|---|")
        for r in speed:
            st = f"{r['train_tokens_per_s'] / d['train_tokens_per_s']:.2f}×" if d else "–"
            sg = f"{r['gen_tokens_per_s'] / d['gen_tokens_per_s']:.2f}×" if d else "–"
            print(f"| {r['setting']} | {r['train_tokens_per_s']:.0f} | {st} | {r['gen_tokens_per_s']:.1f} | {sg} |")
