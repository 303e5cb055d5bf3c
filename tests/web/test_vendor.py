"""The vendored front-end files are the pinned ones (their sha256 as recorded) and ship with the package."""

from __future__ import annotations

import hashlib
import re
from importlib.resources import files

WEB = files("driftloop.web")
ASSETS = files("driftloop.report") / "assets"


def test_vendored_files_match_their_recorded_sha256() -> None:
    for vendor, count in ((WEB / "static" / "vendor", 2), (ASSETS / "vendor", 3)):
        recorded = re.findall(r"^([0-9a-f]{64})  (\S+)$", (vendor / "VENDOR.md").read_text(), re.M)
        assert len(recorded) == count
        for digest, name in recorded:
            assert hashlib.sha256((vendor / name).read_bytes()).hexdigest() == digest, name


def test_every_file_a_page_loads_is_package_data() -> None:
    templates = WEB / "templates"
    pages = [p for p in templates.iterdir() if p.name.endswith(".html")]
    assert {"base.html", "runs.html", "chain.html", "compare.html", "sweep.html"} <= {p.name for p in pages}
    for page in pages:
        for src in re.findall(r'(?:src|href)="/static/([^"]+)"', page.read_text()):
            assert (WEB / "static" / src).is_file(), (page.name, src)
        for src in re.findall(r'(?:src|href)="/assets/([^"]+)"', page.read_text()):
            assert (ASSETS / src).is_file(), (page.name, src)
        assert "http://" not in page.read_text() and "https://" not in page.read_text()  # no CDN
