"""Merge plans: hazard groups -> one server for their hosts, in writes with no outage window. Pure.

Servers connected by hazards (same workload and port) are merged with every other server of
their Gateways: TLS-terminating servers with the same TLS settings and the same certificate
become ONE server (one filter chain, one route table), the fix Istio recommends; other servers
(an HTTP redirect on port 80, say) are carried over without duplication.

Where the merge goes, and in which order it is written, is decided by what istiod does between
two writes. istiod keeps the OLDEST of two TLS servers listing one host (mergeGateways,
CheckDuplicates) and drops the newer one whole. So the merged server goes into the group's
oldest Gateway, in place (a new Gateway would be the newest, and dropped while any old server
still lists one of its hosts), and the writes run in four phases:

1. bind: every VirtualService bound to a Gateway of the group is bound to the target too, in
   addition (the target's server does not list those hosts yet: nothing they answer changes);
2. merge: the target gets the merged servers; from this write on its server is the oldest to
   list every host of the group, so istiod drops the other servers whole and each host moves
   to the merged chain at once, with its routes already bound;
3. unbind: the VirtualServices drop the old Gateways' names (their servers are dropped);
4. delete: the old Gateways go, last, so a failure before them leaves nothing to re-create.

A plan is simulated before anyone sees it, with the API server's semantics (an updated object
keeps its creationTimestamp, so istiod's orders are kept) and istiod's route composition (every
bound VirtualService's routes appended in creation order, catch-all routes last): at the end of
every phase, every name the group serves must be answered exactly as before (same chain, same
virtual-host domain, same routes), and no hazard may remain among the merged servers. Within the
bind phase each write only adds bindings to a table whose hosts do not change, so its domains
and route lists only grow from the phase's first state towards its last: when both ends answer
a name alike, every state between does too. The unbind and delete phases touch only servers
istiod already dropped. A group that fails, or whose servers need different certificates or TLS
settings, is explained and left alone: a plan never changes which backend a host reaches.
"""
from __future__ import annotations

import copy
import json
from typing import AbstractSet, Any, Dict, Iterable, List, Mapping, Optional, Sequence, Set, Tuple

from ..hosts import bare_host, cert_covers, istio_intersection, parent
from ..inventory import RawObjects, build_inventory
from ..model import Finding, Inventory, Placement
from ..objects import resolve_gateway_name
from .merge_listeners import ListenerMerges
from .merge_steps import (PHASES, SINGLE, Answer, MergePlan, MergeUnit, Step, answers, describe, has_listeners,
                          hazard_units, unit_key)

CREDENTIAL_KEYS = ("credentialName", "credentialNames", "serverCertificate", "privateKey", "caCertificates")
ROUTE_KINDS = ("http", "tls", "tcp")


def _gw_key(obj: Mapping[str, Any], default_ns: str) -> str:
    m = obj["metadata"]
    return f"{m.get('namespace') or default_ns}/{m['name']}"


def istiod_order(obj: Mapping[str, Any], default_ns: str) -> Tuple[str, str, str]:
    """istiod's order of Gateways (and VirtualServices): creationTimestamp, name, namespace."""
    m = obj.get("metadata") or {}
    return (str(m.get("creationTimestamp") or ""), str(m.get("name")), str(m.get("namespace") or default_ns))


def _tls_settings(tls: Mapping[str, Any]) -> str:
    return json.dumps({k: v for k, v in tls.items() if k not in CREDENTIAL_KEYS}, sort_keys=True)


def _rehome(host: str, old_ns: str) -> str:
    """A host as istiod sanitizes it (sanitizeServerHostNamespace), so it keeps its meaning in
    another Gateway and compares equal to the old server's host in istiod's duplicate check."""
    if host.startswith("./"):
        return f"{old_ns}/{host[2:]}"
    if host.startswith("*/"):
        return host[2:] if host != "*/*" else "*"
    return host


def _certificate_identity(placements: Iterable[Placement]) -> Tuple[str, ...]:
    fps = sorted({c.fingerprint for p in placements for c in p.certificates})
    if fps:
        return tuple(fps)
    return tuple(sorted({str(c) for p in placements for c in p.credentials}))


