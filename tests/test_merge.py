"""merge: the planner on the corpus, its invariants, the real Envoy after it (random meshes
closed-loop: tests/test_merge_loop.py), and --apply with failures injected at every step
against the emulator."""
from __future__ import annotations

import copy
import json
import os

import pytest
import yaml
from hypothesis import HealthCheck, given, settings

from conftest import manifests_of, run_cli
from istiod_translate import Connection
from kubectl_gwdup.analysis import registry
from kubectl_gwdup.inventory import build_inventory
from kubectl_gwdup.plans.merge import plan_merge, rewrite_virtual_service
from kubectl_gwdup.sources.files import load_files
from test_differential import served
from test_live import scenario_docs, with_routes


def planned(files, **kw):
    raw = load_files(files)
    inv = build_inventory(raw)
    return raw, inv, plan_merge(raw, inv, registry.run(inv).findings, **kw)


def routed(tmp_path, scenario_files, name):
    """The scenario with each Gateway routing its own hosts through a VirtualService."""
    docs = [d for p in scenario_files(name) for d in yaml.safe_load_all(open(p)) if d]
    path = tmp_path / f"{name}-routed.yaml"
    path.write_text(yaml.safe_dump_all(with_routes(docs)))
    return [str(path)]


def apply_steps(docs, steps):
    """Objects once the steps are written as the API server writes them: an update replaces
    the spec and keeps the metadata, a delete removes the object."""
    out = [copy.deepcopy(d) for d in docs]
    group = lambda api_version: api_version.rpartition("/")[0]  # an Istio and a Gateway API Gateway may share a name
    for step in steps:
        key = (group(step["apiVersion"]), step["kind"], step["namespace"], step["name"])
        found = [d for d in out if (group(d["apiVersion"]), d["kind"], d["metadata"].get("namespace", "default"),
                                    d["metadata"]["name"]) == key]
        assert len(found) == 1, key
        if step["action"] == "delete":
            out.remove(found[0])
        else:
            found[0]["spec"] = copy.deepcopy(step["spec"])
    return out


def after_plan(tmp_path, files, doc, steps=None):
    """The manifests once the plan's steps (all, or the first `steps`) are written."""
    docs = [d for p in files for d in yaml.safe_load_all(open(p)) if d]
    path = tmp_path / f"after-{steps}.yaml"
    path.write_text(yaml.safe_dump_all(apply_steps(docs, doc["steps"][:steps])))
    return [str(path)]


def merged_gateway(doc):
    (step,) = [s for s in doc["steps"] if s["phase"] == "merge"]
    return step


def test_seed_becomes_one_server_with_both_hosts(tmp_path, scenario_files) -> None:
    files = routed(tmp_path, scenario_files, "seed")
    raw, inv, plan = planned(files)
    doc = plan.to_dict()
    # into the oldest Gateway, in place; gw-b's VirtualService bound to both first; delete last
    assert [(s["phase"], s["kind"], s["name"]) for s in doc["steps"]] == [
        ("bind", "VirtualService", "gw-b-routes"), ("merge", "Gateway", "gw-a"),
        ("unbind", "VirtualService", "gw-b-routes"), ("delete", "Gateway", "gw-b")]
    gw = merged_gateway(doc)
    (server,) = gw["spec"]["servers"]
    assert server["hosts"] == ["team-a/a.example.com", "b.example.com"]
    assert (gw["namespace"], gw["name"]) == ("team-a", "gw-a")
    assert doc["steps"][0]["spec"]["gateways"] == ["gw-b", "team-a/gw-a"]
    assert doc["steps"][2]["spec"]["gateways"] == ["team-a/gw-a"]
    after = run_cli(["check", "-f", *after_plan(tmp_path, files, doc), "-o", "json"])
    assert after.status == 0 and json.loads(after.stdout)["findings"] == []


def test_servers_of_one_gateway(tmp_path, scenario_files) -> None:
    raw, inv, plan = planned(routed(tmp_path, scenario_files, "one_gateway_two_servers"))
    gw = merged_gateway(plan.to_dict())
    assert [s["hosts"] for s in gw["spec"]["servers"]] == [["a.example.com", "b.example.com"]]


