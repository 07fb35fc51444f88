#!/usr/bin/env python3
"""Writes the fuzz seeds that look like model or data files, so that none is committed: two tiny GGUF
models (gguf/: a llama with a SentencePiece vocabulary of 8 pieces and every weight type the reader
decodes, a gpt2 with the 256 byte tokens, one merge and smollm's pre-tokenizer) and two labelled-set
sources (labelled/: a Rotten Tomatoes CSV with quoting and CRLF, an Orange .tab with a CRLF line).
The weights are seeded pseudo-random values, not a trained model. Standard library only.
Usage: tests/fuzz/make_seeds.py OUT_DIR   (writes OUT_DIR/gguf/*.gguf and OUT_DIR/labelled/*)"""
import os, random, struct, sys

out = sys.argv[1]
rng = random.Random(20261128)

# GGUF value types and tensor types (ggml's numbering)
U32, I32, F32V, STR, ARR = 4, 5, 6, 8, 9
T_F32, T_F16, T_Q4_0, T_Q4_1, T_Q8_0, T_BF16 = 0, 1, 2, 3, 8, 30
BLOCK = {T_F32: (1, 4), T_F16: (1, 2), T_BF16: (1, 2), T_Q4_0: (32, 18), T_Q4_1: (32, 20), T_Q8_0: (32, 34)}


def s(x):
    b = x.encode()
    return struct.pack("<Q", len(b)) + b


def kv(key, typ, val):
    b = s(key) + struct.pack("<I", typ)
    if typ == STR:
        return b + s(val)
    if typ == ARR:
        et, items = val
        b += struct.pack("<IQ", et, len(items))
        for it in items:
            b += s(it) if et == STR else struct.pack({I32: "<i", F32V: "<f", U32: "<I"}[et], it)
        return b
    return b + struct.pack({U32: "<I", I32: "<i", F32V: "<f"}[typ], val)


def f16(x):
    return struct.pack("<e", x)


def tensor_bytes(typ, ne, value=None):
    n = 1
    for d in ne:
        n *= d
    if typ == T_F32:
        return b"".join(struct.pack("<f", value if value is not None else rng.uniform(-0.1, 0.1)) for _ in range(n))
    if typ == T_F16:
        return b"".join(f16(rng.uniform(-0.1, 0.1)) for _ in range(n))
    if typ == T_BF16:
        return b"".join(struct.pack("<f", rng.uniform(-0.1, 0.1))[2:] for _ in range(n))
    blocks = n // 32
    if typ == T_Q8_0:
        return b"".join(f16(0.002) + bytes(rng.randrange(256) for _ in range(32)) for _ in range(blocks))
    if typ == T_Q4_0:
        return b"".join(f16(0.01) + bytes(rng.randrange(256) for _ in range(16)) for _ in range(blocks))
    return b"".join(f16(0.01) + f16(-0.08) + bytes(rng.randrange(256) for _ in range(16)) for _ in range(blocks))


def gguf(path, kvs, tensors):
    """tensors: (name, type, ne innermost first, constant value or None); data aligned to 32"""
    head = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kvs)) + b"".join(kvs)
    data, infos = b"", b""
    for name, typ, ne, val in tensors:
        infos += s(name) + struct.pack("<I", len(ne)) + b"".join(struct.pack("<Q", d) for d in ne)
        infos += struct.pack("<IQ", typ, len(data))
        blob = tensor_bytes(typ, ne, val)
        data += blob + b"\0" * (-len(blob) % 32)
    head += infos
    head += b"\0" * (-len(head) % 32)
    with open(path, "wb") as f:
        f.write(head + data)


os.makedirs(os.path.join(out, "gguf"), exist_ok=True)
os.makedirs(os.path.join(out, "labelled"), exist_ok=True)

