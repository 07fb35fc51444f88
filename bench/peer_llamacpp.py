"""llama.cpp peer (llama-cpp-python, bench/venv.sh's bench_llamacpp) for bench/run-quant and
tests/llamacpp_test.py: the same measurements as lmforge on the same GGUF file and tokens.

  peer_llamacpp.py eval GGUF TOKENS [--base BASE.gguf] [--context T] [--stride S | --chunks] [--limit N] [--threads N]
      llama.cpp's logits over the windows `lmforge eval` uses (src/eval/eval_internal.h: sliding
      windows of T advancing by S, every target scored once, or with --chunks llama-perplexity's
      windows of T that do not overlap, their second half scored), the perplexity, and with --base
      the statistics of `lmforge eval GGUF TOKENS --kld-base BASE` computed the same way (KL(P_base ||
      P) per target in float64 from log-softmax of the full logits; mean ± standard error, linear
      percentiles, same top token, both perplexities). One window of logits per model at a time.
  peer_llamacpp.py generate GGUF --prompt-ids 1,2,3 [--new N] [--threads N]
      greedy decoding at batch 1: the prompt in one batch (timed apart), then N steps of one token
      (argmax of the last logits, then one llama_decode), as `lmforge generate --json` times them.
  peer_llamacpp.py logits GGUF --ids 1,2,3 --out REF.safetensors [--threads N]
      llama.cpp's logits of one sequence as an `lmforge verify` reference (input_ids, logits).

TOKENS: an lmforge token shard (.bin; its loss mask is honoured) or a JSON array of ids.
Prints one JSON line on stdout. llama.cpp runs on the CPU with a float32 key/value cache, as lmforge
(--kv f16: llama.cpp's default, which rounds keys and values to half precision). --threads sets both n_threads and n_threads_batch (default: THREADS
or the core count, as bench/venv.sh's bench_threads)."""
import argparse
import json
import os
import sys
import time

import numpy as np
import llama_cpp
from llama_cpp import Llama


def read_tokens(path):
    """(ids, target mask) from an lmforge shard (src/data/shard.c's header) or a JSON array"""
    if not path.endswith(".bin"):
        ids = np.array(json.load(open(path)), dtype=np.int64)
        return ids, np.ones(len(ids), np.uint8)
    b = open(path, "rb").read()
    if b[:8] != b"LFSHARD\0":
        sys.exit(f"peer_llamacpp: {path}: not an lmforge shard")
    tb = int.from_bytes(b[12:16], "little")
    n = int.from_bytes(b[16:24], "little")
    off_tok = int.from_bytes(b[48:56], "little")
    off_mask = int.from_bytes(b[64:72], "little")
    ids = np.frombuffer(b, dtype=np.uint16 if tb == 2 else np.uint32, count=n, offset=off_tok).astype(np.int64)
    mask = np.frombuffer(b, dtype=np.uint8, count=n, offset=off_mask) if off_mask else np.ones(n, np.uint8)
    return ids, mask