def test_virtual_service_references() -> None:
    vs = {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
          "metadata": {"name": "v", "namespace": "shop", "resourceVersion": "7"},
          "spec": {"hosts": ["a"], "gateways": ["gw-a", "mesh", "team-b/gw-b", "other/gw"],
                   "http": [{"match": [{"gateways": ["gw-a"]}, {"gateways": ["mesh"]}], "route": []}],
                   "tls": [{"match": [{"gateways": ["team-b/gw-b", "shop/gw-a"]}], "route": []}]}}
    out = rewrite_virtual_service(vs, {"shop/gw-a", "team-b/gw-b"}, "istio-system/merged", "default")
    assert out["spec"]["gateways"] == ["istio-system/merged", "mesh", "other/gw"]
    assert out["spec"]["http"][0]["match"] == [{"gateways": ["istio-system/merged"]}, {"gateways": ["mesh"]}]
    assert out["spec"]["tls"][0]["match"][0]["gateways"] == ["istio-system/merged"]
    assert out["metadata"] == vs["metadata"]  # an update keeps the object's metadata
    both = rewrite_virtual_service(vs, {"shop/gw-a", "team-b/gw-b"}, "istio-system/merged", "default", keep_old=True)
    assert both["spec"]["gateways"] == ["gw-a", "istio-system/merged", "mesh", "team-b/gw-b", "other/gw"]
    assert both["spec"]["http"][0]["match"] == [{"gateways": ["gw-a", "istio-system/merged"]}, {"gateways": ["mesh"]}]
    assert rewrite_virtual_service(vs, {"x/y"}, "istio-system/merged", "default") is None


def test_https_redirect_servers_are_carried_once(tmp_path, scenario_files) -> None:
    docs = [d for p in scenario_files("seed") for d in yaml.safe_load_all(open(p)) if d]
    for d in docs:
        if d["kind"] == "Gateway" and d["metadata"]["name"] in ("gw-a", "gw-b"):
            host = d["spec"]["servers"][0]["hosts"][0]
            d["spec"]["servers"].append({"port": {"number": 80, "name": "http", "protocol": "HTTP"},
                                         "hosts": [host], "tls": {"httpsRedirect": True}})
    path = tmp_path / "redirect.yaml"
    path.write_text(yaml.safe_dump_all(with_routes(docs)))
    gw = merged_gateway(planned([str(path)])[2].to_dict())
    http = [s for s in gw["spec"]["servers"] if s["port"]["number"] == 80]
    assert len(http) == 1 and http[0]["hosts"] == ["team-a/a.example.com", "b.example.com"]
    assert http[0]["tls"] == {"httpsRedirect": True}
    assert len({s["port"]["name"] for s in gw["spec"]["servers"]}) == len(gw["spec"]["servers"])


def test_different_certificates_are_explained_not_merged(tmp_path, scenario_files) -> None:
    files = scenario_files("wildcard_host_misrouted")
    raw, inv, plan = planned(files)
    assert plan.units == [] and "different certificates" in plan.notes[0] and "--prefer-cert" in plan.notes[0]
    raw, inv, plan = planned(files, prefer_cert="wild")  # *.example.com is valid for b.example.com too
    gw = merged_gateway(plan.to_dict())
    assert gw["spec"]["servers"][0]["tls"]["credentialName"] == "wild"
    raw, inv, plan = planned(files, prefer_cert="b-only")  # valid for b only: refused, and said so
    assert plan.units == [] and "--prefer-cert b-only is not valid for all their hosts" in plan.notes[0]


def test_prefer_cert_must_name_a_certificate_the_merge_can_take(scenario_files, certs, tmp_path) -> None:
    """A --prefer-cert no server uses, or whose Secret is absent, is an error: never ignored."""
    files = scenario_files("wildcard_host_misrouted")
    r = run_cli(["merge", "--plan", "--prefer-cert", "no-such-secret", *sum((["-f", f] for f in files), [])])
    assert r.status == 1 and '--prefer-cert "no-such-secret": no Gateway server uses credentialName' in r.stderr
    assert r.stdout == "" and len(r.stderr.splitlines()) == 1
    r = run_cli(["merge", "--plan", "--prefer-cert", "wild", *sum((["-f", f] for f in files), [])])
    assert r.status == 0 and "credentialName: wild" in r.stdout, r.stderr
    docs = [d for p in files for d in yaml.safe_load_all(open(p)) if d and d["kind"] != "Secret"]
    unread = tmp_path / "no-secrets.yaml"
    unread.write_text(yaml.safe_dump_all(docs))
    r = run_cli(["merge", "--plan", "--prefer-cert", "wild", "-f", str(unread)])
    assert r.status == 1 and '--prefer-cert "wild": its Secret was not read' in r.stderr, r.stderr


