"""Issue 13's measurements (driven by bench/run-augment): the fortunes split, the speed of each
augmentation against nlpaug on the same sentences, and the effect of augmentation on low-data
fortunes classification. Each phase appends JSON lines to OUT/results.jsonl.

  split  OUT LMFORGE           fortunes -> OUT/{test,val,pool}.jsonl (100 / 50 per label held out)
  speed  OUT LMFORGE N NBT     each op: lmforge (1 and 2 threads) vs nlpaug, sentences/s
  effect OUT LMFORGE NB SIZES SEEDS   naive Bayes on k examples per label, with and without augmentation
  neural OUT LMFORGE KJV SIZES SEEDS CONDS STEPS [SPLIT]   the KJV model fine-tuned as a classifier (label
         scoring on 50 per label of SPLIT: test, or val to pick the best mix; cond "best" is that mix)
"""
import json
import os
import random
import re
import subprocess
import sys
import time

COPIES = 8
# each operation alone, at EDA's / nlpaug's usual rates
SINGLE = {"syn": "syn=0.1", "ins": "ins=0.1", "swap": "swap=0.1", "del": "del=0.1", "char": "char=0.05",
          "span": "span=0.15", "bt": "bt"}
MIXES = {"mix-eda": "syn=0.1,ins=0.1,swap=0.1,del=0.1",
         "mix-eda-bt": "syn=0.1,ins=0.1,swap=0.1,del=0.1,bt",
         "mix-eda-bt-char": "syn=0.1,ins=0.1,swap=0.1,del=0.1,bt,char=0.05"}


def load(p):
    return [json.loads(l) for l in open(p, encoding="utf-8") if l.strip()]


