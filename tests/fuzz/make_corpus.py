#!/usr/bin/env python3
"""Makes the fuzz seed corpora (tests/fuzz/corpus/<target>/, a few KB each) and dictionaries
(tests/fuzz/dict/<target>.dict) from ../shared/fixtures and small files built here.
Usage: tests/fuzz/make_corpus.py BUILD_DIR [FIXTURES]   (a gcc build: lmforge, replay_trainer_state;
the outputs are committed)"""
import json, os, shutil, struct, subprocess, sys, tempfile

here = os.path.dirname(os.path.abspath(__file__))
build = os.path.abspath(sys.argv[1])
lmforge = os.path.join(build, "lmforge")
fixtures = sys.argv[2] if len(sys.argv) > 2 else os.path.join(here, "..", "..", "..", "shared", "fixtures")
tmp = tempfile.mkdtemp()
corpus = os.path.join(here, "corpus")

def put(target, name, data):
    d = os.path.join(corpus, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())

def run(*args, stdin=None):
    return subprocess.run([lmforge, *args], input=stdin, check=True, capture_output=True).stdout

text = ("In the beginning God created the heaven and the earth. And the earth was without form, and void; "
        "and darkness was upon the face of the deep. 1234 don't we'll it's caf\u00e9 \u65e5\u672c\n") * 20
with open(os.path.join(tmp, "corpus.txt"), "w") as f:
    f.write(text)

# ---- tokenizer.json: a small trained byte-level BPE, a Split variant, a SentencePiece-style one
tj = os.path.join(tmp, "tok.json")
run("tokenizer", "train", "--vocab-size", "300", "--input", os.path.join(tmp, "corpus.txt"), "--output", tj)
tok = json.load(open(tj))
put("tokenizer_json", "bytelevel.json", json.dumps(tok))
split = dict(tok)
split["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [
    {"type": "Split", "pattern": {"Regex": "\\p{L}*| ?\\p{N}{1,3}"}, "behavior": "Isolated", "invert": False},
    {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}]}
put("tokenizer_json", "split_empty_match.json", json.dumps(split))
apx = dict(tok)
apx["pre_tokenizer"] = {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True}
apx["model"] = dict(tok["model"], merges=[m.split(" ") for m in tok["model"]["merges"][:20]])
put("tokenizer_json", "prefix_space_array_merges.json", json.dumps(apx))
spv = {"<unk>": 0, "<s>": 1, "</s>": 2}
for b in range(256):
    spv["<0x%02X>" % b] = len(spv)
for p in ["\u2581", "a", "b", "c", "\u2581a", "ab", "\u2581ab", "bc", "\u2581abc"]:
    spv[p] = len(spv)
sp = {"version": "1.0", "added_tokens": [{"id": i, "content": c, "special": True} for i, c in enumerate(["<unk>", "<s>", "</s>"])],
      "normalizer": {"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": "\u2581"}, {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}]},
      "pre_tokenizer": None,
      "model": {"type": "BPE", "byte_fallback": True, "fuse_unk": True, "unk_token": "<unk>", "vocab": spv,
                "merges": ["\u2581 a", "a b", "\u2581a b", "b c", "\u2581ab c"]}}
