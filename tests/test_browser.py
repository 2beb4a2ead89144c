"""The hazard and its fixes in a real browser: headless Chromium against the real Envoy.

Chromium runs with its own profile, a HOME whose NSS database trusts the test CA (certutil),
and every name mapped to 127.0.0.1, so it pools connections exactly as it would on the
Internet: only on a certificate it accepts without error. A page fetches host A, then host B.
The manifests are translated by tests/istiod_translate.py (never importing kubectl_gwdup),
the plans of kubectl-gwdup applied by istiod's rules (tests/envoyfilter_patch.py, or the
merge's write steps), and Envoy's access log (connection id, SNI, authority, status, route)
shows which connection each request rode. Required, for the seed case, a wildcard Misrouted
case and a wildcard NotFound case:
- as they are: B rides A's connection and gets the hazard (404, or another backend's 200);
- apply-421 with the default method: B gets 421 on A's connection, then its own answer on a
  new connection opened for B;
- --mitigation http1: A's connection speaks HTTP/1.1, no request shares a connection, B gets
  its own answer;
- the merge plan: B gets its own answer.

Chromium comes from Debian (`chromium`, `libnss3-tools`); .ci/run installs both. Without
them, the tests are skipped outside CI and fail in it.
"""
from __future__ import annotations

import json
import re
import os
import shutil
import subprocess
import tempfile
from typing import Any, Dict, List, Tuple

import pytest

import envoyfilter_patch
from conftest import run_cli
from istiod_translate import Envoy, Translation, new_workdir
from kubectl_gwdup.analysis import registry
from kubectl_gwdup.inventory import build_inventory
from kubectl_gwdup.plans.merge import plan_merge
from kubectl_gwdup.plans.misdirect421 import Method421, plan_421
from kubectl_gwdup.sources.files import load_files
from test_apply421 import scenario_docs_with_keys
from test_merge import apply_steps

CHROMIUM = shutil.which("chromium")
CERTUTIL = shutil.which("certutil")
if not (CHROMIUM and CERTUTIL):
    if os.environ.get("CI"):
        raise RuntimeError("CI needs Debian's chromium and libnss3-tools (.ci/run installs them)")
    pytest.skip("no chromium or certutil here (apt-get install chromium libnss3-tools)", allow_module_level=True)

# (scenario, host A, host B, what B gets on A's connection, the route that answers B on its own,
#  the certificate a merge keeps when the servers have different ones: merge --prefer-cert)
CASES = [
    ("seed_routed", "a.example.com", "b.example.com", 404, "team-b/b#http[0]", None),
    ("wildcard_host_misrouted", "zz.example.com", "b.example.com", 200, "shop/shop#http[0]", "wild"),
    ("own_unrouted_under_san_wildcard", "a.example.com", "c.example.com", 404, "team-c/c#http[0]", None),
]
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-extensions", "--host-resolver-rules=MAP * 127.0.0.1", "--virtual-time-budget=15000",
         "--dump-dom"]


@pytest.fixture(scope="module")
def browser_home(certs):
    """A HOME whose NSS database trusts the test CA, and nothing else."""
    home = tempfile.mkdtemp(prefix="gwdup-chromium-")
    nss = os.path.join(home, ".pki", "nssdb")
    os.makedirs(nss)
    subprocess.run([CERTUTIL, "-d", f"sql:{nss}", "-N", "--empty-password"], check=True, capture_output=True)
    subprocess.run([CERTUTIL, "-d", f"sql:{nss}", "-A", "-t", "C,,", "-n", "gwdup-test-ca", "-i", certs.ca_cert],
                   check=True, capture_output=True)
    yield home
    shutil.rmtree(home, ignore_errors=True)


def browse(docs: List[dict], home: str, first: str, second: str, objects=()) -> List[Dict[str, str]]:
    """Serve the manifests (with EnvoyFilters), let Chromium fetch `first` then `second`, and
    return Envoy's access log entries."""
    workdir = new_workdir()
    log = os.path.join(workdir, "access.log")
    t = Translation(docs, workdir, None, access_log=log)
    envoyfilter_patch.apply(t, list(objects))
    profile = tempfile.mkdtemp(prefix="profile-", dir=home)
    with Envoy(t):
        port = next(iter(t.ports.values()))
        page = os.path.join(profile, "page.html")
        with open(page, "w") as f:
            f.write(f"""<html><body><script>
(async () => {{
  for (const h of {json.dumps([first, second])}) {{
    try {{ await fetch("https://" + h + ":{port}/", {{mode: "no-cors", cache: "no-store"}}); }} catch (e) {{}}
  }}
  document.body.setAttribute("data-done", "yes");
}})();
</script></body></html>""")
        r = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "file://" + page],
                           env=dict(os.environ, HOME=home), capture_output=True, text=True, timeout=120)
        assert 'data-done="yes"' in r.stdout, r.stderr[-2000:]
    shutil.rmtree(profile, ignore_errors=True)
    with open(log + ".istio") as f:  # Istio's default format: what impact reads on a gateway
        LAST_ISTIO_LOG[:] = [re.sub(rf"127\.0\.0\.1:{port}\b", "10.244.0.7:8443", line) for line in f]
    with open(log) as f:
        return [json.loads(line) for line in f if line.strip()]