def plan_merge(raw: RawObjects, inventory: Inventory, findings: Sequence[Finding], *,
               prefer_cert: Optional[str] = None) -> MergePlan:
    plan = MergePlan()
    gateways = {_gw_key(g, raw.default_namespace): g for g in raw.gateways}
    placements: Dict[Tuple[str, int], List[Placement]] = {}
    for p in inventory.placements:
        placements.setdefault((p.server.ref.gateway.key, p.server.ref.index), []).append(p)
    touched: Set[Tuple[str, str]] = set()  # VirtualServices a kept unit writes
    sim = _Simulator(raw, inventory)
    listener_units: List[MergeUnit] = []
    listener_merges: Optional[ListenerMerges] = None
    by_key: Optional[Dict[str, List[Finding]]] = None  # findings by merge-unit key, for listener groups
    for unit_keys in hazard_units(findings):
        if has_listeners(unit_keys):
            if by_key is None:
                by_key = {}
                for f in findings:
                    if "outcome" in f.detail:
                        for k in {unit_key(s) for s in f.detail["from"] + f.detail["to"]}:
                            by_key.setdefault(k, []).append(f)
            mine = list({id(f): f for k in sorted(unit_keys) for f in by_key.get(k, ())}.values())
            listener_merges = listener_merges or ListenerMerges(raw, inventory)
            unit = listener_merges.plan(mine, plan.notes)
            if unit is not None:
                listener_units.append(unit)
            continue
        unit = _plan_unit(plan, raw, gateways, placements, unit_keys, prefer_cert, touched, sim)
        if unit is not None:
            plan.units.append(unit)
            touched.update((s.key[1], s.key[2]) for s in unit.steps if s.key[0] == "VirtualService")
    if len(plan.units) > 1:  # each unit's every write was checked alone; now the phase ends together
        problem = sim.check(plan.units, every_write=False)
        if problem:
            plan.notes.append(f"not merged: the groups together: {problem}")
            plan.units = []
    # a listener group was simulated against the mesh as read; one on pods an Istio group is
    # merging too (a Gateway on named Services) waits for the next run rather than be guessed
    merged_pods = {p.listener.workload for u in plan.units for g in [u.target] + u.deleted
                   for i in range(len((g.get("spec") or {}).get("servers") or []))
                   for p in placements.get((_gw_key(g, raw.default_namespace), i), ())}
    shared: List[MergeUnit] = []
    if merged_pods and any((u.target.get("spec") or {}).get("addresses") for u in listener_units):
        pods_of: Dict[str, Set[Any]] = {}
        for p in inventory.placements:
            o = p.server.ref.origin
            if o is not None:
                pods_of.setdefault(f"{o.namespace}/{o.name}", set()).add(p.listener.workload)
        shared = [u for u in listener_units if pods_of.get(_gw_key(u.target, raw.default_namespace), set()) & merged_pods]
    if shared:
        plan.notes += [f"not merged now: Gateway {_gw_key(u.target, raw.default_namespace)} shares gateway pods with "
                       "the Istio Gateways merged by this plan: run merge again once they are" for u in shared]
        listener_units = [u for u in listener_units if u not in shared]
    plan.units += listener_units
    return plan


def _plan_unit(plan: MergePlan, raw: RawObjects, gateways: Dict[str, Dict[str, Any]],
               placements: Dict[Tuple[str, int], List[Placement]], keys: Set[str], prefer_cert: Optional[str],
               touched: Set[Tuple[str, str]], sim: "_Simulator") -> Optional[MergeUnit]:
    ns0 = raw.default_namespace
    members = sorted((gateways[k] for k in keys if k in gateways), key=lambda g: istiod_order(g, ns0))
    label = ", ".join(sorted(keys))
    workloads = {tuple(sorted(str(p.listener.workload.key) for p in placements.get((k, i), [])))
                 for k in keys for i in range(len((gateways[k].get("spec") or {}).get("servers") or []))}
    if len(workloads) > 1:
        plan.notes.append(f"not merged: {label}: the Gateways select different gateway workloads")
        return None
    unit = _unit(plan, raw, members, placements, prefer_cert, label, touched, {}, sim)
    if unit is None:
        return None
    problem = sim.check([unit])
    if problem:
        # VirtualServices of different namespaces sharing a virtual host: `ns/host` keeps each
        # host to the namespace whose VirtualServices answered it on its own server
        spelling = _qualified(members, sim.vs_by_gateway, ns0)
        second = _unit(plan, raw, members, placements, prefer_cert, label, touched, spelling, sim) if spelling else None
        if second is None or sim.check([second]):
            plan.notes.append(f"not merged: {label}: {problem}")
            return None
        unit = second
    return unit