def test_a_plan_that_would_change_routes_is_refused(tmp_path, scenario_files) -> None:
    # gw-w's *.example.com VirtualService would start answering b.example.com once merged
    files = scenario_files("wildcard_host_misrouted")
    raw, inv, plan = planned(files, prefer_cert="wild")
    assert plan.units  # routes: b keeps shop's VirtualService as the exact host beats *.example.com
    docs = [d for p in files for d in yaml.safe_load_all(open(p)) if d]
    for d in docs:
        if d["kind"] == "VirtualService" and d["metadata"]["name"] == "shop":
            d["spec"]["hosts"] = ["B.example.com"]  # bound nowhere (case), so b is answered by web today
    path = tmp_path / "x.yaml"
    path.write_text(yaml.safe_dump_all(docs))
    raw, inv, plan = planned([str(path)], prefer_cert="wild")
    assert plan.units == [] or all("would be answered" not in n for n in plan.notes)


def test_plan_document_and_offline_cli(tmp_path, scenario_files) -> None:
    files = routed(tmp_path, scenario_files, "seed")
    r = run_cli(["merge", "--plan", "-f", files[0], "-o", "yaml"])
    doc = yaml.safe_load(r.stdout)
    assert doc["kind"] == "MergePlan" and {"steps", "notes", "preconditions"} <= set(doc)
    r = run_cli(["merge", "--plan", "-f", files[0]])
    assert r.stdout.startswith("1. bind VirtualService team-b/gw-b-routes to the merged Gateway too\n")
    assert "+  - team-a/gw-a" in r.stdout and "4. delete Gateway team-b/gw-b" in r.stdout
    assert run_cli(["merge", "-f", files[0]]).status == 2
    assert run_cli(["merge", "--apply", "-f", files[0]]).status == 2


def merged_random(spec, pool_pems):
    """(inventory before, plan document, raw objects once the document is applied), or None."""
    from analysis.test_properties import make_raw

    raw = make_raw(spec, pool_pems)
    inv = build_inventory(raw)
    plan = plan_merge(raw, inv, registry.run(inv).findings)
    if not plan.units:
        return None
    doc = plan.to_dict()
    after = make_raw(spec, pool_pems)
    after.gateways = [d for d in apply_steps(after.gateways, [s for s in doc["steps"] if s["kind"] == "Gateway"])]
    after.virtual_services = apply_steps(after.virtual_services, [s for s in doc["steps"] if s["kind"] == "VirtualService"])
    return inv, doc, after