put("tokenizer_json", "sentencepiece.json", json.dumps(sp))
sp2 = dict(sp, normalizer=None, pre_tokenizer={"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "first", "split": False})
put("tokenizer_json", "metaspace.json", json.dumps(sp2))

# ---- GPT-2 encoder.json + NUL + vocab.bpe from the trained vocabulary
enc = {k: v for k, v in tok["model"]["vocab"].items()}
bpe = "#version: 0.2\n" + "\n".join(tok["model"]["merges"]) + "\n"
put("gpt2_bpe", "small.bin", json.dumps(enc).encode() + b"\0" + bpe.encode())
put("gpt2_bpe", "crlf.bin", json.dumps(enc).encode() + b"\0" + bpe.replace("\n", "\r\n").encode())

# ---- llama2.c tokenizer.bin
def tokbin(pieces, maxlen):
    out = struct.pack("<i", maxlen)
    for i, p in enumerate(pieces):
        out += struct.pack("<fi", -float(i), len(p)) + p
    return out
pieces = [b"<unk>", b"\n<s>\n", b"\n</s>\n"] + [b"<0x%02X>" % b for b in range(256)] + \
         [b" ", b"a", b"b", b"c", b" a", b"ab", b" ab", b"bc", b" abc", b"\xc3\xa9", b"aa", b"aaaa"]
put("tokenizer_bin", "small.bin", tokbin(pieces, 8))
put("tokenizer_bin", "long_piece.bin", tokbin(pieces[:3] + [b"a", b"b", b"a" * 200, b"a" * 100], 256))

# ---- safetensors
def st(tensors, meta=None):
    hdr, data = {}, b""
    if meta:
        hdr["__metadata__"] = meta
    for name, dtype, shape, raw in tensors:
        hdr[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    h = json.dumps(hdr).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + data
put("safetensors", "floats.safetensors", st([("w", "F32", [2, 3], struct.pack("<6f", *range(6))),
                                             ("h", "F16", [2], b"\x00\x3c\x00\xc0"), ("b", "BF16", [1], b"\x80\x3f"),
                                             ("d", "F64", [1], struct.pack("<d", 2.5))], {"format": "pt"}))
put("safetensors", "ints.safetensors", st([("input_ids", "I32", [2, 2], struct.pack("<4i", 1, 2, 3, 4)),
                                           ("l", "I64", [1], struct.pack("<q", -100)), ("s", "I16", [1], b"\x01\x00"),
                                           ("c", "I8", [2], b"\x01\xff"), ("u", "U8", [1], b"\x07"), ("m", "BOOL", [1], b"\x01"),
                                           ("e", "F32", [0, 4], b"")]))
put("safetensors", "empty.safetensors", st([]))

# ---- config.json
for name in ("hf_gpt2_tiny", "hf_llama_tiny"):
    p = os.path.join(fixtures, name, "config.json")
    if os.path.exists(p):
        shutil.copy(p, os.path.join(corpus, "hf_config", name + ".json")) if os.path.isdir(os.path.join(corpus, "hf_config")) else put("hf_config", name + ".json", open(p, "rb").read())
put("hf_config", "llama_rope_parameters.json", json.dumps({"model_type": "llama", "vocab_size": 64, "hidden_size": 16,
    "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 4, "intermediate_size": 32,
    "max_position_embeddings": 32, "rms_norm_eps": 1e-6, "tie_word_embeddings": True,
    "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0}, "hidden_act": "silu", "bos_token_id": 1, "eos_token_id": 2}))
put("hf_config", "gpt2_small.json", json.dumps({"model_type": "gpt2", "vocab_size": 64, "n_embd": 16, "n_layer": 2, "n_head": 2,
    "n_positions": 32, "n_inner": None, "activation_function": "gelu_new", "layer_norm_epsilon": 1e-5}))

# ---- shards (text; JSONL with prompt/completion, labels and tasks)
jl = os.path.join(tmp, "tasks.jsonl")
with open(jl, "w") as f:
    for i in range(6):
        f.write(json.dumps({"text": "doc %d about %s" % (i, "cats" if i % 2 else "dogs"), "label": "ab"[i % 2], "task": "t%d" % (i % 3)}) + "\n")
        f.write(json.dumps({"prompt": "Q%d? " % i, "completion": "A%d." % i, "task": "qa"}) + "\n")
for name, inp in (("text", os.path.join(tmp, "corpus.txt")), ("tasks", jl)):
    out = os.path.join(tmp, "shards_" + name)
    run("prepare", "--tokenizer", tj, "--input", inp, "--output", out, "--val-fraction", "0.2", "--quiet")
    data = open(os.path.join(out, "train.bin"), "rb").read()
    put("shard", name + "_train.bin", data[:6000] if len(data) <= 6000 else data)
    put("shard", name + "_val.bin", open(os.path.join(out, "val.bin"), "rb").read())

# ---- JSONL records
put("jsonl", "records.jsonl", open(jl).read() + json.dumps({"text": "x", "label": 3}) + "\n" +
    json.dumps({"text": "long", "label": "L" * 300}) + "\n" + "{\"text\": \"caf\\u00e9 \\ud83d\\ude00\"}\n")
put("jsonl", "errors.jsonl", "{\"text\": null}\n[1]\n{\"prompt\": \"a\"}\n{\"text\": \"a\", \"label\": \"\"}\n{bad\n")

# ---- training configuration
cfg = json.loads(run("config", "show"))
put("train_config", "resolved.json", json.dumps(cfg, indent=1))
put("train_config", "small.json", json.dumps({"data": "d", "arch": "gpt2", "lr": 1e-4, "dropout": 0.1, "freeze_embeddings": True,
                                               "schedule": "linear", "init": None, "max_minutes": 0.5}))

# ---- llama2.c checkpoint: dim 8, hidden 16, 1 layer, 2 heads, 1 kv head, vocab 8, seq 4 (shared classifier)
dim, hidden, L, nh, nkv, V, seq = 8, 16, 1, 2, 1, 8, 4
hd = dim // nh
n = V * dim + L * dim + L * dim * dim + 2 * L * dim * nkv * hd + L * dim * dim + L * dim + 3 * L * dim * hidden + dim + seq * hd
put("llama2c", "tiny.bin", struct.pack("<7i", dim, hidden, L, nh, nkv, V, seq) + struct.pack("<%df" % n, *[((i * 37) % 17 - 8) / 64 for i in range(n)]))
put("llama2c", "tiny_untied.bin", struct.pack("<7i", dim, hidden, L, nh, nkv, -V, seq) + struct.pack("<%df" % (n + V * dim), *[0.01] * (n + V * dim)))

# ---- round trip: the first byte picks tokenizer and flags
for i, s in enumerate([b"the quick brown fox", b"  a  b\n\nc\t 123 ab12 \xc3\xa9t\xc3\xa9 \xe6\x97\xa5 x",
                       b"\xff\xfe\x80 bad \xc3 utf8\xe2\x82 <|endoftext|>", b"aaaa bbbb 12345 don't"]):
    for k in range(3):
        put("roundtrip", "s%d_%d" % (i, k), bytes([i * 3 + k]) + s)

# ---- trainer state: the JSON the fuzz target's own trainer saves
os.makedirs(os.path.join(corpus, "trainer_state"), exist_ok=True)
subprocess.run([os.path.join(build, "replay_trainer_state")], check=True, capture_output=True,
               env=dict(os.environ, LF_FUZZ_DUMP_STATE=os.path.join(corpus, "trainer_state", "saved.json")))

# ---- dictionaries
def dictfile(target, words):
    with open(os.path.join(here, "dict", target + ".dict"), "w") as f:
        f.write("# libFuzzer dictionary for fuzz_%s (made by make_corpus.py)\n" % target)
        for w in dict.fromkeys(words):  # a str of code points < 256 is bytes; any other is UTF-8
            b = w.encode("latin-1") if all(ord(c) < 256 for c in w) else w.encode()
            f.write('"%s"\n' % "".join(chr(c) if 32 <= c < 127 and c not in b'"\\' else "\\x%02x" % c for c in b))
jsonw = ["{", "}", "[", "]", ":", ",", "\"", "true", "false", "null", "-1", "0", "1e309", "2147483648", "9223372036854775807", "\\u0000", "\\ud800", "1.5"]
dictfile("tokenizer_json", jsonw + ['"%s"' % k for k in ["model", "type", "BPE", "WordPiece", "vocab", "merges", "pre_tokenizer", "pretokenizers", "Sequence",
    "ByteLevel", "Split", "pattern", "Regex", "String", "behavior", "Isolated", "Removed", "invert", "use_regex", "add_prefix_space",
    "Metaspace", "prepend_scheme", "first", "never", "always", "split", "byte_fallback", "normalizer", "normalizers", "NFC", "Prepend",
    "Replace", "prepend", "content", "added_tokens", "id", "special", "<|endoftext|>", "<s>", "</s>", "<unk>", "<0x41>", "\u2581", "\u0120", "\u010a"]]
    + ["\\p{L}", "\\p{N}", "*", "+", "?", "|", "(?=", "(?!", "(?<=", "\\s", "\\S", "\\b", "{1,3}", "\\K", "(?i:", "^", "$"])
dictfile("gpt2_bpe", jsonw + ["#version: 0.2\n", "\x00", "\u0120", "\u0120t", "\r\n", " ", "<|endoftext|>"])
dictfile("hf_config", jsonw + ['"%s"' % k for k in ["model_type", "gpt2", "llama", "mistral", "vocab_size", "n_embd", "n_layer", "n_head", "n_positions",
    "n_inner", "layer_norm_epsilon", "tie_word_embeddings", "embd_pdrop", "attn_pdrop", "resid_pdrop", "initializer_range",
    "scale_attn_weights", "scale_attn_by_inverse_layer_idx", "reorder_and_upcast_attn", "bos_token_id", "eos_token_id",
    "activation_function", "gelu_new", "hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads", "head_dim",
    "intermediate_size", "max_position_embeddings", "rms_norm_eps", "attention_dropout", "attention_bias", "mlp_bias",
    "rope_parameters", "rope_scaling", "rope_theta", "rope_type", "default", "hidden_act", "silu"]])
dictfile("safetensors", jsonw + ['"%s"' % k for k in ["__metadata__", "dtype", "shape", "data_offsets", "F32", "F16", "BF16", "F64", "I32",
    "I64", "I16", "I8", "U8", "BOOL", "F8_E4M3"]] + ["\x08\x00\x00\x00\x00\x00\x00\x00"])
dictfile("train_config", jsonw + ['"%s"' % k for k in cfg] + ["\"llama\"", "\"gpt2\"", "\"cosine\"", "\"linear\"", "\"constant\""])
dictfile("trainer_state", jsonw + ['"%s"' % k for k in ["format", "lmforge-trainer-state", "version", "step", "optimizer_t", "tokens_seen", "source_state", "optimizer_steps", "note",
    "model.embed_tokens.weight", "model.layers.1.self_attn.q_proj.weight", "lm_head.weight", "head.extra", "model.norm.weight"]])
dictfile("jsonl", jsonw + ['"%s"' % k for k in ["text", "prompt", "completion", "label", "task"]] + ["\n"])
dictfile("roundtrip", [" ", "  ", "\n", "\t", "'s", "'ll", "\xe2\x80\x99", "\xc3\xa9", "\xe6\x97\xa5", "\xf0\x9f\x98\x80", "\xff", "\x80", "\xc3",
                       "<|endoftext|>", "123", "a", "x", "ab"])
shutil.rmtree(tmp)
print("corpora in %s, dictionaries in %s" % (corpus, os.path.join(here, "dict")))
