"""Tables of bench/run-augment's results.jsonl: speed (sentences/s, lmforge vs nlpaug), and
classification with and without augmentation (mean ± sd over seeds, test split)."""
import json
import statistics as st
import sys
from collections import defaultdict

rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]


def ms(xs):
    if not xs:
        return "–"
    m = st.mean(xs)
    return f"{m:.3f} ± {st.stdev(xs):.3f}" if len(xs) > 1 else f"{m:.3f}"


speed = {}
for r in rows:
    if r.get("phase") == "speed":
        speed[r["op"]] = r  # the last measurement of each op
if speed:
    print("## speed: sentences/s on the same fortunes sentences (whole lmforge command vs nlpaug's augment())\n")
    print("| op | lmforge 1 thread | lmforge 2 threads | lmforge loop only, 1 / 2 threads | nlpaug | lmforge (1 thread) / nlpaug |")
    print("|---|---:|---:|---:|---:|---:|")
    for op, r in speed.items():
        if op == "bt":
            continue
        nl = r.get("nlpaug_per_s")
        print(f"| {op} | {r['lmforge_t1_per_s']:,.0f} | {r['lmforge_t2_per_s']:,.0f} | "
              f"{r.get('lmforge_t1_loop_per_s', 0):,.0f} / {r.get('lmforge_t2_loop_per_s', 0):,.0f} | "
              f"{f'{nl:,.0f}' if nl else 'no peer'} | {str(r['speedup_t1']) + 'x' if nl else '–'} |")
    if "bt" in speed:
        b = speed["bt"]
        print(f"\nback-translation (Apertium eng->spa->eng): batched through one process pair {b['lmforge_batched_per_s']} sentences/s "
              f"({b['sentences']} sentences) vs one apertium call per sentence {b['per_sentence_per_s']} sentences/s "
              f"({b['per_sentence_sentences']} sentences): {b['speedup']}x")

for phase in ("effect", "neural"):
    g = defaultdict(list)
    model = None
    for r in rows:
        if r.get("phase") == phase:
            g[(str(r["k"]), r["cond"])].append(r)
            model = r["model"]
    if not g:
        continue
    sizes = sorted({k for k, _ in g}, key=lambda k: (k == "all", int(k) if k != "all" else 0))
    conds = list(dict.fromkeys(c for _, c in g))
    print(f"\n## {phase}: {model}, fortunes (6 labels), test macro-F1 / accuracy, mean ± sd over seeds\n")
    print("| augmentation | " + " | ".join(f"k={k}/label macro-F1 | acc" for k in sizes if k != "all") + " |")
    print("|---|" + "---:|---:|" * len([k for k in sizes if k != "all"]))
    for c in conds:
        cells = []
        for k in sizes:
            if k == "all":
                continue
            rs = g.get((k, c), [])
            cells.append(f"{ms([r['macro_f1'] for r in rs])} | {ms([r['accuracy'] for r in rs])}")
        n = len(g.get((sizes[0], c), []))
        print(f"| {c} (n={n}) | " + " | ".join(cells) + " |")
    for k in sizes:
        if k == "all":
            for c in conds:
                rs = g.get((k, c), [])
                if rs:
                    print(f"\nceiling (all {rs[0].get('train', '?')} pool examples, no augmentation): macro-F1 "
                          f"{ms([r['macro_f1'] for r in rs])}, accuracy {ms([r['accuracy'] for r in rs])}")
    vals = {c: [r["val_macro_f1"] for k in sizes for r in g.get((k, c), []) if "val_macro_f1" in r]
            for c in conds if c.startswith("mix")}
    vals = {c: v for c, v in vals.items() if v}
    if vals:
        best = max(vals, key=lambda c: st.mean(vals[c]))
        print(f"\nbest mix on the validation split (mean macro-F1 over sizes and seeds): {best} "
              + ", ".join(f"{c} {st.mean(v):.3f}" for c, v in vals.items()))
