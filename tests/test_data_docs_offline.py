"""The data-quality report of a rejected run opens complete on a machine without internet: its pages
load only files inside the site (genrec's copies of GX's CDN files), and headless Chromium with the
network cut renders the index's table (built by bootstrap-table's script) and the failed checks."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from genrec.data_docs import ASSETS, CDN, SITE_ASSETS, local_resources, remote_resources

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def rejected_site(tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("home")
    bad = home / "bad.csv"
    bad.write_text("user_id,item_id,timestamp\nu1,i1,2020-01-01\n,i2,2020-01-02\nu2,i3,not-a-date\n")
    done = subprocess.run([str(Path(sys.executable).parent / "genrec"), "validate", str(bad), "--format", "csv"],
                          env={**os.environ, "GENREC_HOME": str(home)}, capture_output=True, text=True, timeout=300)
    assert done.returncode == 3, done.stderr
    (site,) = (home / "data_docs").iterdir()
    return site


def test_pages_load_nothing_from_the_network(rejected_site):
    pages = list(rejected_site.rglob("*.html"))
    assert len(pages) >= 3 and any("validations" in p.parts for p in pages)
    for page in pages:
        assert remote_resources(page) == [], page
        loaded = local_resources(page)
        assert loaded and all(p.exists() for p in loaded), [str(p) for p in loaded if not p.exists()]
    shipped = {p.relative_to(ASSETS) for p in ASSETS.rglob("*") if p.is_file()}
    in_site = {p.relative_to(rejected_site / SITE_ASSETS) for p in (rejected_site / SITE_ASSETS).rglob("*")
               if p.is_file() and p.name != ".complete"}
    assert in_site == shipped and all((ASSETS / local).is_file() for local in CDN.values())


def _render(page: Path) -> str:
    """The DOM headless Chromium builds from `page` with every network request refused."""
    profile = tempfile.mkdtemp(prefix="genrec-chromium-")
    try:
        done = subprocess.run([
            CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            f"--user-data-dir={profile}", "--proxy-server=127.0.0.1:9", "--host-resolver-rules=MAP * ~NOTFOUND",
            "--virtual-time-budget=10000", "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120)
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (.ci/run installs Debian's chromium)")
def test_chromium_offline_renders_the_index_and_the_failed_validation(rejected_site, tmp_path):
    index = _render(rejected_site / "index.html")
    assert "fixed-table-container" in index  # bootstrap-table ran and built the results table
    assert "raw_csv" in index
    (page,) = (rejected_site / "validations").rglob("*.html")
    validation = _render(page)
    assert "Unsuccessful Expectations" in validation and "values must never be null" in validation
    assert "fixed-table-container" in validation

    # The same site with the CDN addresses put back renders no table offline: the check can fail.
    cdn_site = tmp_path / "cdn"
    shutil.copytree(rejected_site, cdn_site)
    text = (cdn_site / "index.html").read_text()
    for url, local in CDN.items():
        text = text.replace(f"{SITE_ASSETS.as_posix()}/{local}", url)
    assert "static/offline" not in text
    (cdn_site / "index.html").write_text(text)
    assert "fixed-table-container" not in _render(cdn_site / "index.html")