LAST_ISTIO_LOG: List[str] = []  # the Istio-format log of the last browse()


def impact_rows(name: str, scenario_files) -> Dict[Tuple[str, str], Dict[str, Any]]:
    """What `impact` reads in the last browse's Istio-format log: outcomes and browser families
    per (connection host, request host)."""
    path = os.path.join(new_workdir(), "gateway.log")
    with open(path, "w") as f:
        f.writelines(LAST_ISTIO_LOG)
    r = run_cli(["impact", "--log-file", path, "-o", "json", *sum((["--manifests", m] for m in scenario_files(name)), [])])
    assert r.status in (0, 3), r.stderr
    return {(x["connectionHost"], x["requestHost"]): {"outcomes": {k: v for k, v in x["outcomes"].items() if v},
                                                       "agents": x["userAgents"], "predicted": x["predicted"]}
            for x in json.loads(r.stdout)["rows"]}


def inventory_of(docs: List[dict]):
    path = os.path.join(new_workdir(), "manifests.yaml")
    import yaml

    with open(path, "w") as f:
        yaml.safe_dump_all(docs, f)
    raw = load_files([path])
    inv = build_inventory(raw)
    return raw, inv, registry.run(inv).findings


def _own(entries, host: str, route: str) -> None:
    """`host` was answered by its own route on a connection opened for it."""
    assert any(e["authority"] == host and e["sni"] == host and str(e["status"]) == "200" and e["route"] == route
               for e in entries), entries


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_the_hazard_and_every_fix_in_chromium(case, scenario_files, certs, browser_home) -> None:
    name, first, second, hazard, route, prefer_cert = case
    docs = scenario_docs_with_keys(name, scenario_files, certs)
    raw, inv, findings = inventory_of(docs)

    log = browse(docs, browser_home, first, second)
    a = next(e for e in log if e["authority"] == first)
    b = [e for e in log if e["authority"] == second]
    assert [(e["connection"], e["sni"], str(e["status"])) for e in b] == [(a["connection"], first, str(hazard))], log
    if hazard == 200:
        assert b[0]["route"] != route  # another backend answered
    # impact reads the same requests in Istio's default log format, and counts the one hazard
    outcome = "misrouted" if hazard == 200 else "404 no route"
    assert impact_rows(name, scenario_files) == {
        (first, second): {"outcomes": {outcome: 1}, "agents": {"Chrome": 1}, "predicted": True}}

    log = browse(docs, browser_home, first, second, plan_421(inv, findings, Method421.VHOST).objects)
    a = next(e for e in log if e["authority"] == first)
    b = [e for e in log if e["authority"] == second]
    assert (b[0]["connection"], b[0]["sni"], str(b[0]["status"])) == (a["connection"], first, "421"), log
    assert len(b) == 2 and b[1]["connection"] != a["connection"], log  # the retry, on a new connection
    _own(b, second, route)
    assert impact_rows(name, scenario_files) == {
        (first, second): {"outcomes": {"421": 1}, "agents": {"Chrome": 1}, "predicted": True}}

    log = browse(docs, browser_home, first, second, plan_421(inv, findings, Method421.HTTP1).objects)
    a = next(e for e in log if e["authority"] == first)
    assert a["protocol"] == "HTTP/1.1", log
    assert len({e["connection"] for e in log}) == len(log), log  # no connection carried two requests
    _own(log, second, route)

    steps = plan_merge(raw, inv, findings, prefer_cert=prefer_cert).to_dict()["steps"]
    assert steps, "no merge planned"
    log = browse(apply_steps(docs, steps), browser_home, first, second)
    b = [e for e in log if e["authority"] == second]
    assert len(b) == 1 and str(b[0]["status"]) == "200" and b[0]["route"] == route, log
