#!/bin/sh
# cli/report_chromium (issue 21): opens the page `ssl report` wrote in headless
# Chromium and checks the DOM it builds holds every figure, as SVG, with the
# retrieval grid's images. Exits 77 (ctest: skipped) without chromium
# (Debian's package; scripts/setup.sh installs it with SSL_WITH_PEERS=1).
#   test_report_chromium.sh RUN_DIR/report.html
set -u
page=$1
browser=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$browser" ]; then
  echo "SKIP: chromium is not installed (apt-get install chromium; scripts/setup.sh with SSL_WITH_PEERS=1)"
  exit 77
fi
[ -f "$page" ] || { echo "FAIL: $page is missing (the test cli/report writes it)"; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
url="file://$(cd "$(dirname "$page")" && pwd)/$(basename "$page")"
if ! timeout 120 "$browser" --headless --no-sandbox --disable-gpu --user-data-dir="$tmp/profile" \
    --dump-dom "$url" > "$tmp/dom.html" 2> "$tmp/err.txt"; then
  echo "FAIL: chromium could not open $url:"; tail -5 "$tmp/err.txt"; exit 1
fi
fail=0
tr -d '\n' < "$tmp/dom.html" > "$tmp/flat.html"
for id in fig-plot fig-eval_last-lowshot fig-eval_last-layers fig-eval_last-retrieval fig-eval_last-map; do
  # the figure element, its first child an <svg> element (the page puts a newline between them)
  if ! grep -q "<figure class=\"figure\" id=\"$id\"><svg" "$tmp/flat.html"; then
    echo "FAIL: the DOM has no figure $id holding an <svg>"; fail=1
  fi
done
svgs=$(grep -o '<svg' "$tmp/dom.html" | wc -l)
tiles=$(grep -o 'class="tile"' "$tmp/dom.html" | wc -l)
points=$(grep -o 'class="point"' "$tmp/dom.html" | wc -l)
echo "chromium DOM: $svgs svg elements, $tiles retrieval images, $points plotted points"
[ "$svgs" -ge 5 ] || { echo "FAIL: fewer than 5 svg elements"; fail=1; }
[ "$tiles" -eq 48 ] || { echo "FAIL: $tiles retrieval images, expected 48 (8 queries x (1 + 5))"; fail=1; }
[ "$fail" = 0 ] && echo "report_chromium: all checks passed"
exit $fail
