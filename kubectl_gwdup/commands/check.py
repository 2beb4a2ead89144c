"""`kubectl gwdup check`: sources -> inventory -> analysis -> printer."""
from __future__ import annotations

import argparse
import os
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any, Dict, List, Optional, Sequence, Set, Tuple

from .. import controlplane, suppressions
from ..analysis import registry
from ..analysis.overlap import listener_conditions
from ..cli.flags import KubeFlags, OutputFlags, parse_duration
from ..env import Env
from ..errors import ExitStatus, GwdupError, UsageError
from ..inventory import RawObjects, Settings, build_inventory
from ..model import Finding, Input, Inventory, Level, Report
from ..objects import ShapeError, labels_of, object_ref, virtual_service
from ..render.printers import OutputFormat
from ..render.sarif import Position
from ..selectors import Selector, parse_selector

FAIL_LEVELS = {"info": Level.INFO, "warning": Level.WARNING, "error": Level.ERROR, "never": None}


@dataclass
class Options:
    kube: KubeFlags
    output: OutputFlags
    filenames: List[str] = field(default_factory=list)
    recursive: bool = False
    selector: str = ""
    fail_level: str = "warning"
    scope_gateway_to_namespace: bool = False
    secrets: str = "auto"  # with manifests: auto | complete | absent-are-unknown
    istio_version: str = ""  # --istio-version X.Y
    suppress: List[str] = field(default_factory=list)  # --suppress CODE=KIND/NS/NAME
    watch: bool = False  # -w/--watch
    dns_resolve: str = ""  # --resolve[=true|false]; "": on live, off with -f
    dns_default: str = ""  # GWDUP_RESOLVE: the default of --resolve, e.g. false in air-gapped CI
    resolve_from: List[str] = field(default_factory=list)  # hosts files
    nameservers: List[str] = field(default_factory=list)
    dns_timeout: str = "2s"
    all_contexts: bool = False  # --all-contexts
    watch_duration: str = "0"  # --watch-duration: 0, until interrupted

    @classmethod
    def from_args(cls, args: argparse.Namespace, env: Env) -> "Options":
        return cls(kube=KubeFlags.from_args(args, env.environ, env.stderr),
                   output=OutputFlags.from_args(args), filenames=list(args.filenames or []),
                   recursive=args.recursive, selector=args.selector, fail_level=args.fail_level,
                   scope_gateway_to_namespace=args.scope_gateway_to_namespace,
                   secrets=getattr(args, "secrets", None) or "auto",
                   istio_version=getattr(args, "istio_version", None) or "",
                   suppress=list(getattr(args, "suppress", None) or []),
                   watch=bool(getattr(args, "watch", False)),
                   watch_duration=getattr(args, "watch_duration", None) or "0",
                   dns_resolve=getattr(args, "resolve_dns", None) or "",
                   dns_default=env.environ.get("GWDUP_RESOLVE", "").lower(),
                   resolve_from=list(getattr(args, "resolve_from", None) or []),
                   nameservers=list(getattr(args, "nameserver", None) or []),
                   dns_timeout=getattr(args, "dns_timeout", None) or "2s",
                   all_contexts=bool(getattr(args, "all_contexts", False)))

    @property
    def fleet(self) -> bool:
        return self.all_contexts or len(set(self.kube.contexts)) > 1

    def validate(self) -> None:
        self.kube.fleet = type(self) is Options  # only check reads several clusters
        self.kube.validate()
        if self.fleet and self.filenames:
            raise UsageError("--context more than once and --all-contexts read clusters: they cannot go with -f")
        if self.fleet and self.watch:
            raise UsageError("--watch reads one cluster: give one --context")
        if self.all_contexts and self.kube.contexts:
            raise UsageError("--all-contexts cannot go with --context")
        self.output.validate()
        if self.fail_level not in FAIL_LEVELS:
            raise UsageError(f'invalid --fail-level "{self.fail_level}": one of {", ".join(FAIL_LEVELS)}')
        if self.recursive and not self.filenames:
            raise UsageError("-R/--recursive needs -f")
        if self.secrets not in SECRETS_MODES:
            raise UsageError(f'invalid --secrets "{self.secrets}": one of {", ".join(SECRETS_MODES)}')
        if self.istio_version and controlplane.parse_version(self.istio_version) is None:
            raise UsageError(f'invalid --istio-version "{self.istio_version}": use e.g. 1.31')
        if self.secrets != "auto" and not self.filenames:
            raise UsageError("--secrets goes with manifests (-f): the cluster says which Secrets exist")
        parse_selector(self.selector)
        for text in self.suppress:
            suppressions.parse_rule(text)
        if self.output.output == "sarif" and type(self) is not Options:
            raise UsageError("-o sarif is check's output format")
        parse_duration(self.watch_duration, "--watch-duration")
        if self.watch and self.filenames:
            raise UsageError("--watch reads the cluster: it cannot go with -f")
        if self.watch and self.output.output == "sarif":
            raise UsageError("--watch prints changes as they happen: use -o json or -o yaml, not sarif")
        if self.watch_duration != "0" and not self.watch:
            raise UsageError("--watch-duration goes with --watch")
        if self.dns_resolve not in ("", "true", "false"):
            raise UsageError(f'invalid --resolve "{self.dns_resolve}": true or false')
        if self.dns_default not in ("", "true", "false"):
            raise UsageError(f'invalid GWDUP_RESOLVE "{self.dns_default}": true or false')
        if not parse_duration(self.dns_timeout, "--dns-timeout"):
            raise UsageError("--dns-timeout must be more than 0")
        from ..sources.dns import parse_nameserver

        for ns in self.nameservers:
            parse_nameserver(ns)
        if self.watch and (self.dns_resolve == "true" or self.resolve_from or self.nameservers):
            raise UsageError("--watch does not resolve DNS yet: run check --resolve for the DNS labels")
        if self.dns_resolve == "false" and (self.resolve_from or self.nameservers):
            raise UsageError("--resolve=false cannot go with --resolve-from or --nameserver")

    @property
    def resolving(self) -> bool:
        """Whether hazards are labelled by DNS: asked for, or by default on a live cluster."""
        if self.dns_resolve:
            return self.dns_resolve == "true"
        if self.resolve_from or self.nameservers:
            return True
        if self.dns_default:
            return self.dns_default == "true"
        return not self.filenames and not self.watch

    @property
    def settings(self) -> Settings:
        return Settings(scope_gateway_to_namespace=self.scope_gateway_to_namespace)


