"""The command line as data: subcommands, flag groups, help and examples. No logic."""
from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs start-up time and --help needs none of it
    from typing import Any, Dict, Tuple

# Plain classes rather than dataclasses: this module is on the --help path, and the
# dataclasses machinery (with inspect) costs more to import than the whole spec.


HIDDEN = "==SUPPRESS=="  # argparse.SUPPRESS: accepted, not shown in help or completion


class Flag:
    __slots__ = ("names", "help", "kwargs")

    def __init__(self, names: Tuple[str, ...], help: str, kwargs: Dict[str, Any] = None) -> None:
        self.names, self.help, self.kwargs = names, help, kwargs or {}

    @property
    def dest(self) -> str:
        return self.kwargs.get("dest") or self.names[-1].lstrip("-").replace("-", "_")

    @property
    def default(self) -> Any:
        if "default" in self.kwargs:
            return self.kwargs["default"]
        action = self.kwargs.get("action")
        if action == "store_true":
            return False
        if action == "append":
            return []
        return None


class FlagGroup:
    __slots__ = ("title", "flags")

    def __init__(self, title: str, flags: Tuple[Flag, ...]) -> None:
        self.title, self.flags = title, flags


class Command:
    __slots__ = ("name", "help", "description", "examples", "groups", "module")

    def __init__(self, name: str, help: str, description: str, examples: str,
                 groups: Tuple[FlagGroup, ...], module: str) -> None:
        self.name, self.help, self.description, self.examples = name, help, description, examples
        self.groups = groups
        self.module = module  # imported only when the command runs


GENERAL = FlagGroup("General flags", (
    Flag(("-v", "--v"), "log level; 6 shows every API request on stderr",
         {"type": int, "default": 0, "metavar": "LEVEL", "dest": "verbosity"}),
    Flag(("--traceback",), "show the Python traceback of an error (for bug reports)",
         {"action": "store_true"}),
))

KUBE = FlagGroup("Cluster flags (as kubectl)", (
    Flag(("--kubeconfig",), "path to the kubeconfig file to use", {"metavar": "PATH"}),
    Flag(("--context",), "the kubeconfig context to use (check: repeatable, one report across the clusters)",
         {"metavar": "NAME", "action": "append"}),
    Flag(("--cluster",), "the kubeconfig cluster to use", {"metavar": "NAME"}),
    Flag(("--user",), "the kubeconfig user to use", {"metavar": "NAME"}),
    Flag(("-n", "--namespace"), "only report findings that involve this namespace "
         "(the analysis still reads every Gateway)", {"metavar": "NS"}),
    Flag(("-A", "--all-namespaces"), "report findings in every namespace (the default)",
         {"action": "store_true"}),
    Flag(("--request-timeout",), "timeout of one API request, e.g. 30s, 1m, 0 for none",
         {"metavar": "DURATION", "default": "0"}),
    Flag(("--as",), "username to impersonate", {"metavar": "USER", "dest": "as_user"}),
    Flag(("--as-group",), "group to impersonate", {"metavar": "GROUP", "action": "append"}),
    Flag(("--chunk-size",), "objects per page of a LIST (0 disables paging)",
         {"type": int, "default": 500, "metavar": "N"}),
))

OUTPUT = FlagGroup("Output flags", (
    Flag(("-o", "--output"), "output format: wide, json, yaml, or sarif for check (default: a table)",
         {"metavar": "FORMAT", "default": ""}),
    Flag(("--no-headers",), "print tables without the header row", {"action": "store_true"}),
))

SECRETS = Flag(("--secrets",), "with manifests: whether a Secret they do not carry exists: auto (it does not when "
               "they carry Secrets, as a full export does), complete (it does not), absent-are-unknown (assume "
               "it does, valid for its servers' hosts)", {"default": "auto", "metavar": "MODE"})

