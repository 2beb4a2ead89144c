#!/usr/bin/env bash
# Builds, with the oldest supported Python (3.9), reproducibly:
#   dist/<platform>/kubectl-gwdup         a shiv zipapp (#!/usr/bin/env python3) for linux-amd64,
#                                         linux-arm64, darwin-amd64, darwin-arm64 (PyYAML's libyaml
#                                         binding for CPython 3.9-3.13 inside) and any (pure Python)
#   dist/kubectl-gwdup-<platform>.tar.gz  its krew archive: kubectl-gwdup, kubectl_complete-gwdup, LICENSE
#   dist/kubectl-gwdup                    this machine's zipapp
#   dist/gwdup.yaml                       the krew manifest: krew/gwdup.yaml (the tracked template) with
#                                         each archive's sha256, the version and GWDUP_RELEASE_URL filled in
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
WHEELS=build/wheels  # PyYAML's platform wheels, kept between builds (the version is pinned)
rm -rf "$BUILD/site-packages" "$BUILD"/site-* dist/kubectl-gwdup* dist/*/kubectl-gwdup
mkdir -p "$BUILD" "$WHEELS" dist
[ -x "$BUILD/venv/bin/shiv" ] || { "$PY39" -m venv "$BUILD/venv" && "$BUILD/venv/bin/pip" install -q shiv==1.0.8 2>/dev/null; }

quiet() { grep -v "^WARNING: Location" >&2 || true; }  # this machine's pip lists local mirrors
"$BUILD/venv/bin/pip" install -q --no-compile --target "$BUILD/site-packages" \
  -c packaging/constraints.txt . 2> >(quiet)
# The common base is pure Python: drop the compiled accelerators pip picked for this machine's
# Python; each platform archive below adds PyYAML's libyaml binding for every supported CPython.
find "$BUILD/site-packages" \( -name '*.so' -o -name '*.pyd' \) -delete
find "$BUILD/site-packages" -name '__pycache__' -prune -exec rm -rf {} +
# python-dateutil pulls tzdata's 600 zone files; kubectl-gwdup never converts time zones, and
# every file in the archive costs start-up time when Python indexes the zip
rm -rf "$BUILD/site-packages/bin" "$BUILD/site-packages"/tzdata "$BUILD/site-packages"/tzdata-*.dist-info

# krew platform -> PyYAML wheel platform. Each archive carries yaml/_yaml.cpython-3XY-<arch>.so
# for CPython 3.9-3.13 side by side: the interpreter imports the one tagged with its own ABI,
# and any other Python (or platform: the "any" archive) uses PyYAML's pure-Python loader.
PLATFORMS="linux-amd64:manylinux_2_17_x86_64 linux-arm64:manylinux_2_17_aarch64 darwin-amd64:macosx_10_13_x86_64 darwin-arm64:macosx_11_0_arm64 any:"
CPYTHONS="39 310 311 312 313"
YAML_VERSION=$(sed -n 's/^PyYAML==//p' packaging/constraints.txt)

build_one() {  # name, wheel platform
  local name=$1 tag=$2 site="$BUILD/site-$1"
  cp -a "$BUILD/site-packages" "$site"
  if [ -n "$tag" ]; then
    for py in $CPYTHONS; do
      ls "$WHEELS"/pyyaml-"$YAML_VERSION"-cp$py-cp$py-*"$tag"*.whl >/dev/null 2>&1 ||
        "$BUILD/venv/bin/pip" download -q --no-deps --only-binary=:all: --implementation cp \
          --python-version "$py" --platform "$tag" -d "$WHEELS" "PyYAML==$YAML_VERSION" 2> >(quiet)
      "$PY39" - "$site" "$WHEELS"/pyyaml-"$YAML_VERSION"-cp$py-cp$py-*"$tag"*.whl <<'PY'
import os, sys, zipfile
site, wheel = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as z:
    (so,) = [n for n in z.namelist() if n.startswith("yaml/_yaml.") and n.endswith(".so")]
    with open(os.path.join(site, so), "wb") as f:
        f.write(z.read(so))
PY
    done
  fi
  mkdir -p "dist/$name"
  "$BUILD/venv/bin/shiv" --site-packages "$site" --reproducible --compile-pyc \
    -p '/usr/bin/env python3' -e kubectl_gwdup.__main__:main \
    --preamble packaging/shiv_preamble.py -o "dist/$name/kubectl-gwdup"
  "$PY39" packaging/python_gate.py "dist/$name/kubectl-gwdup"  # one error line on a Python before 3.9
  chmod 0755 "dist/$name/kubectl-gwdup"
  local stage="$BUILD/archive-$name"
  rm -rf "$stage" && mkdir -p "$stage"
  install -m 0755 "dist/$name/kubectl-gwdup" packaging/kubectl_complete-gwdup "$stage/"
  install -m 0644 LICENSE "$stage/"
  tar --sort=name --mtime="@$SOURCE_DATE_EPOCH" --owner=0 --group=0 --numeric-owner \
    -C "$stage" -cf - kubectl-gwdup kubectl_complete-gwdup LICENSE | gzip -9n > "dist/kubectl-gwdup-$name.tar.gz"
}

for p in $PLATFORMS; do
  build_one "${p%%:*}" "${p#*:}"
done

# this machine's build, for running it here
case "$(uname -s)-$(uname -m)" in
  Linux-x86_64) HOST=linux-amd64 ;; Linux-aarch64) HOST=linux-arm64 ;;
  Darwin-x86_64) HOST=darwin-amd64 ;; Darwin-arm64) HOST=darwin-arm64 ;; *) HOST=any ;;
esac
cp "dist/$HOST/kubectl-gwdup" dist/kubectl-gwdup

BASE=${GWDUP_RELEASE_URL:-https://example.invalid/kubectl-gwdup/v$VERSION}
HOMEPAGE=${GWDUP_HOMEPAGE:-https://example.invalid/kubectl-gwdup}
"$PY39" - "$BASE" "v$VERSION" "$HOMEPAGE" <<'PY'
import hashlib, re, sys
base, version, homepage = sys.argv[1:]
text = open("krew/gwdup.yaml").read()  # the template stays as tracked; the filled copy goes to dist/

def fill(match):
    name = match.group(1)
    sha = hashlib.sha256(open(f"dist/kubectl-gwdup-{name}.tar.gz", "rb").read()).hexdigest()
    return f"uri: {base}/kubectl-gwdup-{name}.tar.gz\n    sha256: {sha}"

text = re.sub(r"uri: \S*/kubectl-gwdup-([a-z0-9-]+)\.tar\.gz\n    sha256: \S+", fill, text)
text = re.sub(r"(?m)^(  version: )\S+$", r"\g<1>" + version, text)
text = re.sub(r"(?m)^(  homepage: )\S+$", lambda m: m.group(1) + homepage, text)
open("dist/gwdup.yaml", "w").write(text)

# deploy/ with the release's archive URL and sha256 (the platform-free archive: one for every
# node architecture the python image runs on)
import os, shutil
shutil.rmtree("dist/deploy", ignore_errors=True)
shutil.copytree("deploy", "dist/deploy")
sha = hashlib.sha256(open("dist/kubectl-gwdup-any.tar.gz", "rb").read()).hexdigest()
path = "dist/deploy/50-deployment.yaml"
text = open(path).read()
text = re.sub(r'(GWDUP_ARCHIVE_URL, value: )"[^"]*"', lambda m: f'{m.group(1)}"{base}/kubectl-gwdup-any.tar.gz"', text)
text = re.sub(r'(GWDUP_ARCHIVE_SHA256, value: )"[^"]*"', lambda m: f'{m.group(1)}"{sha}"', text)
open(path, "w").write(text)
PY
for p in $PLATFORMS; do
  name=${p%%:*}
  echo "dist/kubectl-gwdup-$name.tar.gz $(du -h "dist/kubectl-gwdup-$name.tar.gz" | cut -f1) sha256 $(sha256sum "dist/kubectl-gwdup-$name.tar.gz" | cut -d' ' -f1)"
done
