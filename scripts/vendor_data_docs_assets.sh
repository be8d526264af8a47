#!/usr/bin/env bash
# Fetch the styles, scripts and fonts that Great Expectations' Data Docs load from CDNs, at the
# versions its pages name, from the npm registry, into genrec/data_docs_assets/ (committed, with each
# package's licence). genrec/data_docs.py rewrites the pages to load these copies, so that a report
# opens complete on a machine without internet. Rerun after a Great Expectations upgrade changes
# the URLs its pages use (tests/test_data_docs_offline.py fails if a page names one not covered).
set -euo pipefail
cd "$(dirname "$0")/.."
out=genrec/data_docs_assets
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
rm -rf "$out"; mkdir -p "$out"
take() {  # package@version, then the files to keep (paths inside the package)
  local spec=$1; shift
  local name=${spec%@*}; local dir="$out/${name//\//-}@${spec##*@}"
  (cd "$tmp" && rm -rf package && npm pack --silent "$spec" >/dev/null && tar -xzf ./*.tgz && rm ./*.tgz)
  mkdir -p "$dir"
  for f in "$@"; do
    mkdir -p "$dir/$(dirname "$f")"; cp -r "$tmp/package/$f" "$dir/$f"
  done
  local licence; licence=$(ls "$tmp"/package | grep -i -m1 -E '^licen[cs]e' || true)
  if [[ -n $licence ]]; then cp "$tmp/package/$licence" "$dir/LICENSE"
  else  # some packages ship none: their package.json names it
    python3 -c "import json,sys; p=json.load(open(sys.argv[1])); print(f\"{p['name']}@{p['version']}: {p['license']} licence, \" f\"as its package.json says; the text is in {p.get('homepage') or p['name']}'s repository.\")" \
      "$tmp/package/package.json" >"$dir/LICENSE"
  fi
  rm -rf "$tmp/package"
}
take bootstrap@4.3.1 dist/css/bootstrap.min.css dist/js/bootstrap.min.js
take bootstrap-table@1.19.1 dist/bootstrap-table.min.css dist/bootstrap-table.min.js \
  dist/extensions/filter-control/bootstrap-table-filter-control.min.js
take bootstrap-table@1.19.0 dist/extensions/filter-control/bootstrap-table-filter-control.css \
  dist/extensions/filter-control/bootstrap-table-filter-control.min.css
take bootstrap-datepicker@1.9.0 dist/css/bootstrap-datepicker.min.css dist/js/bootstrap-datepicker.min.js
take @forevolve/bootstrap-dark@1.1.0 dist/css/bootstrap-prefers-dark.css
take @fortawesome/fontawesome-free@6.6.0 css/all.min.css webfonts/fa-brands-400.woff2 webfonts/fa-regular-400.woff2 \
  webfonts/fa-solid-900.woff2 webfonts/fa-v4compatibility.woff2  # every browser in use reads woff2
take jquery@3.7.1 dist/jquery.min.js
take popper.js@1.12.9 dist/umd/popper.min.js
take vega@5.33.1 build/vega.min.js
take vega-lite@5.23.0 build/vega-lite.min.js
take vega-embed@6.29.0 build/vega-embed.min.js
du -sh "$out"