SECRETS_MODES = ("auto", "complete", "absent-are-unknown")


def secrets_assumption(raw: RawObjects, mode: str) -> None:
    """Whether a Secret the manifests do not carry exists (--secrets), said in a note. A full
    export carries every Secret it could (auto): one it lacks does not exist, so its servers'
    handshakes fail (an Istio server's chain stays, a Gateway API listener is not programmed).
    Manifests without any Secret (a chart's output) say nothing of them: each is assumed to
    exist, valid for the hosts of the servers that use it."""
    carried = Input.CERTIFICATES in raw.available
    raw.secrets_complete = mode == "complete" or (mode == "auto" and carried)
    if raw.secrets_complete:
        raw.notes.append("a Secret the manifests do not carry is taken as absent"
                         + (" (--secrets=absent-are-unknown: assume it exists)" if mode == "auto"
                            else " (--secrets=complete)"))
    elif carried or mode != "auto":
        raw.notes.append("a Secret the manifests do not carry is assumed to exist, valid for its servers' hosts "
                         "(--secrets=absent-are-unknown)")


def load(opts: Options, env: Env) -> RawObjects:
    """The one place that decides between manifests and the cluster."""
    if opts.filenames:
        from ..sources.files import load_files

        raw = load_files(opts.filenames, opts.recursive, opts.kube.namespace or "default", env.stdin)
        secrets_assumption(raw, opts.secrets)
        return raw
    from ..sources.live import load_cluster

    progress = _progress(env)
    raw = load_cluster(opts.kube.cluster, chunk_size=opts.kube.chunk_size, settings=opts.settings,
                       progress=progress)
    progress("")
    return raw


