"""Tables of bench/run-augment's results.jsonl: speed (sentences/s, lmforge vs nlpaug), and
classification with and without augmentation (mean ± sd over seeds, test split)."""
import json
import math
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



def t_sf2(t, df):
    """two-sided p of Student's t: I_{df/(df+t^2)}(df/2, 1/2), the incomplete beta by its continued
    fraction (Lentz), which converges fast for x < (a+1)/(a+b+2) and by symmetry otherwise"""
    x, a, b = df / (df + t * t), df / 2, 0.5
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0

    def cf(x, a, b):
        tiny = 1e-300
        c, d = 1.0, 1.0 - (a + b) * x / (a + 1)
        d = 1.0 / (d if abs(d) > tiny else tiny)
        h = d
        for m in range(1, 300):
            for num in (m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
                        -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))):
                d = 1.0 + num * d
                d = 1.0 / (d if abs(d) > tiny else tiny)
                c = 1.0 + num / c
                c = c if abs(c) > tiny else tiny
                h *= d * c
        return h

    lbeta = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
    if x < (a + 1) / (a + b + 2):
        return math.exp(lbeta + a * math.log(x) + b * math.log(1 - x)) * cf(x, a, b) / a
    return 1.0 - math.exp(lbeta + b * math.log(1 - x) + a * math.log(x)) * cf(1 - x, b, a) / b


def welch(x, y):
    """Welch's t of mean(x) - mean(y), its degrees of freedom and two-sided p"""
    vx, vy = st.variance(x) / len(x), st.variance(y) / len(y)
    if vx + vy == 0:
        return float("nan"), 0, float("nan")
    t = (st.mean(x) - st.mean(y)) / math.sqrt(vx + vy)
    df = (vx + vy) ** 2 / (vx * vx / (len(x) - 1) + vy * vy / (len(y) - 1))
    return t, df, t_sf2(t, df)


def paired(x, y):
    """paired t of x - y (the same seeds: the same k examples, augmentation and training seed)"""
    d = [a - b for a, b in zip(x, y)]
    sd = st.stdev(d)
    if sd == 0:
        return st.mean(d), float("nan"), float("nan")
    t = st.mean(d) / (sd / math.sqrt(len(d)))
    return st.mean(d), t, t_sf2(t, len(d) - 1)


for phase in ("effect", "neural"):
    g = defaultdict(list)
    model = None
    for r in rows:
        if r.get("phase") == phase and r.get("split", "test") == "test" and (phase != "neural" or r["k"] != "all"):
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
    if phase == "neural":
        # the whole pool, one seed, at each step count
        for r in rows:
            if r.get("phase") == "neural" and r["k"] == "all" and r.get("split") == "test":
                print(f"\nceiling (all {r['train']} pool examples, no augmentation, {r['steps']} steps of 8, seed "
                      f"{r['seed']}): macro-F1 {r['macro_f1']:.3f}, accuracy {r['accuracy']:.3f}")
        print("\naugmentation vs none per size (test macro-F1; paired: the same seeds, i.e. the same k examples):\n")
        print("| k/label | augmentation | n | Δ macro-F1 (paired mean) | paired t, p | Welch t, p | Δ accuracy |")
        print("|---:|---|---:|---:|---|---|---:|")
        for k in sizes:
            base = {r["seed"]: r for r in g.get((k, "none"), [])}
            for c in conds:
                if c == "none":
                    continue
                rs = [r for r in g.get((k, c), []) if r["seed"] in base]
                if len(rs) < 2:
                    continue
                x = [r["macro_f1"] for r in rs]
                y = [base[r["seed"]]["macro_f1"] for r in rs]
                d, tp, pp = paired(x, y)
                tw, dfw, pw = welch(x, [r["macro_f1"] for r in base.values()])
                da = st.mean(r["accuracy"] - base[r["seed"]]["accuracy"] for r in rs)
                print(f"| {k} | {c} | {len(rs)} | {d:+.3f} | t={tp:.2f}, p={pp:.3f} | t={tw:.2f}, p={pw:.3f} | {da:+.3f} |")
        sel = defaultdict(list)
        for r in rows:
            if r.get("phase") == "neural" and r.get("split") == "val":
                sel[r["cond"]].append(r)
        if sel:
            print("\nbest mix on the validation split (mean macro-F1 over "
                  + ", ".join(sorted({f"k={r['k']}" for v in sel.values() for r in v})) + " and seeds): "
                  + ", ".join(f"{c} {st.mean(r['macro_f1'] for r in v):.3f} (n={len(v)})" for c, v in sel.items())
                  + f" -> {max(sel, key=lambda c: st.mean(r['macro_f1'] for r in sel[c]))}")
        tr = [r for r in rows if r.get("phase") == "neural" and "train_s" in r]
        if tr:
            # the median: a run that shared the cores with a job outside the lock takes many times longer
            print("\ntime per run (median over runs): " + ", ".join(
                f"{f} {st.median(r[f] for r in tr):.2f} s" for f in ("augment_s", "prepare_s", "train_s", "eval_s"))
                + f"; most-predicted label's share of predictions: max {max(r['pred_max_share'] for r in tr):.3f} "
                  f"(1/6 = 0.167 is uniform)")
        continue
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
