"""Data for the lmforge run tests: a small seeded corpus (corpus.txt, documents separated by blank
lines) and a labelled set (labelled.jsonl) whose label words a tiny model can pick up. Usage:
run_make_data.py DIR"""
import json, os, random, sys

d = sys.argv[1]
rng = random.Random(1)
words = "the lord said unto moses and aaron go forth into the land which i give you and the people shall eat bread".split()
with open(os.path.join(d, "corpus.txt"), "w") as f:
    for _ in range(400):
        f.write(" ".join(rng.choice(words) for _ in range(30)) + "\n\n")
good, bad = "good fine great happy nice bright".split(), "bad awful sad dark poor grim".split()
with open(os.path.join(d, "labelled.jsonl"), "w") as f:
    for i in range(240):
        ws = [rng.choice(good if i % 2 else bad) for _ in range(4)] + [rng.choice(words) for _ in range(4)]
        rng.shuffle(ws)
        f.write(json.dumps({"text": " ".join(ws), "label": "pos" if i % 2 else "neg"}) + "\n")