def windows(n, T, stride, chunks):
    """(begin, end, first): inputs ids[begin:end]; positions first..end-1 predict ids[i + 1]"""
    if chunks:
        return [(b, b + T - 1, b + T // 2) for b in range(0, n - T + 1, T)]
    out, begin, scored_to = [], 0, 0
    while scored_to + 1 < n:
        end = min(begin + T, n - 1)
        out.append((begin, end, max(begin, scored_to)))
        scored_to = end
        begin += stride
    return out


KV_TYPE = llama_cpp.GGML_TYPE_F32


def load(path, n_ctx, threads, logits_all):
    """a CPU context whose key/value cache holds float32 as lmforge's does (llama.cpp's default is
    F16, which rounds keys and values to 11 bits: --kv f16 measures that)"""
    # llama.cpp warns on stderr whenever it rounds the context up past a small model's training
    # length (n_ctx_seq > n_ctx_train; the windows stay within it): that line is dropped, others kept
    import tempfile
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+") as err:
        os.dup2(err.fileno(), 2)
        try:
            return Llama(model_path=path, n_ctx=n_ctx, n_batch=n_ctx, n_ubatch=n_ctx, n_threads=threads,
                         n_threads_batch=threads, logits_all=logits_all, n_gpu_layers=0, type_k=KV_TYPE, type_v=KV_TYPE,
                         flash_attn=False, verbose=False)
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            err.seek(0)
            sys.stderr.write("".join(line for line in err if "n_ctx_seq" not in line))


def window_logits(llm, x):
    llm.reset()
    llm.eval(x.tolist())
    return llm.scores[: len(x)]  # (len, V) float32, valid until the next eval


def log_softmax(x):
    x = x.astype(np.float64)
    m = x.max(-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(-1, keepdims=True))


def mean_se(x):
    n = len(x)
    m = float(np.mean(x))
    return m, float(np.sqrt(np.sum((x - m) ** 2) / n / (n - 1))) if n > 1 else 0.0


def kld_stats(kl, nll_b, nll, top_b, top):
    """src/eval/kld.c's lf_kld_stats"""
    n = len(kl)
    r = {"targets": n}
    ma, sa = mean_se(nll)
    mb, sb = mean_se(nll_b)
    cov = float(np.sum((nll - ma) * (nll_b - mb)) / n / (n - 1)) if n > 1 else 0.0
    r.update(ppl=np.exp(ma), ppl_se=np.exp(ma) * sa, ppl_base=np.exp(mb), ppl_base_se=np.exp(mb) * sb,
             nll_cor=cov / (sa * sb) if sa > 0 and sb > 0 else float("nan"), ln_ppl_ratio=ma - mb,
             ln_ppl_ratio_se=float(np.sqrt(max(sa * sa + sb * sb - 2 * cov, 0.0))))
    r["ppl_ratio"] = np.exp(r["ln_ppl_ratio"])
    r["ppl_ratio_se"] = r["ppl_ratio"] * r["ln_ppl_ratio_se"]
    r["ppl_diff"] = r["ppl"] - r["ppl_base"]
    r["ppl_diff_se"] = float(np.sqrt(max(r["ppl_se"] ** 2 + r["ppl_base_se"] ** 2 - 2 * r["ppl"] * r["ppl_base"] * cov, 0.0)))
    same = float(np.mean(top == top_b))
    r.update(same_top=same, same_top_se=float(np.sqrt(same * (1 - same) / (n - 1))) if n > 1 else 0.0)
    r["kld_mean"], r["kld_se"] = mean_se(kl)
    for k, q in (("kld_max", 100), ("kld_p999", 99.9), ("kld_p99", 99), ("kld_p95", 95), ("kld_p90", 90), ("kld_median", 50),
                 ("kld_p10", 10), ("kld_p5", 5), ("kld_p1", 1), ("kld_p01", 0.1), ("kld_min", 0)):
        r[k] = float(np.percentile(kl, q))
    dp = np.exp(-nll) - np.exp(-nll_b)
    r["dp_mean"], r["dp_se"] = mean_se(dp)
    mse, mse_se = mean_se(dp * dp)
    r["dp_rms"] = float(np.sqrt(mse))
    r["dp_rms_se"] = 0.5 / r["dp_rms"] * mse_se if r["dp_rms"] > 0 else 0.0
    for k, q in (("dp_max", 100), ("dp_p99", 99), ("dp_median", 50), ("dp_p1", 1), ("dp_min", 0)):
        r[k] = float(np.percentile(dp, q))
    return {k: float(v) if isinstance(v, (float, np.floating)) else v for k, v in r.items()}


def cmd_eval(a):
    ids, mask = read_tokens(a.tokens)
    if a.limit:  # lmforge eval --limit: the first tokens only
        ids, mask = ids[: a.limit], mask[: a.limit]
    T, chunks = a.context, a.chunks
    stride = 0 if chunks else (a.stride or max(T // 2, 1))
    llm = load(a.gguf, T, a.threads, True)
    base = load(a.base, T, a.threads, True) if a.base else None
    V = llm.n_vocab()
    if base and base.n_vocab() != V:
        sys.exit(f"peer_llamacpp: {a.gguf} has {V} tokens, {a.base} {base.n_vocab()}: the KL divergence needs the same vocabulary")
    if ids.max() >= V:
        sys.exit(f"peer_llamacpp: {a.tokens} holds id {ids.max()}, outside {a.gguf}'s vocabulary of {V}")
    kl, nll_b, nll, top_b, top = [], [], [], [], []
    wins = windows(len(ids), T, stride, chunks)
    t0 = time.perf_counter()
    for begin, end, first in wins:
        rows = np.array([i - begin for i in range(first, end) if mask[i + 1]], dtype=np.int64)
        if not len(rows):
            continue
        x = ids[begin:end]
        tgt = ids[begin + rows + 1]
        lq = log_softmax(window_logits(llm, x)[rows])
        nll.append(-lq[np.arange(len(rows)), tgt])
        top.append(lq.argmax(-1))
        if base:
            lb = log_softmax(window_logits(base, x)[rows])
            nll_b.append(-lb[np.arange(len(rows)), tgt])
            top_b.append(lb.argmax(-1))
            kl.append((np.exp(lb) * (lb - lq)).sum(-1))
    seconds = time.perf_counter() - t0
    nll = np.concatenate(nll)
    r = {"peer": "llama.cpp", "llama_cpp_python": llama_cpp.__version__,
         "model": a.gguf, "tokens": int(len(ids)), "windows": len(wins), "context": T, "stride": stride, "chunks": chunks,
         "threads": a.threads}
    if base:
        r["base"] = a.base
        r.update(kld_stats(np.concatenate(kl), np.concatenate(nll_b), nll, np.concatenate(top_b), np.concatenate(top)))
    else:
        r.update(targets=int(len(nll)), loss=float(nll.mean()), perplexity=float(np.exp(nll.mean())))
    r["seconds"] = seconds
    print(json.dumps(r))


def last_argmax(llm, V):
    return int(np.argmax(np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(llm.ctx, -1), shape=(V,))))


def cmd_generate(a):
    prompt = [int(t) for t in a.prompt_ids.split(",")]
    llm = load(a.gguf, len(prompt) + a.new + 8, a.threads, False)
    V = llm.n_vocab()
    best, out = None, []
    for _ in range(a.rounds):  # the best round: load from other processes only ever slows a round down
        llm.reset()
        t0 = time.perf_counter()
        llm.eval(prompt)
        tok = last_argmax(llm, V)
        t1 = time.perf_counter()
        out = []
        for _ in range(a.new):
            out.append(tok)
            llm.eval([tok])
            tok = last_argmax(llm, V)
        t2 = time.perf_counter()
        if best is None or t2 - t1 < best[1]:
            best = (t1 - t0, t2 - t1)
    print(json.dumps({"peer": "llama.cpp", "llama_cpp_python": llama_cpp.__version__, "model": a.gguf,
                      "threads": a.threads, "prompt_tokens": len(prompt), "new_tokens": a.new, "prompt_seconds": best[0],
                      "gen_seconds": best[1], "tokens_per_s": a.new / best[1], "ids": out}))


def cmd_logits(a):
    from safetensors.numpy import save_file
    ids = [int(t) for t in a.ids.split(",")]
    llm = load(a.gguf, len(ids), a.threads, True)
    logits = np.array(window_logits(llm, np.array(ids)), dtype=np.float32)
    save_file({"input_ids": np.array([ids], dtype=np.int32), "logits": logits[None]}, a.out)
    print(json.dumps({"peer": "llama.cpp", "model": a.gguf, "tokens": len(ids), "out": a.out}))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    threads = int(os.environ.get("THREADS") or os.cpu_count() or 1)
    e = sub.add_parser("eval")
    e.add_argument("gguf")
    e.add_argument("tokens")
    e.add_argument("--base")
    e.add_argument("--context", type=int, default=512)
    e.add_argument("--stride", type=int, default=0)
    e.add_argument("--chunks", action="store_true")
    e.add_argument("--limit", type=int, default=0, help="the first N tokens only (lmforge eval --limit)")
    g = sub.add_parser("generate")
    g.add_argument("gguf")
    g.add_argument("--prompt-ids", required=True)
    g.add_argument("--new", type=int, default=128)
    g.add_argument("--rounds", type=int, default=1)
    lg = sub.add_parser("logits")
    lg.add_argument("gguf")
    lg.add_argument("--ids", required=True)
    lg.add_argument("--out", required=True)
    for s in (e, g, lg):
        s.add_argument("--threads", type=int, default=threads)
        s.add_argument("--kv", choices=("f32", "f16"), default="f32", help="llama.cpp's key/value cache type (default f32, as lmforge)")
    a = p.parse_args()
    global KV_TYPE
    KV_TYPE = llama_cpp.GGML_TYPE_F16 if a.kv == "f16" else llama_cpp.GGML_TYPE_F32
    {"eval": cmd_eval, "generate": cmd_generate, "logits": cmd_logits}[a.cmd](a)


if __name__ == "__main__":
    main()
