"""Writes the fake wheel lmforge-selftest==0.0.0 that `lmforge fetch selftest` is pinned to (used by
tests/fetch_test.sh; no network). Stored (not deflated) with fixed dates so its bytes, and so its
sha256, are the same on every run. With --tamper the member's text differs (a wrong download)."""
import io
import sys
import zipfile

out = sys.argv[1]
member = b"lmforge fetch self-test member\n" if "--tamper" not in sys.argv else b"lmforge fetch self-test membeR\n"
buf = io.BytesIO()
with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
    for name, data in [("lmforge_selftest/__init__.py", b""), ("lmforge_selftest/data.txt", member),
                       ("lmforge_selftest-0.0.0.dist-info/METADATA",
                        b"Metadata-Version: 2.1\nName: lmforge-selftest\nVersion: 0.0.0\n")]:
        zi = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
        zi.external_attr = 0o644 << 16
        z.writestr(zi, data)
with open(out, "wb") as f:
    f.write(buf.getvalue())
