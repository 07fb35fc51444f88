"""Cross-check against Hugging Face `tokenizers` (a reference library, test-only):
1. a byte-level BPE trained by `lmforge tokenizer train` loads in `tokenizers` and both encode a
   set of texts (reference strings, a generated corpus, random unicode) to identical ids;
2. a Llama-style tokenizer.json (BPE + byte_fallback, Prepend/Replace normalizer) that `tokenizers`
   builds from the Llama 2 vocabulary (merges ordered as transformers' LlamaConverter orders them)
   loads in lmforge and encodes identically to `tokenizers` and to sentencepiece's reference ids;
   the same vocabulary with a Metaspace pre-tokenizer (split true and false) encodes like tokenizers.
Usage: tokenizer_hf.py LMFORGE SHARED_DIR. Prints 'skipped: ...' (exit 77) without `tokenizers`."""
import json
import os
import random
import struct
import subprocess
import sys
import tempfile

try:
    import tokenizers
    from tokenizers import Tokenizer, models, normalizers, decoders, pre_tokenizers
except ImportError:
    print("skipped: python package 'tokenizers' not installed")
    sys.exit(77)

lmforge, shared = sys.argv[1], sys.argv[2]
failures = checks = 0


def lm_encode(tok, text):
    # tokenizers always matches added special tokens in the text; lmforge only when allowed
    r = subprocess.run([lmforge, "tokenizer", "encode", "--allow-special", "--tokenizer", tok], input=text.encode("utf-8"),
                       capture_output=True, check=True)
    return json.loads(r.stdout)


def check(cond, msg):
    global failures, checks
    checks += 1
    if not cond:
        failures += 1
        print("FAIL:", msg)


rng = random.Random(7)
ref = json.load(open(os.path.join(shared, "fixtures/tokenizer_ref.json")))
words = "the lord said unto moses and it was so children of israel café naïve 1234 !! don't we'll".split()
texts = list(ref["texts"])
texts += [" ".join(rng.choice(words) for _ in range(rng.randint(1, 40))) for _ in range(30)]
texts += ["".join(chr(rng.choice([rng.randint(32, 126), rng.randint(0xA0, 0x2FF), rng.randint(0x4E00, 0x4E80),
                                  rng.randint(0x1F600, 0x1F64F), 10, 9, 32])) for _ in range(rng.randint(0, 80)))
          for _ in range(30)]

with tempfile.TemporaryDirectory() as d:
    corpus = os.path.join(d, "corpus.txt")
    with open(corpus, "w", encoding="utf-8") as f:
        for i in range(30000):
            f.write(rng.choice(words) + ("\n" if i % 11 == 0 else " "))
        f.write("\n".join(ref["texts"]))
    out = os.path.join(d, "tokenizer.json")
    subprocess.run([lmforge, "tokenizer", "train", "--vocab-size", "600", "--input", corpus, "--output", out,
                    "--quiet"], check=True)
    hf = Tokenizer.from_file(out)
    same = 0
    for t in texts:
        ours, theirs = lm_encode(out, t), hf.encode(t).ids
        check(ours == theirs, f"trained byte-level BPE: {t[:30]!r}: lmforge {ours[:8]}... vs tokenizers {theirs[:8]}...")
        same += ours == theirs
        check(hf.decode(ours, skip_special_tokens=False) == t, f"tokenizers cannot decode lmforge's ids back to {t[:30]!r}")
    print(f"trained tokenizer.json in tokenizers {tokenizers.__version__}: {same}/{len(texts)} texts identical")

    # Llama-style tokenizer.json built by tokenizers from the Llama 2 vocabulary
    raw = open(os.path.join(shared, "data/llama2/tokenizer.bin"), "rb").read()
    pos, pieces = 4, []
    while pos < len(raw):
        score, n = struct.unpack("<fi", raw[pos:pos + 8])
        pieces.append((raw[pos + 8:pos + 8 + n].decode("utf-8", "replace"), score))
        pos += 8 + n
    vocab, scores = {}, {}
    for i, (p, s) in enumerate(pieces):
        p = {0: "<unk>", 1: "<s>", 2: "</s>"}.get(i, p.replace(" ", "\u2581"))
        vocab.setdefault(p, i)
        scores[p] = s
    merges = []
    for piece, s in scores.items():  # transformers' SentencePieceExtractor
        local = [(piece[:k], piece[k:], s) for k in range(1, len(piece)) if piece[:k] in vocab and piece[k:] in vocab]
        merges += sorted(local, key=lambda x: (vocab[x[0]], vocab[x[1]]))
    merges = [(a, b) for a, b, _ in sorted(merges, key=lambda x: x[2], reverse=True)]
    sp = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token="<unk>", fuse_unk=True, byte_fallback=True))
    sp.add_special_tokens([tokenizers.AddedToken(t, special=True, normalized=False) for t in ("<unk>", "<s>", "</s>")])
    sp.normalizer = normalizers.Sequence([normalizers.Prepend("\u2581"), normalizers.Replace(" ", "\u2581")])
    sp.decoder = decoders.Sequence([decoders.Replace("\u2581", " "), decoders.ByteFallback(), decoders.Fuse(),
                                    decoders.Strip(" ", 1, 0)])
    # three ways Llama tokenizer.json files spell the same thing, and Metaspace's word splitting
    variants = [("Prepend+Replace normalizer", sp, True)]
    for split in (False, True):
        v = Tokenizer.from_str(sp.to_str())
        v.normalizer = None
        v.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="first", split=split)
        # tokenizers' Metaspace skips the prefix when the text starts with a space (sentencepiece
        # does not), so these files are compared with tokenizers only
        variants.append((f"Metaspace(split={split})", v, False))
    for label, tok, is_sentencepiece in variants:
        spj = os.path.join(d, "llama_tokenizer.json")
        tok.save(spj)
        same = 0
        for i, t in enumerate(texts):
            ours, theirs = lm_encode(spj, t), tok.encode(t, add_special_tokens=False).ids
            check(ours == theirs, f"llama {label}: {t[:30]!r}: lmforge {ours[:8]}... vs tokenizers {theirs[:8]}...")
            same += ours == theirs
            if is_sentencepiece and i < len(ref["texts"]):
                check(ours == ref["llama2_ids"][i], f"llama {label} vs sentencepiece: {t[:30]!r}")
        print(f"Llama-style tokenizer.json ({label}) built by tokenizers: {same}/{len(texts)} texts identical")

print(f"{checks - failures} passed, {failures} failed")
sys.exit(1 if failures else 0)
