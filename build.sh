#!/usr/bin/env bash
# Builds, with the oldest supported Python (3.9):
#   dist/kubectl-gwdup         a shiv zipapp (#!/usr/bin/env python3, pure Python, reproducible)
#   dist/kubectl-gwdup.tar.gz  the krew archive: kubectl-gwdup, kubectl_complete-gwdup, LICENSE
#   dist/gwdup.yaml            the krew manifest: krew/gwdup.yaml (the tracked template) with the
#                              archive's sha256, the version and GWDUP_RELEASE_URL (when set) filled in
set -euo pipefail
cd "$(dirname "$0")"

find_python39() {
  if [ -n "${GWDUP_BUILD_PYTHON:-}" ]; then echo "$GWDUP_BUILD_PYTHON"; return; fi
  for c in "$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")"/versions/3.9*/bin/python3 \
           "$(command -v python3.9 || true)"; do
    [ -x "$c" ] && { echo "$c"; return; }
  done
  echo "build.sh: no Python 3.9 found (set GWDUP_BUILD_PYTHON)" >&2
  exit 1
}

PY39=$(find_python39)
VERSION=$("$PY39" -c 'import re;print(re.search(r"__version__ = \"(.+)\"", open("kubectl_gwdup/__init__.py").read()).group(1))')
# reproducible: every timestamp is the last commit's (or a fixed epoch outside git)
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 315532800)}
export PYTHONHASHSEED=0

BUILD=build/zipapp
rm -rf "$BUILD/site-packages" dist/kubectl-gwdup dist/kubectl-gwdup.tar.gz
mkdir -p "$BUILD" dist
[ -x "$BUILD/venv/bin/shiv" ] || { "$PY39" -m venv "$BUILD/venv" && "$BUILD/venv/bin/pip" install -q shiv==1.0.8 2>/dev/null; }

quiet() { grep -v "^WARNING: Location" >&2 || true; }  # this machine's pip lists local mirrors
"$BUILD/venv/bin/pip" install -q --no-compile --target "$BUILD/site-packages" \
  -c packaging/constraints.txt . 2> >(quiet)
# Keep it pure Python: drop compiled accelerators (PyYAML's libyaml binding and the like);
# every such package has a pure-Python path that kubectl-gwdup then uses.
find "$BUILD/site-packages" \( -name '*.so' -o -name '*.pyd' \) -delete
find "$BUILD/site-packages" -name '__pycache__' -prune -exec rm -rf {} +
# python-dateutil pulls tzdata's 600 zone files; kubectl-gwdup never converts time zones, and
# every file in the archive costs start-up time when Python indexes the zip
rm -rf "$BUILD/site-packages/bin" "$BUILD/site-packages"/tzdata "$BUILD/site-packages"/tzdata-*.dist-info

"$BUILD/venv/bin/shiv" --site-packages "$BUILD/site-packages" --reproducible --compile-pyc \
  -p '/usr/bin/env python3' -e kubectl_gwdup.__main__:main \
  --preamble packaging/shiv_preamble.py -o dist/kubectl-gwdup
chmod 0755 dist/kubectl-gwdup

stage="$BUILD/archive"
rm -rf "$stage" && mkdir -p "$stage"
install -m 0755 dist/kubectl-gwdup packaging/kubectl_complete-gwdup "$stage/"
install -m 0644 LICENSE "$stage/"
tar --sort=name --mtime="@$SOURCE_DATE_EPOCH" --owner=0 --group=0 --numeric-owner \
  -C "$stage" -cf - kubectl-gwdup kubectl_complete-gwdup LICENSE | gzip -9n > dist/kubectl-gwdup.tar.gz

SHA=$(sha256sum dist/kubectl-gwdup.tar.gz | cut -d' ' -f1)
URL=${GWDUP_RELEASE_URL:-https://example.invalid/kubectl-gwdup/v$VERSION/kubectl-gwdup.tar.gz}
"$PY39" - "$SHA" "$URL" "v$VERSION" <<'PY'
import re, sys
sha, url, version = sys.argv[1:]
text = open("krew/gwdup.yaml").read()  # the template stays as tracked; the filled copy goes to dist/
text = re.sub(r"(?m)^(\s+sha256: )\S+$", r"\g<1>" + sha, text)
text = re.sub(r"(?m)^(\s+uri: )\S+$", r"\g<1>" + url, text)
text = re.sub(r"(?m)^(  version: )\S+$", r"\g<1>" + version, text)
open("dist/gwdup.yaml", "w").write(text)
PY
echo "dist/kubectl-gwdup $(du -h dist/kubectl-gwdup | cut -f1)"
echo "dist/kubectl-gwdup.tar.gz sha256 $SHA"