def _progress(env: Env, delay: float = 1.0) -> Any:
    """A single rewritten stderr line, on a terminal only, once listing takes over `delay` s."""
    if not env.stderr_tty:
        return lambda _msg: None
    import time

    start = time.monotonic()
    state = {"shown": False}

    def show(msg: str) -> None:
        if msg and time.monotonic() - start < delay:
            return
        if msg or state["shown"]:
            env.stderr.write("\r\x1b[K" + (msg + "..." if msg else ""))
            env.stderr.flush()
            state["shown"] = bool(msg)
    return show


def _gateways_of(f: Finding) -> Set[str]:
    d = f.detail
    refs = {f.resource.key}
    for key in ("from", "to"):
        refs.update(r["gateway"] for r in d.get(key, ()))
    for key in ("server", "keptServer", "conflictsWith"):
        if key in d:
            refs.add(d[key]["gateway"])
    return refs


def scope(report: Report, raw: RawObjects, namespace: Optional[str], selector: Selector) -> Report:
    """Keep findings that involve the namespace and a Gateway the selector picks."""
    if namespace is None and not selector.terms:
        return report
    labels = {}
    for gw in raw.gateways + raw.gateway_api.gateways + raw.gateway_api.listener_sets:
        try:
            labels[object_ref(gw, raw.default_namespace).key] = labels_of(gw)
        except ValueError:
            continue
    keep = []
    for f in report.findings:
        gws = _gateways_of(f)
        if namespace is not None and not any(g.split("/", 1)[0] == namespace for g in gws):
            continue
        if selector.terms and not any(selector.matches(labels.get(g, {})) for g in gws):
            continue
        keep.append(f)
    return replace(report, findings=tuple(keep))


def control_plane(opts: Options, raw: RawObjects, access: Any = None) -> controlplane.ControlPlane:
    """The istiod whose rules apply: --istio-version, else read from its Deployment (listed with
    the workloads, or asked for: one LIST by label), else the newest modelled, said so."""
    if opts.istio_version:
        return controlplane.from_flag(opts.istio_version)
    found = controlplane.from_deployments(raw.deployments)
    if found.version is not None or opts.filenames:
        return found
    try:
        return controlplane.from_deployments((access or opts.kube.cluster).list("/apis/apps/v1/deployments",
                                                                              label_selector="app=istiod"))
    except GwdupError as exc:
        return controlplane.ControlPlane(None, f"istiod Deployments not readable: {exc}")


def settings_for(opts: Options, cp: controlplane.ControlPlane) -> Settings:
    """The model's settings: the flags', and the rules of the istiod release that applies."""
    return replace(opts.settings, strict_gateway_merging=cp.strict_gateway_merging,
                   grpc_routes_joined=cp.grpc_routes_joined, tls_routes_terminated=cp.tls_routes_terminated)


def analyze(opts: Options, raw: RawObjects, cp: Optional[controlplane.ControlPlane] = None,
            access: Any = None) -> Tuple[Inventory, Report]:
    """Inventory, rules, then the -n/-l scope: what every command sees of the mesh."""
    cp = cp or control_plane(opts, raw, access)
    inventory = build_inventory(raw, settings_for(opts, cp))
    report = scope(registry.run(inventory), raw, opts.kube.report_namespace, parse_selector(opts.selector))
    namespace = opts.kube.report_namespace
    conditions = tuple(c for c in listener_conditions(inventory, report.findings)
                       if namespace is None or c["gateway"].split("/", 1)[0] == namespace)
    return inventory, replace(report, conditions=conditions, notes=(cp.describe(),) + tuple(report.notes))