def _qualified(members: List[Dict[str, Any]], vs_by_gateway: Mapping[str, List[Mapping[str, Any]]],
               ns0: str) -> Dict[Tuple[str, int, str], str]:
    """(Gateway, server index, host) -> `ns/host`, for each bare host of a terminating server
    whose routes, on its own Gateway, come from VirtualServices of one namespace only."""
    out: Dict[Tuple[str, int, str], str] = {}
    for gw in members:
        key, gw_ns = _gw_key(gw, ns0), gw["metadata"].get("namespace") or ns0
        for i, server in enumerate((gw.get("spec") or {}).get("servers") or []):
            tls = server.get("tls") or {}
            if str((server.get("port") or {}).get("protocol", "")).upper() != "HTTPS" or not tls or \
                    tls.get("mode") in ("PASSTHROUGH", "AUTO_PASSTHROUGH"):
                continue
            for h in server.get("hosts") or []:
                bare = _rehome(h, gw_ns)
                if "/" in bare:
                    continue
                spaces = {(vs.get("metadata") or {}).get("namespace") or ns0 for vs in vs_by_gateway.get(key, ())
                          if istio_intersection([bare], [str(x) for x in (vs.get("spec") or {}).get("hosts") or []])}
                if len(spaces) == 1:
                    out[(key, i, h)] = f"{spaces.pop()}/{bare}"
    return out


def _unit(plan: MergePlan, raw: RawObjects, members: List[Dict[str, Any]],
          placements: Dict[Tuple[str, int], List[Placement]], prefer_cert: Optional[str], label: str,
          touched: Set[Tuple[str, str]], spelling: Mapping[Tuple[str, int, str], str],
          sim: "_Simulator") -> Optional[MergeUnit]:
    """The unit's writes, with the host spellings given (an old Gateway whose hosts are spelled
    anew is rewritten in place first, so istiod's duplicate check still sees the same hosts)."""
    ns0 = raw.default_namespace
    respelled = []
    for gw in members:
        key = _gw_key(gw, ns0)
        spec = copy.deepcopy(gw.get("spec") or {})
        for i, server in enumerate(spec.get("servers") or []):
            server["hosts"] = [spelling.get((key, i, h), h) for h in server.get("hosts") or []]
        respelled.append(dict(gw, spec=spec))
    servers = _merged_servers(plan if not spelling else MergePlan(), respelled, placements, prefer_cert, label, ns0)
    if servers is None:
        return None
    target, others = members[0], members[1:]
    target_ref = _gw_key(target, ns0)
    old = {_gw_key(g, ns0) for g in others}
    steps: List[Step] = []
    naming = {id(v): v for k in old for v in sim.vs_by_gateway.get(k, ())}
    for vs in sorted(naming.values(), key=lambda v: istiod_order(v, ns0)):
        bound = rewrite_virtual_service(vs, old, target_ref, ns0, keep_old=True)
        final = rewrite_virtual_service(vs, old, target_ref, ns0)
        if final is None:
            continue
        m = vs["metadata"]
        if (m.get("namespace") or ns0, m["name"]) in touched:
            plan.notes.append(f"not merged: {label}: VirtualService {m.get('namespace') or ns0}/{m['name']} "
                              "is rewritten by another group too; merge them one at a time")
            return None
        if bound is not None and bound["spec"] != vs.get("spec"):
            steps.append(Step("bind", "update", vs, bound["spec"]))
        steps.append(Step("unbind", "update", vs, final["spec"]))
    steps += [Step("qualify", "update", g, r["spec"]) for g, r in zip(others, respelled[1:])
              if r["spec"] != (g.get("spec") or {})]
    steps.append(Step("merge", "update", target, dict(copy.deepcopy(target.get("spec") or {}), servers=servers)))
    steps += [Step("delete", "delete", g) for g in others]
    return MergeUnit(target, steps, others)


