"""The run report in a real browser: runs tests/run_tiny.json, writes the report, opens it in
headless Chromium (Debian's chromium), and checks that the charts rendered: the expected elements
in the DOM Chromium built (figures, drawn lines with points, confusion cells, the table's rows) and
a screenshot that is not blank and shows the charts' line colours. Skipped (77) without chromium.
Usage: report_chromium_test.py LMFORGE [SCREENSHOT_COPY.png]"""
import os, re, shutil, struct, subprocess, sys, tempfile, zlib

lf = os.path.abspath(sys.argv[1])
here = os.path.dirname(os.path.abspath(__file__))
chromium = shutil.which("chromium") or shutil.which("chromium-browser")
if not chromium:
    print("skipped: chromium is not installed (scripts/setup installs it)")
    sys.exit(77)


def read_png(path):
    """(width, height, rows of RGB tuples) of an 8-bit RGB/RGBA PNG, decoded with zlib"""
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, w = 8, b"", None
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            w, h, depth, ctype = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and ctype in (2, 6), f"PNG depth {depth} colour type {ctype}"
            bpp = 3 if ctype == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    raw, stride, rows, prev = zlib.decompress(idat), w * bpp, [], bytearray(w * bpp)
    for y in range(h):
        f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b, c = prev[i], prev[i - bpp] if i >= bpp else 0
            if f == 1: line[i] = (line[i] + a) & 255
            elif f == 2: line[i] = (line[i] + b) & 255
            elif f == 3: line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = line
    return w, h, bpp, rows


fails = []
with tempfile.TemporaryDirectory() as tmp:
    subprocess.run([sys.executable, os.path.join(here, "run_make_data.py"), tmp], check=True)
    shutil.copy(os.path.join(here, "run_tiny.json"), os.path.join(tmp, "tiny.json"))
    env = dict(os.environ, OMP_NUM_THREADS="1")
    subprocess.run([lf, "run", "tiny.json", "--out", "out"], cwd=tmp, env=env, check=True, stdout=subprocess.DEVNULL)
    html = os.path.join(tmp, "out", "report.html")
    out = subprocess.run([lf, "report", "out", "--out", html, "--title", "report test"], cwd=tmp, capture_output=True, text=True)
    if out.returncode:
        print("FAIL: lmforge report:", out.stderr)
        sys.exit(1)
    base = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--user-data-dir=" + os.path.join(tmp, "profile")]
    dom = subprocess.run(base + ["--dump-dom", "file://" + html], capture_output=True, text=True, timeout=120).stdout
    # what the browser parsed: the elements of each chart
    for fid in ("chart-loss", "chart-val", "chart-val-acc", "chart-accuracy", "chart-sparsity", "chart-size", "chart-study-study"):
        m = re.search(r'<figure id="%s">(.*?)</figure>' % fid, dom, re.S)
        if not m or "<svg" not in m.group(1):
            fails.append(f"DOM: no figure #{fid} with an svg")
    lines = re.findall(r'<polyline class="series"[^>]*points="([^"]*)"', dom)
    drawn = [p for p in lines if len(p.split()) >= 2]
    if len(drawn) < 8:  # loss: pretrain, student, full, lora; validation: the same four; the study's two trials
        fails.append(f"DOM: {len(drawn)} drawn lines (polylines with 2+ points), expected at least 8")
    cells = len(re.findall(r'<rect class="cell"', dom))
    if cells != 8:  # two 2x2 confusion matrices
        fails.append(f"DOM: {cells} confusion cells, expected 8")
    bars = len(re.findall(r'<rect class="bar"', dom))
    if bars != 4:  # accuracy and macro-F1 of two classifiers
        fails.append(f"DOM: {bars} bars, expected 4")
    points = len(re.findall(r'<circle class="point"', dom))
    if points < 5:  # perplexity vs sparsity (4 models) + size vs accuracy (2)
        fails.append(f"DOM: {points} scatter points, expected at least 5")
    table = re.search(r'<table id="summary">(.*?)</table>', dom, re.S)
    nrows = len(re.findall(r"<tr>", table.group(1))) - 1 if table else 0
    if nrows != 7:  # pretrain, student, pruned, q8, full, pretrain + lora, merged
        fails.append(f"DOM: {nrows} model rows in the summary table, expected 7")
    if "report test" not in dom:
        fails.append("DOM: the --title is missing")
    # what the browser drew
    png = os.path.join(tmp, "shot.png")
    subprocess.run(base + ["--window-size=1280,2600", "--screenshot=" + png, "file://" + html], capture_output=True, timeout=120)
    if not os.path.exists(png):
        fails.append("no screenshot written")
    else:
        w, h, bpp, rows = read_png(png)
        nonwhite, colours = 0, {"blue": 0, "red": 0, "green": 0}
        want = {"blue": (31, 119, 180), "red": (214, 39, 40), "green": (44, 160, 44)}
        for r in rows:
            for x in range(0, w * bpp, bpp):
                px = r[x:x + 3]
                if px[0] < 245 or px[1] < 245 or px[2] < 245:
                    nonwhite += 1
                for k, c in want.items():
                    if abs(px[0] - c[0]) < 12 and abs(px[1] - c[1]) < 12 and abs(px[2] - c[2]) < 12:
                        colours[k] += 1
        share = nonwhite / (w * h)
        print(f"screenshot {w}x{h}: {share:.1%} of pixels not white; series colour pixels {colours}")
        if share < 0.02:
            fails.append(f"screenshot nearly blank: {share:.2%} of pixels not white")
        for k, n in colours.items():
            if n < 50:
                fails.append(f"screenshot: {n} pixels of the {k} series colour (lines not drawn?)")
        if len(sys.argv) > 2:
            shutil.copy(png, sys.argv[2])
for f in fails:
    print("FAIL:", f)
if fails:
    sys.exit(1)
print(f"report_chromium: all checks passed ({len(drawn)} lines, {cells} confusion cells, {bars} bars, {points} points, {nrows} table rows)")
