#!/usr/bin/env bash
# bench/nb_baseline against scikit-learn (bench/peer_nb.py) on synthetic labelled JSONL: mixed case,
# punctuation, digits, non-ASCII letters, words unseen in training, 3 imbalanced classes. The two
# must give the same accuracy and macro-F1 (to 1e-6). Skipped where no python has scikit-learn
# (bench/run-nb installs it into bench/.venv).
set -u
nb=$1 root=$2
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
py=""
for p in "$root/bench/.venv/bin/python" python3; do
  "$p" -c "import sklearn" 2>/dev/null && { py=$p; break; }
done
[ -n "$py" ] || { echo "skipped: no python with scikit-learn (bench/run-nb installs it into bench/.venv)"; exit 77; }
"$py" - "$tmp" <<'PYEOF'
import json, random, sys
d = sys.argv[1]
rnd = random.Random(7)
words = ["alpha", "Beta", "GAMMA", "delta42", "épée", "naïve", "x", "y2k", "Zürich", "foo_bar", "it's", "3.14"]
def doc(c, extra):
    w = [rnd.choice(words[c * 3:c * 3 + 5] + words) for _ in range(rnd.randint(0, 12))]
    if extra: w.append("unseen%d" % rnd.randint(0, 99))
    return rnd.choice([" ", ", ", "!\n", "--"]).join(w)
for name, n, extra in (("train", 300, False), ("test", 200, True)):
    with open("%s/%s.jsonl" % (d, name), "w") as f:
        for i in range(n):
            c = rnd.choices([0, 1, 2], weights=[6, 3, 1])[0]
            f.write(json.dumps({"text": doc(c, extra), "label": ["pos", "neg", "mixed"][c]}) + "\n")
PYEOF
a=$("$nb" "$tmp/train.jsonl" "$tmp/test.jsonl" --json) || { echo "FAIL: nb_baseline"; exit 1; }
b=$("$py" "$root/bench/peer_nb.py" "$tmp/train.jsonl" "$tmp/test.jsonl" --json) || { echo "FAIL: peer_nb.py"; exit 1; }
echo "lmforge:      $a"
echo "scikit-learn: $b"
"$py" - "$a" "$b" <<'PYEOF'
import json, sys
a, b = json.loads(sys.argv[1]), json.loads(sys.argv[2])
bad = [k for k in ("accuracy", "macro_f1") if abs(a[k] - b[k]) > 1e-6] + [k for k in ("vocab", "train", "test") if a[k] != b[k]]
for k in bad: print("FAIL: %s differs: lmforge %s, scikit-learn %s" % (k, a[k], b[k]))
sys.exit(1 if bad else 0)
PYEOF
