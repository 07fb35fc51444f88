"""Summarises bench/run-distill: held-out perplexity mean ± sd over seeds per method (results.jsonl;
KJV and, prefixed news-, SmolLM2 on the news text), the difference of each distilled student from the
cross-entropy-only student (and of the cache / on-policy rows from the live-teacher kl) as Welch's t,
the classifier table (cls-: accuracy and macro-F1 mean ± sd with each run's bootstrap CI, the share of
the teacher's accuracy kept), and the cost table (cost.jsonl: seconds per step, lmforge and PyTorch)."""
import json, math, os, statistics, sys
from collections import OrderedDict

rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()] if os.path.exists(sys.argv[1]) else []
groups = OrderedDict()
for r in rows:
    single = r["method"].endswith(("teacher", "-init"))  # measured once; a repeated invocation appends it again
    if not (single and r["method"] in groups):
        groups.setdefault(r["method"], []).append(r)


def ms(v):
    return f"{v[0]:.2f}" if len(v) == 1 else f"{statistics.mean(v):.2f} ± {statistics.stdev(v):.2f}"




def welch(v, base):
    if len(base) < 2 or len(v) < 2:
        return ""
    diff = statistics.mean(v) - statistics.mean(base)
    se = math.sqrt(statistics.variance(v) / len(v) + statistics.variance(base) / len(base))
    return f"{diff:+.2f} (t = {diff / se:.1f})" if se > 0 else f"{diff:+.2f}"


def lm_table(prefix):
    ms_ = [m for m in groups if m.startswith(prefix) and not m.startswith(("cls-", "ck-", "cks-")) and (prefix or not m.startswith("news-"))]
    if not ms_:
        return
    teacher = groups.get(prefix + "teacher", [{}])[0].get("params")
    base = [r["val_ppl"] for r in groups.get(prefix + "ce", [])]
    live = [r["val_ppl"] for r in groups.get(prefix + "kl", [])]
    extra = not prefix and any(m.startswith(("cache-", "onpolicy-")) for m in ms_)
    print(("\n" if prefix else "") + "| method | seeds | held-out perplexity | vs ce-only (Welch t) |" + (" vs kl (Welch t) |" if extra else "")
          + " parameters | steps |")
    print("|---|---|---|---|" + ("---|" if extra else "") + "---|---|")
    for m in ms_:
        rs = groups[m]
        v = [r["val_ppl"] for r in rs]
        one = m.endswith(("teacher", "-init"))
        d = "" if one or m == prefix + "ce" else welch(v, base)
        dk = "" if not m.startswith(("cache-", "onpolicy-")) else welch(v, live)
        p = rs[0].get("params")
        share = f" ({100 * p / teacher:.0f} %)" if p and teacher else ""
        print(f"| {m} | {'–' if one else len(rs)} | {ms(v)} | {d} |" + (f" {dk} |" if extra else "")
              + f" {p:,}{share} | {rs[0].get('steps') or '–'} |")


lm_table("")
lm_table("news-")

if "cls-teacher" in groups:
    t = groups["cls-teacher"][0]
    print("\n| classifier | seeds | test accuracy | macro-F1 | of the teacher's accuracy | 95 % bootstrap CI of accuracy per run | parameters |")
    print("|---|---|---|---|---|---|---|")
    for m in [m for m in groups if m.startswith("cls-")]:
        rs = groups[m]
        a = [r["accuracy"] for r in rs]
        f = [r["macro_f1"] for r in rs]
        ci = ", ".join(f"[{r['ci']['accuracy'][0]:.3f}, {r['ci']['accuracy'][1]:.3f}]" for r in rs if (r.get("ci") or {}).get("accuracy"))
        fmt = lambda v: f"{v[0]:.3f}" if len(v) == 1 else f"{statistics.mean(v):.3f} ± {statistics.stdev(v):.3f}"
        kept = f"{100 * statistics.mean(a) / t['accuracy']:.1f} %"
        print(f"| {m} | {'–' if m == 'cls-teacher' else len(rs)} | {fmt(a)} | {fmt(f)} | {kept} | {ci} | "
              f"{rs[0]['params']:,} ({100 * rs[0]['params'] / t['params']:.0f} %) |")

def ck_table(pre, head):
    # phase clskjv: 2 x 2 (general student: CE or distilled) x (task: label loss or distilled), the
    # same fine-tuning seeds in every cell, so the differences are paired by seed
    t = groups[pre + "-teacher"][0]
    cells = [m for m in groups if m.startswith(pre + "-gen-")]
    by = {m: {r["seed"]: r for r in groups[m]} for m in cells}

    def paired(m, base):
        common = sorted(set(by[m]) & set(by.get(base, {})))
        if len(common) < 2:
            return ""
        d = [by[m][s]["accuracy"] - by[base][s]["accuracy"] for s in common]
        sd = statistics.stdev(d)
        tt = statistics.mean(d) / (sd / math.sqrt(len(d))) if sd > 1e-9 else float("inf")
        return f"{statistics.mean(d):+.3f} (paired t = {tt:.1f}, n = {len(d)})"

    fmt = lambda v: f"{v[0]:.3f}" if len(v) == 1 else f"{statistics.mean(v):.3f} ± {statistics.stdev(v):.3f}"
    print(f"\n{head}\n\n| general student | task training | seeds | test accuracy | macro-F1 | of the teacher's accuracy | runs at ≥ 95 % | vs the same general student, label loss only | parameters |")
    print("|---|---|---|---|---|---|---|---|---|")
    print(f"| teacher (fine-tuned KJV model) | {t['steps']} steps | – | {t['accuracy']:.3f} | {t['macro_f1']:.3f} | 100 % | | | {t['params']:,} |")
    for m in cells:
        rs = groups[m]
        a = [r["accuracy"] for r in rs]
        f = [r["macro_f1"] for r in rs]
        gen, task = m[len(pre + "-gen-"):].split("-task-")
        base = f"{pre}-gen-{gen}-task-ce"
        at = f" (alpha {rs[0]['alpha']}, tau {rs[0]['temperature']})" if task == "kd" else ""
        n95 = sum(x >= 0.95 * t["accuracy"] for x in a)
        print(f"| {'distilled (kl-hidden)' if gen == 'kd' else 'cross-entropy'} | {'distilled' + at if task == 'kd' else 'label loss'} | "
              f"{len(rs)} | {fmt(a)} | {fmt(f)} | {100 * statistics.mean(a) / t['accuracy']:.1f} % | {n95}/{len(a)} | "
              f"{'' if m == base else paired(m, base)} | {rs[0]['params']:,} ({100 * rs[0]['params'] / t['params']:.0f} %) |")
    if pre + "-gen-kd-task-kd" in by and pre + "-gen-ce-task-ce" in by:
        print(f"\nboth stages distilled against neither: {paired(pre + '-gen-kd-task-kd', pre + '-gen-ce-task-ce')}")


if "ck-teacher" in groups:
    ck_table("ck", "fortunes, head = lm (label scoring):")
if "cks-teacher" in groups:
    ck_table("cks", "fortunes, head = score (a score head on the last token):")

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