ISTIO_VERSION = Flag(("--istio-version",), "the Istio release whose rules apply (default: read from istiod's "
                     "Deployment; else the newest modelled)", {"metavar": "X.Y"})

SOURCE = FlagGroup("Source flags", (
    Flag(("-f", "--filename"), "read manifests from FILE, DIR or - instead of the cluster "
         "(repeatable)", {"action": "append", "metavar": "PATH", "dest": "filenames"}),
    Flag(("-R", "--recursive"), "read directories given with -f recursively", {"action": "store_true"}),
    Flag(("-l", "--selector"), "only report findings that involve Gateways with these labels "
         "(key=value,key!=value,key)", {"metavar": "SELECTOR", "default": ""}),
    Flag(("--scope-gateway-to-namespace",), "a Gateway selects gateway pods in its own namespace "
         "only (istiod's PILOT_SCOPE_GATEWAY_TO_NAMESPACE)", {"action": "store_true"}),
    SECRETS,
    ISTIO_VERSION,
))

# fix works on a cluster only: its help lists no -f to refuse
LIVE_SOURCE = FlagGroup("Source flags", tuple(f for f in SOURCE.flags if f.names[0] not in ("-f", "-R", "--secrets")))

CHECK = FlagGroup("Check flags", (
    Flag(("--fail-level",), "lowest finding level that makes the exit status 3: info, warning, "
         "error or never", {"metavar": "LEVEL", "default": "warning"}),
    Flag(("--suppress",), "accept findings of CODE on the resource KIND/NAMESPACE/NAME (shell wildcards; "
         "repeatable), as istioctl analyze's --suppress; counted, never hidden",
         {"action": "append", "metavar": "CODE=KIND/NS/NAME"}),
    Flag(("--resolve",), "label each hazard live, latent or unknown by what its hosts resolve to (default: true "
         "on a cluster, false with -f)", {"nargs": "?", "const": "true", "metavar": "BOOL", "dest": "resolve_dns"}),
    Flag(("--resolve-from",), "answers from a hosts file (ADDRESS NAME...) instead of DNS (repeatable; with -f, "
         "external-dns annotations in the manifests count too)", {"action": "append", "metavar": "FILE"}),
    Flag(("--nameserver",), "ask this DNS server (IP[:PORT]; repeatable) instead of the system's resolver",
         {"action": "append", "metavar": "ADDRESS"}),
    Flag(("--dns-timeout",), "time bound of one DNS query", {"metavar": "DURATION", "default": "2s"}),
    Flag(("--all-contexts",), "check every context of the kubeconfig, in parallel: one report with a CLUSTER "
         "column, and the hazards between clusters behind one address", {"action": "store_true"}),
    Flag(("-w", "--watch"), "after the report, watch the cluster and print each hazard that appears, "
         "disappears or is mitigated, until interrupted", {"action": "store_true"}),
    Flag(("--watch-duration",), "with --watch: stop after this long (e.g. 10m; 0: until interrupted)",
         {"metavar": "DURATION", "default": "0"}),
))

PROBE = FlagGroup("Probe flags", (
    Flag(("--host",), "probe these hosts by hand instead of check's findings: every ordered pair "
         "(repeatable; needs --address or --resolve)", {"action": "append", "metavar": "HOST"}),
    Flag(("--address",), "connect here instead of the gateway Service's address; WORKLOAD=HOST[:PORT] for one "
         "gateway workload's pairs (NS/NAME as check's WORKLOAD column; repeatable)",
         {"action": "append", "metavar": "[WORKLOAD=]HOST[:PORT]"}),
    Flag(("--resolve",), "connect to ADDRESS for HOST:PORT, as curl's --resolve (repeatable)",
         {"action": "append", "metavar": "HOST:PORT:ADDRESS"}),
    Flag(("-k", "--insecure"), "do not verify the gateway's certificate chain", {"action": "store_true"}),
    Flag(("--cacert",), "verify the gateway's certificate chain with this CA bundle", {"metavar": "FILE"}),
    Flag(("--sample-host",), "a real name to probe a host pattern such as *.example.com with "
         "(repeatable); patterns without one are skipped", {"action": "append", "metavar": "NAME"}),
    Flag(("--path",), "request path", {"default": "/", "metavar": "PATH"}),
    Flag(("--method",), "GET or HEAD (no request ever carries a body)", {"default": "GET", "metavar": "METHOD"}),
    Flag(("--timeout",), "timeout of one connection or response", {"default": "5s", "metavar": "DURATION"}),
    Flag(("--concurrency",), "pairs probed at once", {"type": int, "default": 4, "metavar": "N"}),
    Flag(("--max-requests",), "upper bound on requests sent in all (a pair takes up to 4)",
         {"type": int, "default": 100, "metavar": "N"}),
))