@settings(max_examples=60, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(__import__("analysis.test_properties", fromlist=["inventory_st"]).inventory_st)
def test_invariants_on_random_inventories(pool_pems, tmp_path_factory, spec) -> None:
    merged_ = merged_random(spec, pool_pems)
    if merged_ is None:
        return
    inv, doc, after = merged_
    # the document, applied: no hazard left among the merged servers
    merged = {f"{s['namespace']}/{s['name']}" for s in doc["steps"] if s["phase"] == "merge"}
    now = registry.run(build_inventory(after)).findings
    for f in now:
        if "outcome" in f.detail:
            assert not merged & {s["gateway"] for s in f.detail["from"] + f.detail["to"]}
    # and nothing new of any kind: a fix must not trade one finding for another
    before = {(f.code, f.resource) for f in registry.run(inv).findings}
    assert {(f.code, f.resource) for f in now} <= before


@pytest.fixture(scope="module")
def pool_pems(certs):
    from analysis.test_properties import CERT_POOL

    return [certs.leaf(*sans, tag="pool").cert_pem for sans in CERT_POOL]


def test_merged_gateway_on_the_real_envoy(tmp_path, scenario_files, certs) -> None:
    """The seed's two Gateways merged: on the real Envoy (tests/istiod_translate.py), each
    host's request on the other's connection, formerly a 404, reaches its own backend."""
    files = routed(tmp_path, scenario_files, "seed")
    raw, inv, plan = planned(files)
    own = {}
    t, envoy = served(manifests_of(files, certs), certs)
    with envoy:
        port = next(iter(t.ports.values()))
        for h in ("a.example.com", "b.example.com"):
            c = Connection(port, h, certs.ca_cert)
            own[h] = (c.request(h), c.backend)
            c.close()
    t, envoy = served(manifests_of(after_plan(tmp_path, files, plan.to_dict()), certs), certs)
    with envoy:
        port = next(iter(t.ports.values()))
        for c_host, r_host in (("a.example.com", "b.example.com"), ("b.example.com", "a.example.com")):
            conn = Connection(port, c_host, certs.ca_cert)
            (status, body, _), backend = conn.request(r_host), conn.backend
            conn.close()
            assert status == 200 and (status, body, backend) == (own[r_host][0][0], own[r_host][0][1], own[r_host][1])


# --- --apply against the API server ------------------------------------------------------------

def snapshot(cluster):
    """What a rollback must keep: each Gateway's and VirtualService's spec, labels, annotations."""
    out = {}
    for path in ("/apis/networking.istio.io/v1/gateways", "/apis/networking.istio.io/v1/virtualservices"):
        code, body = cluster.call("GET", path)
        for o in body.get("items", []):
            m = o["metadata"]
            if m["namespace"].startswith(cluster.prefix):
                out[(o["kind"], m["namespace"], m["name"])] = (o.get("spec"), m.get("labels"), m.get("annotations"))
    return out


def setup_seed(cluster, certs):
    cluster.apply(cluster.isolate(scenario_docs(certs, "seed")))
    return snapshot(cluster)


def test_apply_merges_and_rerun_is_a_no_op(cluster, certs, tmp_path) -> None:
    start = setup_seed(cluster, certs)
    scope = ["-n", cluster.ns("team-a")]
    r = run_cli(["merge", "--apply", "--yes", "--backup-dir", str(tmp_path), *scope], cluster.env)
    assert r.status == 0, r.stderr
    assert r.stdout.splitlines() == [
        "virtualservice.networking.istio.io/gw-b-routes configured", "gateway.networking.istio.io/gw-a configured",
        "virtualservice.networking.istio.io/gw-b-routes configured", "gateway.networking.istio.io/gw-b deleted"]
    assert "(server dry run)" in r.stderr and "backup written to" in r.stderr
    assert run_cli(["check", *scope], cluster.env).status == 0
    again = run_cli(["merge", "--apply", "--yes", "--backup-dir", str(tmp_path), *scope], cluster.env)
    assert again.status == 0 and "nothing to merge" in again.stderr
    backup = [l for l in r.stderr.splitlines() if l.startswith("backup written to ")][0].split()[-1]
    refused = run_cli(["merge", "--restore", backup], cluster.env)  # no terminal, no --yes: nothing written
    assert refused.status == 2 and "refusing to restore without a terminal" in refused.stderr
    assert snapshot(cluster) != start
    restored = run_cli(["merge", "--restore", backup, "--yes"], cluster.env)
    assert restored.status == 0, restored.stderr
    assert snapshot(cluster) == start


def planned_writes(cluster, *args):
    """(method, path pattern, matching writes before it) for every write of `merge --apply`."""
    r = run_cli(["merge", "--plan", "-o", "yaml", *args], cluster.env)
    assert r.status == 0, r.stderr
    writes, seen = [], {}
    for s in yaml.safe_load(r.stdout)["steps"]:
        plural = s["kind"].lower() + "s"
        key = ("DELETE" if s["action"] == "delete" else "PUT", f"/namespaces/{s['namespace']}/{plural}/{s['name']}$")
        writes.append((*key, seen.get(key, 0)))
        seen[key] = seen.get(key, 0) + 1
    return writes


def test_a_denied_write_at_every_step_leaves_everything_as_it_was(cluster, certs, tmp_path, emulator_only) -> None:
    """A policy (validating webhook) denies one real write after the dry run passed, at each
    write of a plan with two groups in turn: spec, labels and annotations come back each time."""
    from test_fix import two_groups

    two_groups(cluster, certs)
    writes = planned_writes(cluster)
    assert len(writes) == 8 and writes[-1][0] == "DELETE"
    for i, (method, path, skip) in enumerate(writes):
        start = snapshot(cluster)
        emulator_only.deny_admission(method, path, skip=skip)
        r = run_cli(["merge", "--apply", "--yes", "--backup-dir", str(tmp_path / str(i))], cluster.env)
        assert r.status == 4, (i, r.stderr)
        assert 'admission webhook "validation.policy.example" denied the request' in r.stderr
        assert "Traceback" not in r.stderr
        assert snapshot(cluster) == start, i
        if method == "DELETE" and i == len(writes) - 1:
            assert "was created again" in r.stderr  # the first delete went through and was undone
        else:
            assert "the cluster is as before" in r.stderr
    r = run_cli(["merge", "--apply", "--yes", "--backup-dir", str(tmp_path / "last")], cluster.env)
    assert r.status == 0, r.stderr


def _touch(emu, kind_key, ns, name, status_only: bool):
    """What another writer does between the merge's read and its write: a user's edit of the
    object, or (status_only) istiod writing its status."""
    def act() -> None:
        kind = emu.kinds[kind_key]
        obj = copy.deepcopy(emu.store[kind_key][(ns, name)])
        if status_only:
            obj["status"] = {"validationMessages": [{"type": {"code": "IST0000"}, "level": "INFO"}]}
            emu._update(kind, ns, name, obj, dry_run=False, manager="pilot-discovery", sub="status")
        else:
            obj["metadata"].setdefault("labels", {})["edited"] = "meanwhile"
            emu._update(kind, ns, name, obj, dry_run=False, manager="kubectl-edit")
    return act


@pytest.mark.parametrize("method,path,status,touch", [
    ("PUT", r"/gateways/gw-a$", 500, None),                     # the merge into gw-a fails
    ("PUT", r"/virtualservices/gw-b-routes$", 0, "vs"),         # the VirtualService changed meanwhile: 409
    ("DELETE", r"/gateways/gw-b$", 500, None),                  # the delete fails
])
def test_failures_roll_back_to_the_start(cluster, certs, tmp_path, emulator_only, method, path, status, touch) -> None:
    start = setup_seed(cluster, certs)
    action = _touch(emulator_only, ("networking.istio.io", "virtualservices"), cluster.ns("team-b"), "gw-b-routes",
                    status_only=False) if touch else None
    emulator_only.inject(method, path, status, times=1, writes_only=True, action=action)  # the dry run passes
    if touch:  # the edit made meanwhile stays, and only it
        r = run_cli(["merge", "--apply", "--yes", "--backup-dir", str(tmp_path), "-n", cluster.ns("team-a")],
                    cluster.env)
        assert r.status == 4 and "Conflict" in r.stderr and "the cluster is as before" in r.stderr, r.stderr
        key = ("VirtualService", cluster.ns("team-b"), "gw-b-routes")
        now = snapshot(cluster)
        assert now[key][0] == start[key][0] and (now[key][1] or {}).get("edited") == "meanwhile"
        assert {k: v for k, v in now.items() if k != key} == {k: v for k, v in start.items() if k != key}
        return
    r = run_cli(["merge", "--apply", "--yes", "--backup-dir", str(tmp_path), "-n", cluster.ns("team-a")],
                cluster.env)
    assert r.status == 4, r.stderr
    assert "the cluster is as before" in r.stderr and "Traceback" not in r.stderr
    assert snapshot(cluster) == start


@pytest.mark.parametrize("method,path,kind_key,name_ns", [
    ("PUT", r"/gateways/gw-a$", ("networking.istio.io", "gateways"), ("gw-a", "team-a")),
    ("DELETE", r"/gateways/gw-b$", ("networking.istio.io", "gateways"), ("gw-b", "team-b")),
])
def test_a_status_write_between_reads_and_writes_is_not_a_conflict(cluster, certs, tmp_path, emulator_only, method,
                                                                   path, kind_key, name_ns) -> None:
    """istiod (or serve --write-conditions) writes a Gateway's status after each change of its
    spec: the merge's precondition fails on the new resourceVersion, the object is read again,
    only its status moved, and the write goes through."""
    setup_seed(cluster, certs)
    name, ns = name_ns
    emulator_only.inject(method, path, 0, times=1, writes_only=True,
                         action=_touch(emulator_only, kind_key, cluster.ns(ns), name, status_only=True))
    r = run_cli(["merge", "--apply", "--yes", "--backup-dir", str(tmp_path), "-n", cluster.ns("team-a")], cluster.env)
    assert r.status == 0, r.stderr
    assert len([x for x in emulator_only.requests(method, path + "") if "dryRun" not in x[2]]) >= 1
    assert run_cli(["check", "-n", cluster.ns("team-a")], cluster.env).status == 0


def test_apply_refuses_without_a_terminal(cluster, certs) -> None:
    setup_seed(cluster, certs)
    r = run_cli(["merge", "--apply", "-n", cluster.ns("team-a")], cluster.env)
    assert r.status == 2 and "add --yes" in r.stderr


def test_plan_file_refuses_a_changed_cluster(cluster, certs, tmp_path) -> None:
    setup_seed(cluster, certs)
    plan = tmp_path / "plan.yaml"
    r = run_cli(["merge", "--plan", "--plan-file", str(plan), "-n", cluster.ns("team-a")], cluster.env)
    assert r.status == 0 and plan.exists()
    vs = f"/apis/networking.istio.io/v1/namespaces/{cluster.ns('team-b')}/virtualservices/gw-b-routes"
    code, obj = cluster.call("GET", vs)
    obj["metadata"].setdefault("labels", {})["touched"] = "yes"
    assert cluster.call("PUT", vs, obj)[0] == 200
    r = run_cli(["merge", "--apply", "--yes", "--plan-file", str(plan), "--backup-dir", str(tmp_path)], cluster.env)
    assert r.status == 1 and "the cluster changed since the plan was made" in r.stderr


def test_restore_asks_at_a_terminal_as_apply_does(cluster, certs, tmp_path) -> None:
    import pexpect
    import sys

    from conftest import ROOT

    start = setup_seed(cluster, certs)
    scope = ["-n", cluster.ns("team-a")]
    r = run_cli(["merge", "--apply", "--yes", "--backup-dir", str(tmp_path), *scope], cluster.env)
    assert r.status == 0, r.stderr
    backup = [l for l in r.stderr.splitlines() if l.startswith("backup written to ")][0].split()[-1]
    merged = snapshot(cluster)
    env = {**os.environ, **cluster.env, "PYTHONPATH": ROOT, "NO_COLOR": "1"}
    for answer, want in (("n", merged), ("y", start)):
        child = pexpect.spawn(sys.executable, ["-m", "kubectl_gwdup", "merge", "--restore", backup], env=env,
                              cwd=ROOT, encoding="utf-8", timeout=60)
        child.expect(f"Gateway {cluster.ns('team-b')}/gw-b")  # names each object it will put back
        child.expect(r"Restore these objects\? \[y/N\] ")
        child.sendline(answer)
        child.expect(pexpect.EOF)
        child.close()
        assert child.exitstatus == 0
        assert snapshot(cluster) == want, answer


def test_restore_refuses_a_backup_that_is_not_one(tmp_path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: gwdup.kubectl.io/v1alpha1\nkind: MergeBackup\nobjects: [1, {kind: Gateway}]\n")
    r = run_cli(["merge", "--restore", str(bad), "--yes"])
    assert r.status == 1 and r.stderr.startswith("error: ") and "not Kubernetes objects" in r.stderr
    assert len(r.stderr.splitlines()) == 1


def test_no_yaml_anchors_in_plans_plan_files_or_backups(tmp_path, cluster, certs) -> None:
    """The examples' plan shares specs between steps: PyYAML would write &id001/*id001 there.
    Printed, written as a plan file, or kept as a backup, the YAML has none and reads back
    as the JSON form says."""
    from conftest import ROOT
    from test_parsers import anchored

    examples = os.path.join(ROOT, "examples")
    plan_file = tmp_path / "plan.yaml"
    printed = run_cli(["merge", "--plan", "-f", examples, "-o", "yaml", "--plan-file", str(plan_file)])
    as_json = run_cli(["merge", "--plan", "-f", examples, "-o", "json"])
    assert printed.status == 0 and as_json.status == 0, printed.stderr
    for text in (printed.stdout, plan_file.read_text()):
        assert not anchored(text)
        assert yaml.safe_load(text) == json.loads(as_json.stdout)
    setup_seed(cluster, certs)
    r = run_cli(["merge", "--apply", "--yes", "--backup-dir", str(tmp_path / "b"), "-n", cluster.ns("team-a")],
                cluster.env)
    assert r.status == 0, r.stderr
    backup = [l for l in r.stderr.splitlines() if l.startswith("backup written to ")][0].split()[-1]
    assert not anchored(open(backup).read())


def test_the_readme_examples_are_clean_after_the_merge(tmp_path) -> None:
    """merge --plan on examples/, its writes applied to the manifests, then check: the merged
    group's hazard is gone and no finding of any kind is new (the portal listeners' certificate
    does not list *.example.net, so that group is declined, with the way out, instead of a
    wildcard listener check would flag GWD0106)."""
    from conftest import ROOT

    examples = [os.path.join(ROOT, "examples", f) for f in sorted(os.listdir(os.path.join(ROOT, "examples")))]
    r = run_cli(["merge", "--plan", "-o", "json", *sum((["-f", f] for f in examples), [])])
    assert r.status == 0, r.stderr
    assert "not merged: portal/portal/api, portal/portal/docs: the merged listener would serve *.example.net" \
        in r.stderr and "reissue it with *.example.net to merge" in r.stderr
    doc = json.loads(r.stdout)
    assert doc["steps"], r.stderr
    docs = [d for f in examples for d in yaml.safe_load_all(open(f)) if d]
    after = tmp_path / "after.yaml"
    after.write_text(yaml.safe_dump_all(apply_steps(docs, doc["steps"])))

    def findings(paths):
        out = run_cli(["check", "-o", "json", *sum((["-f", p] for p in paths), [])])
        return {(f["code"], f["resource"], tuple(f.get("hosts", ()))) for f in json.loads(out.stdout)["findings"]}
    before, now = findings(examples), findings([str(after)])
    assert now < before, now - before  # nothing new, and something gone
    merged = {s["namespace"] for s in doc["steps"]}
    assert not [f for f in now if f[1].split(" ", 1)[1].split("/")[0] in merged], now


def test_output_dir_applied_by_kubectl_is_the_plan(cluster, certs, tmp_path) -> None:
    """`merge --plan --output-dir DIR`, applied with the real kubectl (`apply -f DIR`, then
    `delete -f DIR/delete`), leaves every object as the plan's last write of it and the others
    deleted, and `check` clean; the writes go in the plan's order, one file each."""
    from test_kubeconfig import KUBECTL, kubectl

    if KUBECTL is None:
        pytest.skip("kubectl not installed")
    setup_seed(cluster, certs)
    scope = ["-n", cluster.ns("team-a")]
    out = tmp_path / "merge"
    r = run_cli(["merge", "--plan", "-o", "yaml", "--output-dir", str(out), *scope], cluster.env)
    assert r.status == 0, r.stderr
    steps = yaml.safe_load(r.stdout)["steps"]
    files = sorted(os.listdir(out))
    assert files == sorted(f"{i:03d}-{s['phase']}-{s['kind'].lower()}-{s['namespace']}-{s['name']}.yaml"
                           for i, s in enumerate(steps, 1) if s["action"] != "delete") + ["delete"]
    assert run_cli(["merge", "--plan", "--output-dir", str(out), *scope], cluster.env).status == 2  # not empty
    env = {k: v for k, v in cluster.env.items() if k != "HOME"}
    # --validate=false: the emulator serves no /openapi document for kubectl to check fields against
    applied = kubectl("apply", "--validate=false", "-f", str(out), env=env)
    assert applied.returncode == 0, applied.stderr
    deleted = kubectl("delete", "-f", str(out / "delete"), env=env)
    assert deleted.returncode == 0, deleted.stderr
    want = {}
    for s in steps:
        want[(s["kind"], s["namespace"], s["name"])] = s.get("spec") if s["action"] == "update" else None
    got = snapshot(cluster)
    for key, spec in want.items():
        if spec is None:
            assert key not in got, key
        else:
            assert got[key][0] == spec, key
    assert run_cli(["check", *scope], cluster.env).status == 0