def dump(p, rows):
    with open(p, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")


def emit(out, rec):
    with open(os.path.join(out, "results.jsonl"), "a") as f:
        f.write(json.dumps(rec) + "\n")
    print(json.dumps(rec), flush=True)


def split(out, lf):
    txt = os.path.join(out, "fortunes-text")
    if not os.path.exists(os.path.join(txt, "fortunes.jsonl")):
        subprocess.run([lf, "prepare", "--builtin", "fortunes", "--text-only", "--quiet", "--output", txt],
                       check=True, stdout=subprocess.DEVNULL)
    rows = load(os.path.join(txt, "fortunes.jsonl"))
    random.Random(0).shuffle(rows)
    test, val, pool, seen = [], [], [], {}
    for r in rows:
        k = seen.get(r["label"], 0)
        seen[r["label"]] = k + 1
        (test if k < 100 else val if k < 150 else pool).append(r)
    dump(os.path.join(out, "test.jsonl"), test)
    dump(os.path.join(out, "val.jsonl"), val)
    dump(os.path.join(out, "pool.jsonl"), pool)
    print(f"split: test {len(test)}, val {len(val)}, pool {len(pool)}, labels {sorted(seen)}")


def timed(cmd, reps=3):
    """best wall time of reps runs, and the best records/s the command itself reports (its loop
    alone: no process start, no WordNet load)"""
    best, loop = None, 0.0
    for _ in range(reps):
        t = time.perf_counter()
        r = subprocess.run(cmd, check=True, capture_output=True, text=True)
        d = time.perf_counter() - t
        best = d if best is None or d < best else best
        m = re.search(r"([0-9.]+) records/s", r.stdout)
        if m:
            loop = max(loop, float(m.group(1)))
    return best, loop


def speed(out, lf, n, nbt):
    sents = [r["text"].replace("\n", " ").replace("\t", " ")
             for r in load(os.path.join(out, "fortunes-text", "fortunes.jsonl"))]
    sents = sents[:n] if n > 0 else sents
    sp = os.path.join(out, "speed-sentences.txt")
    with open(sp, "w", encoding="utf-8") as f:
        f.write("\n".join(sents) + "\n")
    tmp = os.path.join(out, "speed-out.jsonl")
    import nlpaug
    import nlpaug.augmenter.char as nac
    import nlpaug.augmenter.word as naw
    from nlpaug.model.word_dict import WordNet as NlpaugWordNet
    import nltk
    try:
        nltk.pos_tag(["test"])
        tagger = "NLTK perceptron"
    except LookupError:
        # NLTK's tagger data is not installed (and not fetched here): every token untagged, so
        # nlpaug looks synonyms up in all parts of speech as EDA does; the tagger's own time would
        # only add to nlpaug's
        NlpaugWordNet.pos_tag = classmethod(lambda cls, tokens: [(t, "") for t in tokens])
        tagger = "none (tagger data missing)"
    peers = {  # nlpaug's augmenter for the same operation (its defaults where it has no rate of ours)
        "syn": lambda: naw.SynonymAug(aug_src="wordnet", aug_p=0.1),
        "swap": lambda: naw.RandomWordAug(action="swap", aug_p=0.1),
        "del": lambda: naw.RandomWordAug(action="delete", aug_p=0.1),
        "kbd": lambda: nac.KeyboardAug(),
        "cins": lambda: nac.RandomCharAug(action="insert"),
        "cdel": lambda: nac.RandomCharAug(action="delete"),
        "cswap": lambda: nac.RandomCharAug(action="swap"),
    }
    rates = {"syn": 0.1, "ins": 0.1, "swap": 0.1, "del": 0.1, "kbd": 0.05, "cins": 0.05, "cdel": 0.05,
             "cswap": 0.05, "char": 0.05, "mask": 0.15, "span": 0.15, "shuffle": 3}
    for op, rate in rates.items():
        rec = dict(phase="speed", op=op, sentences=len(sents))
        for th in (1, 2):
            t, loop = timed([lf, "augment", sp, "--out", tmp, "--ops", f"{op}={rate}", "--copies", "1", "--seed", "1",
                             "--threads", str(th)])
            rec[f"lmforge_t{th}_per_s"] = round(len(sents) / t, 1)
            rec[f"lmforge_t{th}_loop_per_s"] = round(loop, 1)
        if op in peers:
            random.seed(1)
            a = peers[op]()
            a.augment(sents[:5])  # loads WordNet (NLTK) outside the timing
            t = time.perf_counter()
            res = a.augment(sents)
            t = time.perf_counter() - t
            assert len(res) == len(sents)
            rec["nlpaug_per_s"] = round(len(sents) / t, 1)
            rec["speedup_t1"] = round(rec["lmforge_t1_per_s"] / rec["nlpaug_per_s"], 1)
            rec["nlpaug"] = nlpaug.__version__
            if op == "syn":
                rec["nlpaug_pos_tagger"] = tagger
        emit(out, rec)
    # back-translation: one Apertium pair for the batch vs one apertium call per sentence
    bsp = os.path.join(out, "speed-bt.txt")
    with open(bsp, "w", encoding="utf-8") as f:
        f.write("\n".join(sents[:nbt]) + "\n")
    t, _ = timed([lf, "augment", bsp, "--out", tmp, "--ops", "bt", "--copies", "1"], reps=1)
    per = sents[:30]
    t0 = time.perf_counter()
    for s in per:
        subprocess.run("apertium -u eng-spa | apertium -u spa-eng", shell=True, input=s.encode(), check=True,
                       stdout=subprocess.DEVNULL)
    t1 = time.perf_counter() - t0
    emit(out, dict(phase="speed", op="bt", sentences=nbt, lmforge_batched_per_s=round(nbt / t, 2),
                   per_sentence_sentences=len(per), per_sentence_per_s=round(len(per) / t1, 2),
                   speedup=round((nbt / t) / (len(per) / t1), 1)))


def sample(pool, k, seed):
    by = {}
    for r in pool:
        by.setdefault(r["label"], []).append(r)
    rng = random.Random(seed)
    rows = []
    for lab in sorted(by):
        rows += rng.sample(by[lab], k)
    return rows


def augment(lf, src, dst, ops, seed):
    if ops is None:
        subprocess.run(["cp", src, dst], check=True)
        return
    subprocess.run([lf, "augment", src, "--out", dst, "--ops", ops, "--copies", str(COPIES), "--seed", str(seed),
                    "--threads", "2", "--quiet"], check=True, stdout=subprocess.DEVNULL)


def nb(nbbin, train, test):
    r = subprocess.run([nbbin, train, test, "--json"], check=True, capture_output=True, text=True)
    j = json.loads(r.stdout)
    return j["accuracy"], j["macro_f1"], j["train"]


def effect(out, lf, nbbin, sizes, seeds):
    pool = load(os.path.join(out, "pool.jsonl"))
    test, val = os.path.join(out, "test.jsonl"), os.path.join(out, "val.jsonl")
    work = os.path.join(out, "effect")
    os.makedirs(work, exist_ok=True)
    conds = {"none": None, **SINGLE, **MIXES}
    for k in sizes:
        for seed in seeds:
            tr = os.path.join(work, f"train-{k}-{seed}.jsonl")
            dump(tr, sample(pool, k, seed))
            for c, ops in conds.items():
                a = os.path.join(work, f"aug-{k}-{seed}-{c}.jsonl")
                augment(lf, tr, a, ops, seed)
                acc, f1, n = nb(nbbin, a, test)
                vacc, vf1, _ = nb(nbbin, a, val)
                emit(out, dict(phase="effect", model="naive Bayes", k=k, seed=seed, cond=c, ops=ops or "",
                               train=n, accuracy=acc, macro_f1=f1, val_accuracy=vacc, val_macro_f1=vf1))
    acc, f1, n = nb(nbbin, os.path.join(out, "pool.jsonl"), test)
    emit(out, dict(phase="effect", model="naive Bayes", k="all", seed=0, cond="none", ops="", train=n,
                   accuracy=acc, macro_f1=f1))


def label_split(out, name, per_label):
    """the first per_label examples of each label of OUT/NAME.jsonl (fixed: the split is seeded once)"""
    by = {}
    for r in load(os.path.join(out, f"{name}.jsonl")):
        by.setdefault(r["label"], []).append(r)
    labels = sorted(by)
    p = os.path.join(out, f"{name}-{per_label * len(labels)}.jsonl")
    dump(p, [r for lab in labels for r in by[lab][:per_label]])
    return p, labels


def best_mix(out):
    """the mix with the best mean validation macro-F1 in the neural phase's selection runs"""
    vals = {}
    for r in load(os.path.join(out, "results.jsonl")):
        if r.get("phase") == "neural" and r.get("split") == "val" and r["cond"] in MIXES:
            vals.setdefault(r["cond"], []).append(r["macro_f1"])
    if not vals:
        sys.exit("augment_bench.py: neural cond 'best' needs the selection runs first (NEURAL_SPLIT=val, the mixes)")
    return max(vals, key=lambda c: sum(vals[c]) / len(vals[c]))


def neural(out, lf, kjv, sizes, seeds, conds, steps, split):
    """The KJV model fine-tuned on k examples per label (+ augmented copies) for a fixed number of
    steps of 8 examples (the same compute with and without augmentation), scored by label scoring
    on 50 examples per label of the test split (split=test) or of the validation split (split=val:
    picks the best mix). Train and score are timed apart, and the share of the most predicted label
    is kept: a model that predicts one class for everything measures nothing."""
    ev_path, labels = label_split(out, split, 50)
    # the run's own validation (its end-of-training loss line): 5 per label of the validation
    # split, not carved from the training records (that would take 5 % of k and, with
    # augmentation, score copies of training examples)
    work = os.path.join(out, "neural")
    os.makedirs(work, exist_ok=True)
    vdir = os.path.join(work, "rundev")
    if not os.path.exists(os.path.join(vdir, "train.bin")):
        vp, _ = label_split(out, "val", 5)
        subprocess.run([lf, "prepare", "--tokenizer", os.path.join(kjv, "tokenizer.json"), "--input", vp,
                        "--output", vdir, "--val-fraction", "0", "--quiet"], check=True, stdout=subprocess.DEVNULL)
    pool = load(os.path.join(out, "pool.jsonl"))
    allc = {"none": None, **SINGLE, **MIXES}
    conds = [best_mix(out) if c == "best" else c for c in conds]
    for k in sizes:
        for seed in seeds:
            tr = os.path.join(work, f"train-{k}-{seed}.jsonl")
            dump(tr, sample(pool, k, seed) if k != "all" else pool)
            for c in conds:
                run = os.path.join(work, f"run-{k}-{seed}-{c}-{steps}")
                ev = os.path.join(run, f"eval-{split}.json")
                if os.path.exists(ev):
                    continue
                t = [time.perf_counter()]
                if not os.path.exists(os.path.join(run, "run", "final", "model.safetensors")):
                    subprocess.run(["rm", "-rf", run], check=True)
                    os.makedirs(run)
                    a = os.path.join(run, "train.jsonl")
                    augment(lf, tr, a, allc[c], seed)
                    t.append(time.perf_counter())
                    subprocess.run([lf, "prepare", "--tokenizer", os.path.join(kjv, "tokenizer.json"), "--input", a,
                                    "--output", os.path.join(run, "data"), "--val-fraction", "0", "--quiet"],
                                   check=True, stdout=subprocess.DEVNULL)
                    subprocess.run(["cp", os.path.join(vdir, "train.bin"), os.path.join(run, "data", "val.bin")], check=True)
                    t.append(time.perf_counter())
                    subprocess.run([lf, "train", "--task=classify", f"--init={kjv}", f"--data={run}/data", "--head=lm",
                                    "--context=64", "--batch_size=8", f"--max_steps={steps}", "--lr=1e-3", "--min_lr=1e-4",
                                    "--warmup_steps=5", "--eval_every=0", "--eval_examples=30", "--checkpoint_every=0",
                                    f"--seed={seed}", "--dropout=0.1", f"--run_dir={run}/run", "--quiet"],
                                   check=True, stdout=subprocess.DEVNULL)
                    t.append(time.perf_counter())
                else:  # trained for the other split's scoring: score it only
                    t += [None, None, t[0]]
                subprocess.run([lf, "eval", "--task", "classify", f"{run}/run/final", ev_path, "--labels", ",".join(labels),
                                "--max-tokens", "64", "--quiet", "--json", ev], check=True, stdout=subprocess.DEVNULL)
                t.append(time.perf_counter())
                j = json.load(open(ev))
                pred = [sum(col) for col in zip(*j["confusion"])]  # rows gold, columns predicted
                rec = dict(phase="neural", model="KJV Llama (4x256) fine-tuned, label scoring", k=k, seed=seed, cond=c,
                           ops=allc[c] or "", split=split, examples=j["examples"], steps=steps,
                           train=sum(1 for _ in open(os.path.join(run, "train.jsonl"))),
                           accuracy=j["accuracy"], macro_f1=j["macro_f1"], pred_max_share=round(max(pred) / sum(pred), 3),
                           eval_s=round(t[4] - t[3], 2))
                if t[1] is not None:
                    rec.update(augment_s=round(t[1] - t[0], 2), prepare_s=round(t[2] - t[1], 2), train_s=round(t[3] - t[2], 2))
                emit(out, rec)


if __name__ == "__main__":
    cmd, out, lf = sys.argv[1], sys.argv[2], sys.argv[3]
    if cmd == "split":
        split(out, lf)
    elif cmd == "speed":
        speed(out, lf, int(sys.argv[4]), int(sys.argv[5]))
    elif cmd == "effect":
        effect(out, lf, sys.argv[4], [int(x) for x in sys.argv[5].split()], [int(x) for x in sys.argv[6].split()])
    elif cmd == "neural":
        sizes = [x if x == "all" else int(x) for x in sys.argv[5].split()]
        neural(out, lf, sys.argv[4], sizes, [int(x) for x in sys.argv[6].split()], sys.argv[7].split(), int(sys.argv[8]),
               sys.argv[9] if len(sys.argv) > 9 else "test")
    else:
        sys.exit(f"augment_bench.py: unknown phase {cmd}")