def summary(report: Report, inventory: Inventory) -> str:
    outcomes = Counter(f.detail["outcome"] for f in report.findings if "outcome" in f.detail)
    others = Counter(f.type.name for f in report.findings if "outcome" not in f.detail)
    gateways = len({s.ref.resource for s in inventory.servers})
    scope_text = f"{gateways} Gateway(s), {len(inventory.servers)} server(s)"
    if report.suppressed:
        by = Counter("--suppress" if b.startswith("--suppress") else "annotation" for _, b in report.suppressed)
        scope_text += f"; {len(report.suppressed)} suppressed (" + ", ".join(
            f"{n} by {k}" for k, n in sorted(by.items())) + ")"
    if not report.findings:
        return f"no hazards found in {scope_text}"
    parts = []
    if outcomes:
        dns = Counter(f.detail["dns"]["state"] for f in report.findings if "dns" in f.detail)
        parts.append(f"{sum(outcomes.values())} hazard(s) ("
                     + ", ".join(f"{n} {o}" for o, n in sorted(outcomes.items()))
                     + ("; DNS: " + ", ".join(f"{n} {s}" for s, n in sorted(dns.items())) if dns else "") + ")")
    parts += [f"{n} {name}" for name, n in sorted(others.items())]
    mitigated = Counter(f.detail["mitigation"]["method"] for f in report.findings if f.detail.get("mitigation"))
    if mitigated:
        parts.append(f"{sum(mitigated.values())} mitigated by installed filters ("
                     + ", ".join(f"{n} {'HTTP/1.1 only' if m == 'http1' else m + ' 421'}"
                                 for m, n in sorted(mitigated.items())) + ")")
    return "found " + ", ".join(parts) + f" in {scope_text}"


def suppress(report: Report, raw: RawObjects, texts: Sequence[str], env: Env) -> Report:
    """The findings the flags and annotations accept, moved aside (counted in the summary and
    listed in JSON and YAML); a flag that matches nothing is a warning."""
    vss = []
    for obj in raw.virtual_services:
        codes = suppressions.codes_of(obj)
        if not codes:
            continue  # only the annotated ones are read again (a mesh has thousands)
        try:
            vs = virtual_service(obj, raw.default_namespace)
        except ShapeError:
            continue
        vss.append((vs.ref.key, vs.gateways, vs.hosts, codes))
    marks = suppressions.annotated(list(raw.gateways) + list(raw.gateway_api.gateways), vss, raw.default_namespace)
    rules = [suppressions.parse_rule(t) for t in texts]
    if not rules and not marks.gateways and not marks.virtual_services:
        return report
    kept, accepted, unused = suppressions.apply(report.findings, rules, marks)
    for rule in unused:
        env.stderr.write(f"warning: --suppress {rule.text} matches no finding\n")
    return replace(report, findings=tuple(kept), suppressed=tuple(accepted))


def positions(raw: RawObjects) -> Position:
    """Where a Gateway's server (or a listener) was read from with -f: file and line, for SARIF;
    each file composed again only when a result points into it."""
    from ..sources.locations import locate

    files: Dict[Tuple[str, str, str], str] = {}
    for obj in list(raw.gateways) + list(raw.gateway_api.gateways) + list(raw.gateway_api.listener_sets):
        path = raw.origin.get(id(obj))
        if path and path != "<stdin>":
            try:
                ref = object_ref(obj, raw.default_namespace)
            except ShapeError:
                continue
            files[(str(obj.get("kind")), ref.namespace, ref.name)] = path
    located: Dict[str, Any] = {}

    def position(kind: str, ns: str, name: str, server: Optional[int], listener: Optional[str]
                 ) -> Optional[Tuple[str, int]]:
        path = files.get((kind, ns, name))
        if path is None:
            return None
        if path not in located:
            located[path] = locate(path, raw.default_namespace)
        place = located[path].get((kind, ns, name))
        if place is None:
            return None
        line = place.servers.get(server, place.line) if server is not None else \
            place.listeners.get(listener or "", place.line)
        uri = path.replace(os.sep, "/")
        return ("file://" + uri if os.path.isabs(path) else uri), line

    return position


@dataclass(frozen=True)
class Evaluation:
    raw: RawObjects
    inventory: Inventory
    report: Report


def evaluate(opts: Options, access: Any, env: Env) -> Evaluation:
    """The whole of check on what `access` reads (the cluster, or the watch's stores): the one
    pipeline `check`, `check --watch` and `serve` share."""
    from ..sources.live import load_cluster

    raw = load_cluster(access, chunk_size=opts.kube.chunk_size, settings=opts.settings)
    inventory, report = analyze(opts, raw, access=access)
    return Evaluation(raw, inventory, suppress(report, raw, opts.suppress, env))


def evaluate_watched(opts: Options, access: Any, env: Env) -> Evaluation:
    """evaluate(), for a process that runs on (serve, check --watch): what it keeps between
    analyses is only what the mesh uses now."""
    from .. import certs

    result = evaluate(opts, access, env)
    certs.keep_only(result.raw.secrets.values())
    return result


