"""Peers for bench/run-tokenizer: Hugging Face tokenizers and tiktoken (built offline from GPT-2's
encoder.json ranks) encode the same text on one thread; tokenizers also trains a byte-level BPE.
Usage: peer_tokenizer.py GPT2_DIR TEXT [TRAIN_VOCAB]"""
import json
import os
import sys
import time

os.environ["RAYON_NUM_THREADS"] = "1"  # tokenizers' own parallelism off: per-thread speed
os.environ["TOKENIZERS_PARALLELISM"] = "false"
import tiktoken
import tokenizers
from tokenizers import Tokenizer, models, pre_tokenizers, decoders, trainers

gpt2_dir, path = sys.argv[1], sys.argv[2]
text = open(path, encoding="utf-8").read()
mb = len(text.encode("utf-8")) / 1e6


def best(fn, reps=3):
    t = []
    for _ in range(reps):
        t0 = time.perf_counter()
        out = fn()
        t.append(time.perf_counter() - t0)
    return min(t), out


hf = Tokenizer(models.BPE.from_file(os.path.join(gpt2_dir, "encoder.json"), os.path.join(gpt2_dir, "vocab.bpe")))
hf.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
dt1, ids = best(lambda: hf.encode(text).ids)
print(f"tokenizers {tokenizers.__version__} encode (one string): {len(ids)} tokens in {dt1:.2f} s ({mb / dt1:.1f} MB/s, 1 thread)")
lines = text.splitlines(keepends=True)  # its usual use: many short texts; same ids for this text
dt2, enc = best(lambda: hf.encode_batch(lines))
n2 = sum(len(e.ids) for e in enc)
print(f"tokenizers encode_batch (lines): {n2} tokens in {dt2:.2f} s ({mb / dt2:.1f} MB/s, RAYON_NUM_THREADS=1)")
dt = min(dt1, dt2)
print(f"result: hf_mbs={mb / dt:.2f} hf_tokens={len(ids)}")

byte_decoder = {}
n = 0
for b in range(256):  # GPT-2's bytes_to_unicode, inverted
    ok = 33 <= b <= 126 or 161 <= b <= 172 or 174 <= b <= 255
    byte_decoder[chr(b if ok else 256 + n)] = b
    n += 0 if ok else 1
enc = json.load(open(os.path.join(gpt2_dir, "encoder.json")))
ranks = {bytes(byte_decoder[c] for c in k): v for k, v in enc.items() if k != "<|endoftext|>"}
tk = tiktoken.Encoding("gpt2-offline", pat_str=r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""",
                       mergeable_ranks=ranks, special_tokens={"<|endoftext|>": 50256})
dt, ids2 = best(lambda: tk.encode_ordinary(text))
print(f"tiktoken {tiktoken.__version__} encode: {len(ids2)} tokens in {dt:.2f} s ({mb / dt:.1f} MB/s, 1 thread)")
print(f"result: tiktoken_mbs={mb / dt:.2f} tiktoken_tokens={len(ids2)}")

if len(sys.argv) > 3:
    tr = Tokenizer(models.BPE())
    tr.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(vocab_size=int(sys.argv[3]), min_frequency=2, special_tokens=["<|endoftext|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    t0 = time.perf_counter()
    tr.train([path], trainer)
    dt = time.perf_counter() - t0
    print(f"tokenizers train: vocabulary {tr.get_vocab_size()} in {dt:.1f} s (RAYON_NUM_THREADS=1)")
    print(f"result: hf_train_s={dt:.2f}")