MITIGATE = FlagGroup("421 flags", (
    Flag(("--mitigation",), "vhost: a 421 virtual host in each affected route table (no code); "
         "lua: a filter comparing SNI and Host chains; http1: the affected chains offer only HTTP/1.1, "
         "for clients that do not retry on 421 (those hosts lose HTTP/2)",
         {"default": "vhost", "metavar": "vhost|lua|http1", "dest": "mitigation"}),
    # the older spelling, kept for scripts; hidden, since probe's --method is the HTTP method
    Flag(("--method",), HIDDEN, {"metavar": "vhost|lua|http1", "dest": "method_alias"}),
    Flag(("--dry-run",), "client: print, send nothing; server: validate on the server, store nothing",
         {"nargs": "?", "const": "client", "metavar": "none|client|server"}),
    Flag(("--delete",), "delete the EnvoyFilters kubectl-gwdup applied", {"action": "store_true"}),
    Flag(("--istio-namespace",), "Istio's root namespace, for workloads known only by selector",
         {"default": "istio-system", "metavar": "NS"}),
))

MERGE = FlagGroup("Merge flags", (
    Flag(("--plan",), "show what would be merged (with -o yaml|json: the MergePlan document)",
         {"action": "store_true"}),
    Flag(("--apply",), "apply the merge: server dry run, confirmation, backup, ordered writes, rollback",
         {"action": "store_true"}),
    Flag(("--restore",), "put back the objects of a backup written by --apply", {"metavar": "BACKUP"}),
    Flag(("--plan-file",), "with --plan, write the plan there; with --apply, execute it (refused if "
         "the cluster changed since)", {"metavar": "FILE"}),
    Flag(("--output-dir",), "with --plan, write each write of the plan as a manifest in DIR, in order "
         "(kubectl apply -f DIR, then kubectl delete -f DIR/delete)", {"metavar": "DIR"}),
    Flag(("--yes", "-y"), "apply without asking", {"action": "store_true", "dest": "yes"}),
    Flag(("--backup-dir",), "where --apply writes its backup", {"default": "gwdup-backups", "metavar": "DIR"}),
    Flag(("--prefer-cert",), "merge servers with different certificates under this credentialName, "
         "when its certificate is valid for every merged host", {"metavar": "SECRET"}),
))

IMPACT_SOURCE = FlagGroup("Source flags", (
    Flag(("--log-file",), "read saved access logs from FILE or - instead of the gateway pods "
         "(repeatable)", {"action": "append", "metavar": "FILE", "dest": "log_files"}),
    # -f names manifests everywhere else; here it was the logs, and stays so for a while, with a warning
    Flag(("-f", "--filename"), HIDDEN, {"action": "append", "metavar": "FILE", "dest": "filenames"}),
    Flag(("--manifests",), "read the Gateways and the rest from manifests (FILE or DIR, repeatable) "
         "instead of the cluster", {"action": "append", "metavar": "PATH"}),
    Flag(("-R", "--recursive"), "read --manifests directories recursively", {"action": "store_true"}),
    Flag(("-l", "--selector"), "only count hazards that involve Gateways with these labels",
         {"metavar": "SELECTOR", "default": ""}),
    Flag(("--scope-gateway-to-namespace",), "a Gateway selects gateway pods in its own namespace "
         "only (istiod's PILOT_SCOPE_GATEWAY_TO_NAMESPACE)", {"action": "store_true"}),
    SECRETS,
    ISTIO_VERSION,
))

