"""The naive Bayes baseline's peer (issue 9): scikit-learn's CountVectorizer + MultinomialNB on the
same labelled JSONL as bench/nb_baseline.c, with the same tokens (ASCII-lower-cased runs of
[a-z0-9]), Laplace smoothing (alpha=1) and class priors from the training frequencies.
Usage: peer_nb.py TRAIN.jsonl TEST.jsonl [--json]   (bench/.venv: pip install scikit-learn)"""
import json
import sys
import time

from sklearn.feature_extraction.text import CountVectorizer
from sklearn.metrics import accuracy_score, f1_score
from sklearn.naive_bayes import MultinomialNB


def load(path):
    rows = [json.loads(line) for line in open(path, encoding="utf-8") if line.strip()]
    return [r["text"] for r in rows], [r["label"] for r in rows]


def main():
    t0 = time.time()
    xtr, ytr = load(sys.argv[1])
    xte, yte = load(sys.argv[2])
    # lowercase=False + ASCII lower-casing here: exactly the C tool's tokens (str.lower() would
    # also fold non-ASCII letters, which the C tool leaves as separators anyway)
    asc = lambda s: "".join(c.lower() if c.isascii() else " " for c in s)
    vec = CountVectorizer(lowercase=False, preprocessor=asc, token_pattern=r"[a-z0-9]+")
    nb = MultinomialNB(alpha=1.0)
    nb.fit(vec.fit_transform(xtr), ytr)
    pred = nb.predict(vec.transform(xte))
    acc, macro = accuracy_score(yte, pred), f1_score(yte, pred, average="macro")
    n_vocab = len(vec.vocabulary_)
    secs = time.time() - t0
    if "--json" in sys.argv:
        print(json.dumps({"model": "scikit-learn MultinomialNB", "accuracy": round(acc, 6), "macro_f1": round(macro, 6),
                          "train": len(ytr), "test": len(yte), "vocab": n_vocab, "classes": len(nb.classes_),
                          "seconds": round(secs, 3)}))
    else:
        print("naive Bayes (scikit-learn): accuracy %.4f  macro-F1 %.4f  (train %d, test %d, vocabulary %d, %d classes, %.2f s)"
              % (acc, macro, len(ytr), len(yte), n_vocab, len(nb.classes_), secs))


if __name__ == "__main__":
    main()