def _merged_servers(plan: MergePlan, members: List[Dict[str, Any]], placements: Dict[Tuple[str, int], List[Placement]],
                    prefer_cert: Optional[str], label: str, ns0: str) -> Optional[List[Dict[str, Any]]]:
    """The target's servers after the merge (the target's own first, its port names kept), or
    None with a note when servers of one port present different certificates."""
    servers: List[Dict[str, Any]] = []
    by_key: Dict[Tuple[Any, ...], Dict[str, Any]] = {}
    cert_of: Dict[Tuple[Any, ...], Tuple[str, ...]] = {}
    holder: Dict[Tuple[Any, ...], Optional[Placement]] = {}  # whose certificate the merged server presents
    added: Dict[Tuple[Any, ...], List[str]] = {}  # hosts that move onto it from another Gateway
    for gw in members:
        gw_ns = gw["metadata"].get("namespace") or ns0
        gw_key = f"{gw_ns}/{gw['metadata']['name']}"
        for i, s in enumerate((gw.get("spec") or {}).get("servers") or []):
            port = s.get("port") or {}
            tls = s.get("tls") or {}
            ps = placements.get((gw_key, i), [])
            terminating = bool(ps) and ps[0].server.http_routed
            identity = _certificate_identity(ps) if terminating else ()
            key = (port.get("number"), str(port.get("protocol", "")).upper(), _tls_settings(tls),
                   s.get("bind", ""), json.dumps(tls, sort_keys=True) if not terminating else "")
            hosts = [_rehome(h, gw_ns) for h in s.get("hosts") or []]
            if key in by_key:
                if terminating and cert_of[key] == identity and (by_key[key].get("tls") or {}).get(
                        "credentialName") != tls.get("credentialName"):
                    plan.notes.append(f"{tls.get('credentialName')} holds the same certificate as "
                                      f"{by_key[key]['tls'].get('credentialName')}, which the merged server uses")
                if terminating and cert_of[key] != identity:
                    chosen = _prefer(prefer_cert, by_key[key], s, placements)
                    if chosen is None:
                        plan.notes.append(
                            f"not merged: {label}: servers on port {port.get('number')} present different "
                            "certificates, and merging would change the certificate some hosts get; "
                            + (f"--prefer-cert {prefer_cert} is not valid for all their hosts; give one that is"
                               if prefer_cert else "give --prefer-cert SECRET (valid for all their hosts)")
                            + " or use apply-421")
                        return None
                    by_key[key]["tls"] = chosen
                    holder[key] = None  # --prefer-cert: checked valid for every host above
                merged = by_key[key]
                moved = [h for h in hosts if h not in merged["hosts"]]
                merged["hosts"] += moved
                added.setdefault(key, []).extend(moved)
                continue
            server = copy.deepcopy(s)
            server["hosts"] = list(dict.fromkeys(hosts))
            server["port"] = dict(port, name=_port_name(port.get("name") or "port", servers))
            by_key[key] = server
            cert_of[key] = identity
            holder[key] = ps[0] if terminating and ps[0].certificates and not ps[0].coverage_inferred else None
            servers.append(server)
    for key, moved in added.items():
        # a host moved onto a certificate that is not valid for it would trade the hazard for a
        # certificate error on every connection to it (GWD0106): decline, and say what would do
        p = holder.get(key)
        sans = {san for c in p.certificates for san in c.sans} if p is not None else set()
        missing = [h for h in moved if p is not None and not _valid(sans, bare_host(h))]
        if missing:
            names = ", ".join(sorted(sans))
            plan.notes.append(f"not merged: {label}: the merged server's certificate ({names}) is not valid for "
                              f"{', '.join(bare_host(h) for h in missing)}: reissue it with "
                              f"{' and '.join(bare_host(h) for h in missing)} to merge, or use apply-421")
            return None
    for s in servers:
        bare = [bare_host(h) for h in s["hosts"]]
        if len(set(bare)) < len(bare):
            plan.notes.append(f"merged server {s['port']['name']} lists a host under two namespaces")
    return servers


def _prefer(prefer: Optional[str], kept: Dict[str, Any], other: Dict[str, Any],
            placements: Mapping[Any, List[Placement]]) -> Optional[Dict[str, Any]]:
    """The TLS block of --prefer-cert, when its certificate is valid for every host merged."""
    if not prefer:
        return None
    holders = [p for group in placements.values() for p in group
               if any(c.name == prefer for c in p.credentials) and p.certificates]
    if not holders:
        return None
    sans = {san for c in holders[0].certificates for san in c.sans}
    hosts = [bare_host(h) for h in list(kept.get("hosts") or []) + list(other.get("hosts") or [])]
    if not all(_valid(sans, h) for h in hosts):
        return None
    tls = dict(next(s.get("tls") or {} for s in (kept, other)))
    for k in CREDENTIAL_KEYS:
        tls.pop(k, None)
    tls["credentialName"] = prefer
    return tls