IMPACT = FlagGroup("Impact flags", (
    Flag(("--since",), "only log lines newer than this, e.g. 1h (as kubectl logs)", {"metavar": "DURATION"}),
    Flag(("--since-time",), "only log lines after this RFC3339 time", {"metavar": "TIME"}),
    Flag(("--tail",), "only the last N lines of each pod's log (-1: all)", {"type": int, "default": -1,
                                                                              "metavar": "N"}),
    Flag(("--max-log-bytes",), "read at most this many bytes of each pod's log (0: no limit)",
         {"type": int, "default": 0, "metavar": "N"}),
    Flag(("--log-format",), "text (Istio's default), json (Istio's JSON), an Envoy format string of "
         "%%OPERATOR%% fields, or a JSON object of key: %%OPERATOR%% (default: told apart per pod)",
         {"metavar": "FORMAT"}),
    Flag(("--workload",), "with --log-file: the gateway workload (NS/NAME) the logs came from",
         {"metavar": "NS/NAME"}),
    Flag(("-j", "--jobs"), "read logs on this many processes (default: the cores this process may use, "
         "at most 8; 1: in this process)", {"type": int, "default": 0, "metavar": "N"}),
))

FIX = FlagGroup("Fix flags", (
    Flag(("--strategy",), "with --yes: fix every group this way, without prompts", {"metavar": "merge|421"}),
    Flag(("--yes", "-y"), "no prompts (needs --strategy)", {"action": "store_true", "dest": "yes"}),
    Flag(("--backup-dir",), "where merges write their backups", {"default": "gwdup-backups", "metavar": "DIR"}),
    Flag(("--mitigation",), "how [4]21 mitigates: vhost, lua or http1 (as apply-421 --mitigation)",
         {"default": "vhost", "metavar": "vhost|lua|http1", "dest": "mitigation"}),
))

SERVE = FlagGroup("Serve flags", (
    Flag(("--listen",), "address to serve /metrics, /healthz and /readyz on", {"metavar": "HOST:PORT",
                                                                             "default": ":9090"}),
    Flag(("--write-conditions",), "set GEP-3567's OverlappingTLSConfig condition on Gateway API listeners "
         "(server-side apply of their status, field manager kubectl-gwdup-conditions)", {"action": "store_true"}),
    Flag(("--write-events",), "record an Event on each Istio Gateway a hazard appears on, goes from or is "
         "mitigated on (deduplicated, rate-limited)", {"action": "store_true"}),
    Flag(("--read-secrets",), "watch Secrets to compare certificates (else by credentialName only; the RBAC of "
         "deploy/ grants Secrets only with this)", {"action": "store_true"}),
    Flag(("--debounce",), "quiet time after a change before the analysis runs again",
         {"metavar": "DURATION", "default": "200ms"}),
    Flag(("--suppress",), "accept findings of CODE on the resource KIND/NAMESPACE/NAME (as check)",
         {"action": "append", "metavar": "CODE=KIND/NS/NAME"}),
))

EXIT_STATUSES = """\
exit status:
  0    no finding at or above --fail-level
  1    the command failed (error from the server, unreadable manifest or kubeconfig)
  2    bad flags
  3    hazards found (check: findings at or above --fail-level; probe: a confirmed pair;
       impact: a coalesced request answered 404 or misrouted)
  4    merge --apply failed and was rolled back (the cluster is as before)
  5    merge --apply failed and rolling back failed too (the message names the backup)
  70   internal error (run again with --traceback and report it)
  130  interrupted"""