gguf(os.path.join(out, "gguf", "llama_spm.gguf"), [
    kv("general.architecture", STR, "llama"), kv("llama.block_count", U32, 1), kv("llama.embedding_length", U32, 32),
    kv("llama.feed_forward_length", U32, 64), kv("llama.attention.head_count", U32, 2),
    kv("llama.attention.head_count_kv", U32, 1), kv("llama.context_length", U32, 16),
    kv("llama.attention.layer_norm_rms_epsilon", F32V, 1e-5), kv("tokenizer.ggml.model", STR, "llama"),
    kv("tokenizer.ggml.tokens", ARR, (STR, ["<unk>", "<s>", "</s>", "\u2581", "\u2581a", "b", "<0x41>", "\u2581ab"])),
    kv("tokenizer.ggml.scores", ARR, (F32V, [0.0, 0.0, 0.0, -1.0, -2.0, -3.0, 0.0, -1.0])),
    kv("tokenizer.ggml.token_type", ARR, (I32, [2, 3, 3, 1, 1, 1, 6, 1])),
    kv("tokenizer.ggml.bos_token_id", U32, 1), kv("tokenizer.ggml.eos_token_id", U32, 2)], [
    ("token_embd.weight", T_Q8_0, [32, 8], None), ("output_norm.weight", T_F32, [32], 1.0),
    ("blk.0.attn_q.weight", T_Q4_0, [32, 32], None), ("blk.0.attn_k.weight", T_Q4_1, [32, 16], None),
    ("blk.0.attn_v.weight", T_F32, [32, 16], None), ("blk.0.attn_output.weight", T_F16, [32, 32], None),
    ("blk.0.ffn_gate.weight", T_BF16, [32, 64], None), ("blk.0.ffn_up.weight", T_F32, [32, 64], None),
    ("blk.0.ffn_down.weight", T_Q8_0, [64, 32], None), ("blk.0.attn_norm.weight", T_F32, [32], 1.0),
    ("blk.0.ffn_norm.weight", T_F32, [32], 1.0)])

# GPT-2's byte-to-unicode map: printable bytes stand for themselves, the rest from U+0100 on
printable = list(range(33, 127)) + list(range(161, 173)) + list(range(174, 256))
mapped, k = {}, 0
for b in range(256):
    if b in printable:
        mapped[b] = chr(b)
    else:
        mapped[b] = chr(256 + k)
        k += 1
tokens = [mapped[b] for b in range(256)] + ["\u0120w", "<|endoftext|>"]
gguf(os.path.join(out, "gguf", "gpt2_bpe.gguf"), [
    kv("general.architecture", STR, "gpt2"), kv("gpt2.block_count", U32, 1), kv("gpt2.embedding_length", U32, 32),
    kv("gpt2.feed_forward_length", U32, 128), kv("gpt2.attention.head_count", U32, 2),
    kv("gpt2.context_length", U32, 16), kv("gpt2.attention.layer_norm_epsilon", F32V, 1e-5),
    kv("tokenizer.ggml.model", STR, "gpt2"), kv("tokenizer.ggml.pre", STR, "smollm"),
    kv("tokenizer.ggml.tokens", ARR, (STR, tokens)), kv("tokenizer.ggml.token_type", ARR, (I32, [1] * 257 + [3])),
    kv("tokenizer.ggml.merges", ARR, (STR, ["\u0120 w"])), kv("tokenizer.ggml.eos_token_id", U32, 257)], [
    ("token_embd.weight", T_F16, [32, 258], None), ("position_embd.weight", T_F32, [32, 16], None),
    ("output_norm.weight", T_F32, [32], 1.0), ("output_norm.bias", T_F32, [32], 0.0),
    ("blk.0.attn_qkv.weight", T_Q4_0, [32, 96], None), ("blk.0.attn_qkv.bias", T_F32, [96], None),
    ("blk.0.attn_output.weight", T_Q4_0, [32, 32], None), ("blk.0.attn_output.bias", T_F32, [32], None),
    ("blk.0.ffn_up.weight", T_Q4_0, [32, 128], None), ("blk.0.ffn_up.bias", T_F32, [128], None),
    ("blk.0.ffn_down.weight", T_Q4_0, [128, 32], None), ("blk.0.ffn_down.bias", T_F32, [32], None),
    ("blk.0.attn_norm.weight", T_F32, [32], 1.0), ("blk.0.attn_norm.bias", T_F32, [32], 0.0),
    ("blk.0.ffn_norm.weight", T_F32, [32], 1.0), ("blk.0.ffn_norm.bias", T_F32, [32], 0.0)])

with open(os.path.join(out, "labelled", "rt.csv"), "wb") as f:
    f.write(b'category,text,movie_name,has_plot_and_reviews\r\nplot,"A plot,\nover lines",m,True\r\n'
            b'fresh,"Said ""great"", twice",m,False\nrotten,Dull.,m,False\n')
with open(os.path.join(out, "labelled", "r8.tab"), "wb") as f:
    f.write(b"Category\tText\nd\tstring\nclass\t\n\nearn\tprofit up\nacq\tbuys company\r\nearn\tloss\n")
