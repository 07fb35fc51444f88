"""Summarises bench/run-quant's results.jsonl: per model, format and activations (float32, or int8
for the integer kernels) the GGUF size, perplexity, KLD
against f32 and batch-1 tokens/s of lmforge and llama.cpp, with the ratios (bytes and tokens/s
against the model's f32 row, lmforge's tokens/s against llama.cpp's). The last line per
(model, format, activations) wins, so a rerun of one format replaces its row."""
import json
import sys
from collections import OrderedDict

rows = OrderedDict()
for line in open(sys.argv[1]):
    if line.strip():
        r = json.loads(line)
        rows[(r["model"], r["format"], r.get("activations", "float"))] = r


def f(v, spec, none="–"):
    return none if v is None else format(v, spec)


def side(r, k):
    return (r.get("lmforge") or {}).get(k), (r.get("llamacpp") or {}).get(k)


print("| model | format | activations | GGUF MiB | bytes vs f32 | PPL lmforge / llama.cpp | mean KLD lmforge / llama.cpp | "
      "median KLD | p99 KLD | same top % | tok/s lmforge | vs f32 | tok/s llama.cpp | vs f32 | lmforge / llama.cpp |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
for (model, fmt, act), r in rows.items():
    f32 = rows.get((model, "f32", "float"))
    if act != "float" and rows.get((model, fmt, "float")):  # llama.cpp's columns: the format's float row
        r = dict(r, llamacpp=rows[(model, fmt, "float")].get("llamacpp"),
                 gen=dict(r["gen"], llamacpp_tok_s=rows[(model, fmt, "float")]["gen"].get("llamacpp_tok_s")))
    g, g32 = r["gen"], (f32 or {}).get("gen", {})
    lt, pt = g["lmforge_tok_s"], g.get("llamacpp_tok_s")
    bytes_ratio = r["bytes"] / f32["bytes"] if f32 else None
    ppl = side(r, "ppl")
    kld = side(r, "kld_mean")
    kse = side(r, "kld_se")
    med, p99, top = side(r, "kld_median"), side(r, "kld_p99"), side(r, "same_top")
    kl = f"{f(kld[0], '.5f')} ± {f(kse[0], '.5f')}" if kse[0] else f(kld[0], ".5f")
    kp = f"{f(kld[1], '.5f')} ± {f(kse[1], '.5f')}" if kse[1] else f(kld[1], ".5f")
    print(f"| {model} | {fmt} | {act} | {r['bytes'] / 2**20:.1f} | {f(bytes_ratio, '.3f')} | {f(ppl[0], '.3f')} / {f(ppl[1], '.3f')} | "
          f"{kl} / {kp} | {f(med[0], '.5f')} / {f(med[1], '.5f')} | {f(p99[0], '.4f')} / {f(p99[1], '.4f')} | "
          f"{f(top[0] and 100 * top[0], '.2f')} / {f(top[1] and 100 * top[1], '.2f')} | {lt:.1f} | "
          f"{f(lt / g32['lmforge_tok_s'] if g32 else None, '.2f')}× | {f(pt, '.1f')} | "
          f"{f(pt / g32['llamacpp_tok_s'] if pt and g32.get('llamacpp_tok_s') else None, '.2f')}× | {f(lt / pt if pt else None, '.2f')}× |")
machine = {(r["threads"], r["keep_quantized"]) for r in rows.values()}
print(f"\nthreads, lmforge --keep-quantized: {sorted(machine)}; same greedy tokens lmforge / llama.cpp: "
      + ", ".join(f"{m} {fm} {r['gen'].get('same_tokens')}" for (m, fm, a), r in rows.items() if a == "float"))
