"""Data Docs that open complete without internet.

Great Expectations' pages load their styles, scripts and fonts from CDNs; offline the index renders
empty. genrec ships those files (genrec/data_docs_assets/, fetched from the npm registry at the
versions the pages name by scripts/vendor_data_docs_assets.sh, with their licences) and, after each
build of a site, rewrites every page to load the site's own copies (`static/offline/`, linked or
copied from the package) and GX's logos from the site's `static/images/`.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

ASSETS = Path(__file__).resolve().parent / "data_docs_assets"
SITE_ASSETS = Path("static") / "offline"
"""Where a site keeps its copies, beside GX's own `static/images` and `static/styles`."""

CDN = {
    "https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/bootstrap.min.css": "bootstrap@4.3.1/dist/css/bootstrap.min.css",
    "https://stackpath.bootstrapcdn.com/bootstrap/4.3.1/js/bootstrap.min.js": "bootstrap@4.3.1/dist/js/bootstrap.min.js",
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.css": "bootstrap-table@1.19.1/dist/bootstrap-table.min.css",
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.js": "bootstrap-table@1.19.1/dist/bootstrap-table.min.js",
    "https://unpkg.com/bootstrap-table@1.19.1/dist/extensions/filter-control/bootstrap-table-filter-control.min.js":
        "bootstrap-table@1.19.1/dist/extensions/filter-control/bootstrap-table-filter-control.min.js",
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/bootstrap-table-filter-control.css":
        "bootstrap-table@1.19.0/dist/extensions/filter-control/bootstrap-table-filter-control.css",
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/bootstrap-table-filter-control.min.css":
        "bootstrap-table@1.19.0/dist/extensions/filter-control/bootstrap-table-filter-control.min.css",
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/css/bootstrap-datepicker.min.css":
        "bootstrap-datepicker@1.9.0/dist/css/bootstrap-datepicker.min.css",
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/js/bootstrap-datepicker.min.js":
        "bootstrap-datepicker@1.9.0/dist/js/bootstrap-datepicker.min.js",
    "https://cdn.jsdelivr.net/npm/@forevolve/bootstrap-dark@1.1.0/dist/css/bootstrap-prefers-dark.css":
        "@forevolve-bootstrap-dark@1.1.0/dist/css/bootstrap-prefers-dark.css",
    "https://cdnjs.cloudflare.com/ajax/libs/font-awesome/6.6.0/css/all.min.css":
        "@fortawesome-fontawesome-free@6.6.0/css/all.min.css",
    "https://code.jquery.com/jquery-3.7.1.min.js": "jquery@3.7.1/dist/jquery.min.js",
    "https://cdnjs.cloudflare.com/ajax/libs/popper.js/1.12.9/umd/popper.min.js": "popper.js@1.12.9/dist/umd/popper.min.js",
    # The pages ask for the newest 5.x / 6.x; these are the versions shipped.
    "https://cdn.jsdelivr.net/npm/vega@5": "vega@5.33.1/build/vega.min.js",
    "https://cdn.jsdelivr.net/npm/vega-lite@5": "vega-lite@5.23.0/build/vega-lite.min.js",
    "https://cdn.jsdelivr.net/npm/vega-embed@6": "vega-embed@6.29.0/build/vega-embed.min.js",
}
LOGOS = re.compile(r"https://great-expectations-web-assets\.s3\.us-east-2\.amazonaws\.com/"
                   r"(?:full_logo_dark|logo-long)\.png(?:\?d=[^\"')\s]*)?")
"""GX's logos, which its site also has under static/images/."""
RESOURCE = re.compile(r"""(?:<(?:script|img)\b[^>]*\bsrc|<link\b[^>]*\bhref)\s*=\s*["']([^"']+)["']|url\(\s*["']?([^"')]+)""",
                      re.IGNORECASE)
"""What a page loads by itself (scripts, styles, images, CSS urls), as opposed to links a reader follows."""


def localise(site: Path) -> None:
    """Make the Data Docs site at `site` load only files inside it; idempotent, run after every build."""
    site = Path(site)
    _install_assets(site / SITE_ASSETS)
    for page in site.rglob("*.html"):
        text = page.read_text(encoding="utf-8")
        new = _rewrite(text, page, site)
        if new != text:
            page.write_text(new, encoding="utf-8")


def remote_resources(page: Path) -> list[str]:
    """The URLs a page would load from the network (none, once localised)."""
    found = [a or b for a, b in RESOURCE.findall(page.read_text(encoding="utf-8"))]
    return sorted({u for u in found if re.match(r"(?:https?:)?//", u)})


def local_resources(page: Path) -> list[Path]:
    """The files inside the site a page loads (each must exist)."""
    found = [a or b for a, b in RESOURCE.findall(page.read_text(encoding="utf-8"))]
    return [(page.parent / u.split("?")[0]).resolve() for u in found
            if not re.match(r"(?:[a-z]+:)?//|data:|#", u, re.IGNORECASE)]


def _rewrite(text: str, page: Path, site: Path) -> str:
    to_assets = Path(os.path.relpath(site / SITE_ASSETS, page.parent)).as_posix()
    for url, local in CDN.items():
        if (ASSETS / local).is_file():  # an install without the file keeps the CDN's, which works online
            text = re.sub(re.escape(url) + r"(?=[\"'])", f"{to_assets}/{local}", text)
    to_static = Path(os.path.relpath(site / "static", page.parent)).as_posix()
    text = LOGOS.sub(f"{to_static}/images/logo-long.png", text)

    def site_static(match: re.Match) -> str:  # GX points deep pages' favicon one folder short
        return f'{match.group(1)}="{to_static}/{match.group(2)}"'

    return re.sub(r'(href|src)="(?:\.\./|\./)*static/((?:images|styles|fonts)/[^"]+)"', site_static, text)


def _install_assets(target: Path) -> None:
    """The shipped files under `target`: hard links where the file system allows (no extra space),
    else copies; a site then holds everything it needs, wherever it is copied to."""
    if (target / ".complete").exists():
        return
    for source in ASSETS.rglob("*"):
        if not source.is_file():
            continue
        dest = target / source.relative_to(ASSETS)
        dest.parent.mkdir(parents=True, exist_ok=True)
        if dest.exists():
            continue
        try:
            os.link(source, dest)
        except OSError:
            shutil.copy2(source, dest)
    (target / ".complete").write_text("")