COMMANDS = (
    Command(
        "check", "find HTTP/2 connection-coalescing hazards",
        "List every place where a browser can reuse a TLS connection opened for one host to "
        "send a request for another host, and what the gateway does with it: NotFound (404 "
        "from the wrong route table) or Misrouted (200 from the wrong backend).",
        """examples:
  # check the whole mesh of the current context
  kubectl gwdup check

  # only findings involving namespace shop, as JSON
  kubectl gwdup check -n shop -o json

  # check manifests before they are applied (no cluster needed)
  kubectl gwdup check -f examples/ -o wide""",
        (SOURCE, CHECK), "kubectl_gwdup.commands.check"),
    Command(
        "probe", "confirm hazards on a live gateway, as a browser meets them",
        "For each hazard check finds (or each pair of --host), open one TLS connection with SNI "
        "= a host of the source server and ALPN h2 and http/1.1, request it, then request the "
        "coalesced host on the same connection, and on a connection of its own to compare. Reports "
        "Confirmed-404, Confirmed-misroute, Mitigated-421, Mitigated-HTTP/1.1, Ok or Unreachable per "
        "pair. Only GET or HEAD, never more than --max-requests.",
        """examples:
  # confirm every hazard of the current cluster at the gateway Service's address
  kubectl gwdup probe

  # a staging gateway, before anything is deployed, from manifests
  kubectl gwdup probe -f manifests/ --address 127.0.0.1:8443 --insecure

  # two hosts by hand, a wildcard pattern probed with a real name
  kubectl gwdup probe --host a.example.com --host b.example.com --resolve a.example.com:443:203.0.113.7 \\
      --resolve b.example.com:443:203.0.113.7
  kubectl gwdup probe --sample-host shop.example.org""",
        (SOURCE, PROBE), "kubectl_gwdup.commands.probe"),
    Command(
        "apply-421", "answer 421 Misdirected Request to coalesced requests (EnvoyFilters)",
        "For every gateway workload with hazards, apply EnvoyFilters that make the gateway answer "
        "421 to a request whose host belongs to another filter chain than its connection's, so "
        "the browser retries on a new connection. Requests for the chain's own hosts, unknown "
        "hosts (404) and requests without SNI are untouched. Server-side apply, field manager "
        "kubectl-gwdup; re-running changes nothing; --delete removes exactly what was applied.",
        """examples:
  # see what would be applied, then apply it
  kubectl gwdup apply-421 --dry-run=server
  kubectl gwdup apply-421

  # GitOps: generate the EnvoyFilters from manifests alone
  kubectl gwdup apply-421 -f manifests/ --dry-run=client -o yaml --istio-version 1.24

  # for clients that do not retry on 421: the affected hosts offer only HTTP/1.1
  kubectl gwdup apply-421 --mitigation http1

  # remove them again
  kubectl gwdup apply-421 --delete""",
        (SOURCE, MITIGATE), "kubectl_gwdup.commands.apply421"),
    Command(
        "merge", "merge the servers that share a certificate into one Gateway (the lasting fix)",
        "Plan, for each group of servers connected by hazards, the merge of their Gateways into the "
        "group's oldest one, in place, where servers with the same TLS settings and certificate "
        "become ONE server, written in phases with no outage window: bind the VirtualServices to "
        "it as well, merge it, unbind the old names, delete the old Gateways last. Every phase is "
        "simulated before the plan is shown: every host keeps its routes, no hazard is left. "
        "--apply does a server dry run of every write, asks, writes a backup, applies in order "
        "with preconditions and rolls back on any failure.",
        """examples:
  kubectl gwdup merge --plan
  kubectl gwdup merge --plan -f manifests/ -o yaml        # GitOps
  kubectl gwdup merge --plan --plan-file plan.yaml && kubectl gwdup merge --apply --plan-file plan.yaml
  kubectl gwdup merge --plan --output-dir merge/ && kubectl apply -f merge/ && kubectl delete -f merge/delete
  kubectl gwdup merge --apply --yes --backup-dir /var/backups/gwdup
  kubectl gwdup merge --restore /var/backups/gwdup/gwdup-merge-20261122-031500.yaml""",
        (SOURCE, MERGE), "kubectl_gwdup.commands.merge"),
    Command(
        "impact", "count the requests the hazards broke, from the gateways' access logs",
        "Read the gateway pods' access logs (pods/log, streamed, bounded by --since, --tail and "
        "--max-log-bytes) or saved logs, find every request whose authority belongs to another "
        "filter chain than its connection's SNI selects, and report per hazard and per "
        "(connection host, request host) how they ended: 404 no route, 421, misrouted (answered "
        "by another host's routes) or other, with first and last seen and browser families; "
        "joined with check's findings (seen, not seen, and seen where none was predicted). "
        "Only the fields it needs are read from a line; paths are never read.",
        """examples:
  # the last day of the current cluster's gateways
  kubectl gwdup impact --since 24h

  # saved logs of one gateway, against manifests
  kubectl gwdup impact --log-file ingress.log --manifests manifests/ --workload istio-system/istio-ingressgateway

  # a custom access-log format
  kubectl gwdup impact --log-format '%START_TIME% %REQUESTED_SERVER_NAME% %REQ(:AUTHORITY)% %RESPONSE_CODE%'""",
        (IMPACT_SOURCE, IMPACT), "kubectl_gwdup.commands.impact"),
    Command(
        "fix", "an interactive session from finding to verified fix",
        "Run check, then for each group of hazards show what is at stake and offer [m]erge (plan, "
        "diff, apply on confirmation), [4]21 (EnvoyFilters, apply on confirmation), [p]robe "
        "(confirm live first), [s]kip or [q]uit. Writes take the safe paths of merge --apply and "
        "apply-421; after each fix the group is checked again (and probed when an address is "
        "known). Ctrl-C leaves the cluster unchanged or fully rolled back.",
        """examples:
  kubectl gwdup fix
  kubectl gwdup fix --address 203.0.113.7 --sample-host www.shop.example.org
  kubectl gwdup fix --yes --strategy 421        # in a pipeline: no prompts""",
        (LIVE_SOURCE, FIX, PROBE), "kubectl_gwdup.commands.fix"),
    Command(
        "serve", "check, always on: Prometheus metrics, listener conditions and Events (for deploy/)",
        "Watch every kind check reads and analyse again on each change; serve the result on "
        "/metrics (Prometheus), with /healthz and /readyz. Optionally write GEP-3567's "
        "OverlappingTLSConfig condition on Gateway API listeners and Events on Istio Gateways. "
        "Runs with the kubeconfig, or in a pod with its service account (deploy/).",
        """examples:
  # on a laptop, against the current context
  kubectl gwdup serve --listen 127.0.0.1:9090

  # in the cluster (deploy/50-deployment.yaml), with the writes on
  kubectl-gwdup serve --write-conditions --write-events --read-secrets""",
        (LIVE_SOURCE, SERVE), "kubectl_gwdup.commands.serve"),
)

EXAMPLES = """examples:
  # what is at risk on the current context, and on manifests before they are applied
  kubectl gwdup check
  kubectl gwdup check -f manifests/ -R -o wide
  # confirm it as a browser would, count the requests it broke, then fix it: the lasting way,
  # or 421 meanwhile
  kubectl gwdup probe --address 203.0.113.7
  kubectl gwdup impact --since 24h
  kubectl gwdup merge --plan
  kubectl gwdup apply-421 --dry-run=server
  # or all of it, group by group, interactively
  kubectl gwdup fix"""

DESCRIPTION = ("Find and fix HTTP/2 connection-coalescing outages of Istio ingress gateways: "
               "404s and wrong backends for browsers that reuse one TLS connection for "
               "several hosts.")