def dns_answers(opts: Options, raw: RawObjects, wanted: Any, resolver: Any = None) -> Tuple[Dict[str, Any], List[str]]:
    """Answers for `wanted` names, and where they came from: --resolve-from's hosts files and the
    manifests' external-dns annotations first, then, on a live cluster or with --nameserver,
    DNS (through `resolver`, shared when several clusters are read)."""
    from ..sources import dns, external_dns

    hosts_files: Dict[str, Any] = {}
    for path in opts.resolve_from:
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                text = f.read(16 * 1024 * 1024)
        except OSError as exc:
            from ..errors import InputError

            raise InputError(f"--resolve-from {path}: {exc.strerror}") from None
        hosts_files = dns.merged(hosts_files, dns.parse_hosts(text, path))
    found = external_dns.endpoints(raw.gateways, raw.gateway_api.gateways, raw.services)
    answers = dns.merged(hosts_files, external_dns.answers(found, hosts_files))
    ask = sorted(n for n in wanted if n not in answers)
    how = []
    if opts.resolve_from:
        how.append("--resolve-from")
    if found:
        how.append("external-dns annotations")
    if ask and (not opts.filenames or opts.nameservers):
        resolver = resolver or new_resolver(opts)
        answers.update(resolver.resolve(ask))
        how.append("DNS (" + (", ".join(opts.nameservers) if opts.nameservers else "the system's resolver") + ")")
    for n in wanted:
        answers.setdefault(n, dns.Answer(n, error="not in --resolve-from nor in external-dns annotations"))
    return answers, how


def new_resolver(opts: Options) -> Any:
    from ..sources import dns

    return dns.Resolver([dns.parse_nameserver(n) for n in opts.nameservers],
                        timeout=parse_duration(opts.dns_timeout, "--dns-timeout") or 2.0)


def dns_labels(opts: Options, raw: RawObjects, inventory: Inventory, report: Report, resolver: Any = None) -> Report:
    """Each hazard labelled live, latent or unknown by DNS (analysis.dns_reach)."""
    from ..analysis import dns_reach

    targets = dns_reach.gateway_targets(raw.services, inventory)
    wanted = dns_reach.names(report, inventory, targets)
    if not wanted:
        return report
    answers, how = dns_answers(opts, raw, wanted, resolver)
    labelled = dns_reach.label(report, inventory, answers, targets)
    states = Counter(f.detail["dns"]["state"] for f in labelled.findings if "dns" in f.detail)
    note = f"DNS: {len(wanted)} name(s) from {', '.join(how) or 'nowhere'}; hazards " + \
        ", ".join(f"{n} {s}" for s, n in sorted(states.items()))
    return replace(labelled, notes=tuple(labelled.notes) + (note,))


def run(opts: Options, env: Env) -> ExitStatus:
    if opts.fleet:
        from .check_fleet import run_fleet

        return run_fleet(opts, env)
    if opts.watch:
        from .check_watch import watch

        return watch(opts, env)
    printer = opts.output.printer(env.color)
    raw = load(opts, env)
    inventory, report = analyze(opts, raw)
    report = suppress(report, raw, opts.suppress, env)
    if opts.resolving:
        report = dns_labels(opts, raw, inventory, report)
    printer.print(report, env.stdout, positions(raw) if printer.fmt is OutputFormat.SARIF else None)
    for note in report.notes:
        env.stderr.write(f"note: {note}\n")
    for skipped in report.skipped:
        env.stderr.write(f"note: rule {skipped.name} skipped (no {', '.join(skipped.missing)})\n")
    env.stderr.write(summary(report, inventory) + "\n")
    return exit_status(report.findings, opts.fail_level)


def exit_status(findings: "Sequence[Finding]", fail_level: str) -> ExitStatus:
    """FINDINGS when a finding is at --fail-level or above (a hazard an installed filter
    answers is Info), else OK: check's status, and fix's once it is done."""
    threshold = FAIL_LEVELS[fail_level]
    if threshold is not None and any(f.level >= threshold for f in findings):
        return ExitStatus.FINDINGS
    return ExitStatus.OK