def _valid(sans: AbstractSet[str], host: str) -> bool:
    """A certificate of these SANs is valid for a host a merged server would list: a wildcard
    host (or `*`) needs that very pattern among them; a name, a SAN covering it (SANs are read
    lower-case; names compare so)."""
    host = host.lower()
    return host in sans if host.startswith("*") else any(cert_covers(san, host) for san in sans)


def _port_name(name: str, servers: List[Dict[str, Any]]) -> str:
    taken = {s["port"].get("name") for s in servers}
    if name not in taken:
        return name
    n = 2
    while f"{name}-{n}" in taken:
        n += 1
    return f"{name}-{n}"


def rewrite_virtual_service(vs: Dict[str, Any], old: Set[str], new: str, default_ns: str,
                            keep_old: bool = False) -> Optional[Dict[str, Any]]:
    """The VirtualService with its references to the old Gateways pointing at the new one, or
    None when it names none of them. With keep_old, the new reference is added after the old
    ones instead of replacing them (the bind phase).

    A bare name means the VirtualService's own namespace; `mesh` is kept; duplicates go, order
    otherwise stays. The new reference is written `ns/name`, explicit in any namespace.
    """
    ns = (vs.get("metadata") or {}).get("namespace") or default_ns
    after = copy.deepcopy(vs)
    changed = False

    def fix(refs: List[str]) -> List[str]:
        nonlocal changed
        out = []
        for r in refs:
            if r != "mesh" and resolve_gateway_name(r, ns) in old:
                changed = True
                if keep_old and r not in out:
                    out.append(r)
                r = new
            if r not in out and not (r == new and new in {resolve_gateway_name(x, ns) for x in out}):
                out.append(r)
        return out

    spec = after.get("spec") or {}
    if spec.get("gateways"):
        spec["gateways"] = fix(list(spec["gateways"]))
    for kind in ROUTE_KINDS:
        for route in spec.get(kind) or []:
            for match in route.get("match") or []:
                if match.get("gateways"):
                    match["gateways"] = fix(list(match["gateways"]))
    if not changed:
        return None
    after.pop("status", None)
    return after


# --- simulation ------------------------------------------------------------------------------



