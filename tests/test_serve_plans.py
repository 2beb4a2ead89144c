"""Property tests of serve's pure parts: the change diff, the listener-condition planner (driven
to convergence through the emulator's own server-side apply, which never imports the
project), and the Event limiter; and the emulator's field ownership against the rules it
cites."""
from __future__ import annotations

import copy
from typing import Any, Dict, List

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emulator.fieldmanager import ApplyConflict, FieldManager
from kubectl_gwdup.analysis.changes import Change, diff, identity
from kubectl_gwdup.catalogue import COALESCED_MISROUTED, COALESCED_NOT_FOUND
from kubectl_gwdup.model import Ref
from kubectl_gwdup.plans import hazard_events, listener_status

GATEWAYS = ["a/gw1", "a/gw2", "b/gw3", "c/gw4"]


@st.composite
def findings(draw):
    out = []
    for _ in range(draw(st.integers(0, 6))):
        kind = draw(st.sampled_from([COALESCED_NOT_FOUND, COALESCED_MISROUTED]))
        frm = draw(st.lists(st.sampled_from(GATEWAYS), min_size=1, max_size=2, unique=True))
        to = draw(st.lists(st.sampled_from(GATEWAYS), min_size=1, max_size=2, unique=True))
        hosts = draw(st.lists(st.sampled_from(["a.x.com", "b.x.com", "*.x.com"]), min_size=1, max_size=2, unique=True))
        detail = {"outcome": "NotFound" if kind is COALESCED_NOT_FOUND else "Misrouted", "workload": "istio-system/ig",
                  "listenerPort": 8443, "hosts": hosts,
                  "from": [{"gateway": g, "server": 0, "portNumber": 443} for g in frm],
                  "to": [{"gateway": g, "server": 0, "portNumber": 443} for g in to],
                  "mitigation": {"method": "vhost"} if draw(st.booleans()) else None}
        ns, name = frm[0].split("/")
        out.append(kind.finding(Ref("Gateway", ns, name), detail=detail, hosts=",".join(hosts), to=",".join(to),
                                from_=",".join(frm), requests=draw(st.sampled_from(["", " (" + "x" * 2000 + ")"]))))
    return out


@settings(max_examples=200, deadline=None)
@given(findings(), findings())
def test_diff_partitions_before_and_after(before, after) -> None:
    changes = diff(before, after)
    assert diff(after, after) == []
    ids_before, ids_after = {identity(f) for f in before}, {identity(f) for f in after}
    appeared = {identity(c.finding) for c in changes if c.change is Change.APPEARED}
    gone = {identity(c.finding) for c in changes if c.change is Change.DISAPPEARED}
    assert appeared == ids_after - ids_before and gone == ids_before - ids_after
    for c in changes:
        if c.change in (Change.MITIGATED, Change.UNMITIGATED):
            assert identity(c.finding) in ids_before & ids_after
            assert bool(c.finding.detail.get("mitigation")) == (c.change is Change.MITIGATED)


# -- the listener condition, driven through server-side apply -------------------------------------
LISTENERS = ["l1", "l2", "l3", "l4"]


@st.composite
def gateway_state(draw):
    reported = draw(st.lists(st.sampled_from(LISTENERS), unique=True))
    wanted = {x: draw(st.sampled_from(["OverlappingCertificates", "OverlappingHostnames"]))
              for x in draw(st.lists(st.sampled_from(LISTENERS), unique=True))}
    foreign = draw(st.lists(st.sampled_from(reported), unique=True)) if reported else []
    return reported, wanted, foreign


def _gateway(reported: List[str], foreign: List[str]) -> Dict[str, Any]:
    listeners = []
    for name in reported:
        conds = [{"type": "Accepted", "status": "True", "reason": "Accepted", "message": "",
                  "lastTransitionTime": "2026-01-01T00:00:00Z"}]
        if name in foreign:
            conds.append({"type": "Programmed", "status": "True", "reason": "Programmed", "message": "",
                          "lastTransitionTime": "2026-01-01T00:00:00Z"})
        listeners.append({"name": name, "attachedRoutes": 0, "supportedKinds": [], "conditions": conds})
    return {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
            "metadata": {"name": "gw", "namespace": "ns", "generation": 3},
            "spec": {"listeners": [{"name": x} for x in LISTENERS]}, "status": {"listeners": listeners}}


def _entries(wanted: Dict[str, str]) -> List[Dict[str, Any]]:
    return [{"gateway": "ns/gw", "listener": x, "kind": "Gateway.gateway.networking.k8s.io",
             "condition": {"type": "OverlappingTLSConfig", "status": "True", "reason": r, "message": f"overlaps {x}"}}
            for x, r in wanted.items()]


def _others(obj: Dict[str, Any]) -> Dict[str, List[Dict[str, Any]]]:
    return {x["name"]: [c for c in x["conditions"] if c["type"] != "OverlappingTLSConfig"]
            for x in obj["status"]["listeners"]}


def _ours(obj: Dict[str, Any]) -> Dict[str, str]:
    return {x["name"]: c["reason"] for x in obj["status"]["listeners"] for c in x["conditions"]
            if c["type"] == "OverlappingTLSConfig"}


@settings(max_examples=200, deadline=None)
@given(gateway_state(), gateway_state())
def test_condition_applies_converge_and_touch_nothing_else(first, second) -> None:
    reported, wanted, foreign = first
    obj = _gateway(reported, foreign)
    fm = FieldManager()
    fm.update("istiod", {}, obj, "status")
    applied: Dict[Any, Any] = {}
    for wanted_now in (wanted, second[1]):
        for _ in range(3):  # each round: plan, apply what it says; the third must say nothing
            applies = listener_status.plan(_entries(wanted_now), [obj], "2026-12-05T00:00:00Z", applied)
            before = copy.deepcopy(obj)
            for a in applies:
                obj = fm.apply(listener_status.FIELD_MANAGER, obj, a.body, force=False, subresource="status")
                applied[a.key()] = a.fingerprint
            assert _others(obj) == _others(before), "other conditions untouched"
        assert listener_status.plan(_entries(wanted_now), [obj], "2026-12-05T00:00:00Z", applied) == []
        assert _ours(obj) == {x: r for x, r in wanted_now.items() if x in reported}
        assert [x["name"] for x in obj["status"]["listeners"]] == reported, "no listener status made up"


def test_a_restarted_server_clears_a_condition_it_no_longer_wants() -> None:
    """After a restart nothing is known of past applies: a condition shown and not wanted is
    cleared by one apply (server-side apply removes it only if this manager owned it)."""
    obj = _gateway(["l1"], [])
    fm = FieldManager()
    fm.update("istiod", {}, obj, "status")
    (a,) = listener_status.plan(_entries({"l1": "OverlappingHostnames"}), [obj], "t", {})
    obj = fm.apply(listener_status.FIELD_MANAGER, obj, a.body, force=False, subresource="status")
    (clear,) = listener_status.plan([], [obj], "t", {})
    assert clear.listeners == ()
    obj = fm.apply(listener_status.FIELD_MANAGER, obj, clear.body, force=False, subresource="status")
    assert _ours(obj) == {}
    assert listener_status.plan([], [obj], "t", {clear.key(): clear.fingerprint}) == []


# -- Events --------------------------------------------------------------------------------------
@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["gw1", "gw2"]), st.integers(0, 40), st.floats(0, 5000)), max_size=200))
def test_the_limiter_bounds_events_per_gateway(sends) -> None:
    limiter = hazard_events.Limiter(burst=5, refill=300.0)
    admitted: Dict[str, List[float]] = {}
    names = set()
    now = 0.0
    for gw, n, dt in sends:
        now += dt
        event = {"metadata": {"namespace": "ns", "name": f"{gw}.gwdup-{n}"}, "regarding": {"namespace": "ns", "name": gw}}
        if limiter.admit(event, now) is None:
            assert (gw, n) not in names, "a duplicate admitted"
            names.add((gw, n))
            admitted.setdefault(gw, []).append(now)
    for times in admitted.values():
        for i, t in enumerate(times):  # in any window, at most burst + what the window refilled
            for j in range(i, len(times)):
                assert j - i + 1 <= 5 + (times[j] - t) / 300.0 + 1e-9


@settings(max_examples=100, deadline=None)
@given(findings(), findings())
def test_events_are_what_the_api_server_accepts(before, after) -> None:
    """Each event passes the emulator's events.k8s.io validation (ValidateEventCreate), is named
    as a DNS subdomain, and names the same news the same way twice."""
    import re

    from emulator.server import Emulator

    gateways = {tuple(g.split("/")): {"apiVersion": "networking.istio.io/v1", "kind": "Gateway",
                                      "metadata": {"namespace": g.split("/")[0], "name": g.split("/")[1],
                                                   "uid": "u-" + g}} for g in GATEWAYS}
    changes = diff(before, after)
    made = hazard_events.events(changes, gateways, "pod-1", "2026-12-05T00:00:00.000000Z")
    for e in made:
        Emulator._validate_event(None, e)  # raises ApiError 422 on what the API server refuses
        assert re.match(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$", e["metadata"]["name"]) and len(e["metadata"]["name"]) <= 253
        assert e["regarding"]["uid"] == "u-" + e["regarding"]["namespace"] + "/" + e["regarding"]["name"]
    again = hazard_events.events(changes, gateways, "pod-2", "2026-12-05T00:00:01.000000Z")
    assert [e["metadata"]["name"] for e in again] == [e["metadata"]["name"] for e in made]


# -- the emulator's field ownership --------------------------------------------------------------
def test_field_manager_rules() -> None:
    fm = FieldManager()
    obj = fm.apply("a", {}, {"spec": {"x": 1, "y": 2}}, force=False)
    fm.update("b", obj, {**obj, "spec": {"x": 1, "y": 2, "z": 3}})
    obj = {**obj, "spec": {"x": 1, "y": 2, "z": 3}}
    obj = fm.apply("a", obj, {"spec": {"x": 1}}, force=False)  # a drops y: removed; b's z stays
    assert obj["spec"] == {"x": 1, "z": 3}
    with pytest.raises(ApplyConflict):
        fm.apply("c", obj, {"spec": {"z": 4}}, force=False)
    obj = fm.apply("c", obj, {"spec": {"z": 4}}, force=True)
    assert obj["spec"]["z"] == 4
    assert fm.apply("c", obj, {"spec": {"z": 4}}, force=False)["spec"]["z"] == 4, "c owns it now"