class _Simulator:
    """Answers for names before and after writes, through the same inventory build `check` uses,
    on the objects a plan's names depend on (the Gateways listing a matching host, and the
    VirtualServices bound to them), so a check costs what its group costs, not the mesh."""

    def __init__(self, raw: RawObjects, inventory: Inventory) -> None:
        self.raw = raw
        self.ns0 = raw.default_namespace
        self.by_host: Dict[str, List[Mapping[str, Any]]] = {}
        for g in raw.gateways:
            for s in ((g.get("spec") or {}).get("servers") or []):
                for h in (s.get("hosts") or []) if isinstance(s, dict) else []:
                    self.by_host.setdefault(bare_host(str(h)), []).append(g)
        self.vs_by_gateway: Dict[str, List[Mapping[str, Any]]] = {}  # every VirtualService naming it
        for vs in inventory.virtual_services:
            for gw in set(vs.gateways) | set(vs.route_gateways):
                self.vs_by_gateway.setdefault(gw, []).append(vs.raw)
        self.placements: Dict[str, List[Placement]] = {}
        for p in inventory.placements:
            self.placements.setdefault(p.server.ref.gateway.key, []).append(p)

    def _names(self, units: Sequence[MergeUnit]) -> Set[str]:
        """The group's concrete hosts, the names its certificates and VirtualServices list, and
        one stand-in name under every wildcard (a wildcard server answers names nobody lists)."""
        keys = {_gw_key(g, self.ns0) for u in units for g in [u.target] + u.deleted}
        names: Set[str] = set()
        for p in (p for k in keys for p in self.placements.get(k, ())):
            for h in list(p.server.hosts) + list(p.coverage):
                h = bare_host(h)
                names.add(f"gwdup-sample.{h[2:]}" if h.startswith("*.") else h)
        for k in keys:
            for vs in self.vs_by_gateway.get(k, ()):
                hosts = (vs.get("spec") or {}).get("hosts") or []
                names.update(str(h).lower() for h in hosts if not str(h).startswith("*"))
        return {n for n in names if n != "*"}

    def _scope(self, units: Sequence[MergeUnit], names: Set[str]) -> Tuple[List[Mapping[str, Any]], List[Mapping[str, Any]]]:
        """Gateways whose hosts can take one of the names (exact, a wildcard suffix, or `*`), with
        every Gateway of the groups, and the VirtualServices bound to any of them."""
        picked: Dict[int, Mapping[str, Any]] = {}
        for u in units:
            for g in [u.target] + u.deleted:
                picked[id(g)] = g
        for n in names:
            candidates = [n, "*"]
            s = n
            while s:
                s = parent(s)
                candidates.append(f"*.{s}" if s else "*")
            for c in candidates:
                for g in self.by_host.get(c, ()):
                    picked[id(g)] = g
        gws = list(picked.values())
        vss: Dict[int, Mapping[str, Any]] = {}
        for g in gws:
            for vs in self.vs_by_gateway.get(_gw_key(g, self.ns0), ()):
                vss[id(vs)] = vs
        return gws, list(vss.values())

    def _answers(self, gateways: List[Mapping[str, Any]], vss: List[Mapping[str, Any]], names: Set[str]) -> Dict[Tuple[str, str], Answer]:
        raw = copy.copy(self.raw)
        raw.gateways, raw.virtual_services = list(gateways), list(vss)
        raw.origin = dict(self.raw.origin)
        raw.notes = []
        raw._servers = None
        return answers(build_inventory(raw), names)

    def _apply(self, gateways: List[Mapping[str, Any]], vss: List[Mapping[str, Any]],
               steps: Sequence[Step]) -> Tuple[List[Mapping[str, Any]], List[Mapping[str, Any]]]:
        """The objects once `steps` are written as the API server writes them: an update keeps
        the object's metadata (creationTimestamp, so istiod's orders stay), a delete removes it."""
        gws, vs_out = {id(g): g for g in gateways}, {id(v): v for v in vss}
        for s in steps:
            bucket = gws if s.before["kind"] == "Gateway" else vs_out
            if s.action == "delete":
                bucket.pop(id(s.before), None)
            else:
                # keyed by the object as read: a later step on the same object replaces this one
                bucket[id(s.before)] = {**bucket.get(id(s.before), s.before), "spec": s.spec}
        return list(gws.values()), list(vs_out.values())

    def check(self, units: Sequence[MergeUnit], every_write: bool = True) -> str:
        """'' when every phase end (and, with every_write, each write of the single-write
        phases) answers every name as before and no hazard remains."""
        from ..analysis import registry

        names = self._names(units)
        gws, vss = self._scope(units, names)
        before = self._answers(gws, vss, names)
        done: List[Step] = []
        states: List[Tuple[str, List[Step]]] = []
        for phase in PHASES:
            for s in (s for u in units for s in u.steps if s.phase == phase):
                done.append(s)
                if phase in SINGLE and every_write:
                    states.append((f"{s.phase} write of {s.key[0]} {s.key[1]}/{s.key[2]}", list(done)))
            if not states or states[-1][1] != done:
                states.append((f"{phase} writes", list(done)))
        for what, steps in states:
            g_now, v_now = self._apply(gws, vss, steps)
            now = self._answers(g_now, v_now, names)
            for key in sorted(set(before) | set(now)):
                was, is_ = before.get(key, ("no chain",)), now.get(key, ("no chain",))
                if was != is_:
                    return (f"after the {what}, {key[1]} on {key[0]} would be answered by "
                            f"{describe(is_)} instead of {describe(was)}")
        raw = copy.copy(self.raw)
        raw.gateways, raw.virtual_services = g_now, v_now
        raw.origin, raw.notes, raw._servers = dict(self.raw.origin), [], None
        targets = {_gw_key(u.target, self.ns0) for u in units}
        for f in registry.run(build_inventory(raw)).findings:
            gws_of = {s["gateway"] for s in f.detail.get("from", []) + f.detail.get("to", [])}
            if targets & gws_of and "outcome" in f.detail:
                return f"a hazard would remain ({f.message})"
            if f.code in ("GWD0103", "GWD0105") and f.resource.key in targets:
                return f"the merged Gateway would be rejected ({f.message})"
        return ""
