"""`kubectl gwdup serve`: check, always on, for running in the cluster (deploy/).

The watch engine keeps every kind check reads current; after each (debounced) change the
analysis runs again and its result replaces what /metrics shows. Writes are off unless asked:
`--write-conditions` (GEP-3567's OverlappingTLSConfig on Gateway API listeners) and
`--write-events` (Events on Istio Gateways). Secrets are read only with `--read-secrets`;
without them certificates are compared by credentialName, as check does when RBAC refuses
Secrets.

It logs one line per thing worth knowing (started, a kind refused or readable again, a write
done or refused), to stderr with a timestamp, and never exits on what a retry can fix: an API
server down, a kind refused, an analysis that failed. SIGTERM (the kubelet's stop) and SIGINT
end it cleanly.
"""
from __future__ import annotations

import argparse
import datetime
import signal
import threading
from dataclasses import dataclass
from typing import Any, Optional

from ..cli.flags import parse_duration
from ..env import Env, with_stderr
from ..errors import ExitStatus, GwdupError, UsageError
from . import check


@dataclass
class Options(check.Options):
    listen: str = ":9090"
    write_conditions: bool = False
    write_events: bool = False
    read_secrets: bool = False
    debounce: str = "200ms"

    @classmethod
    def from_args(cls, args: argparse.Namespace, env: Env) -> "Options":
        base = check.Options.from_args(args, env)
        return cls(**vars(base), listen=args.listen, write_conditions=args.write_conditions,
                   write_events=args.write_events, read_secrets=args.read_secrets, debounce=args.debounce)

    def validate(self) -> None:
        super().validate()
        from ..serve.http import parse_listen

        parse_listen(self.listen)
        if not parse_duration(self.debounce, "--debounce"):
            raise UsageError("--debounce must be more than 0")
        if self.output.output:
            raise UsageError("serve prints no report: its results are on /metrics")


class _Log:
    def __init__(self, env: Env) -> None:
        self.env = env
        self.lock = threading.Lock()

    def __call__(self, message: str) -> None:
        stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        with self.lock:
            self.env.stderr.write(f"{stamp} {message}\n")
            self.env.stderr.flush()


def run(opts: Options, env: Env) -> ExitStatus:
    from .. import __version__
    from ..execute.serve_writes import ConditionWriter, EventWriter
    from ..serve import http
    from ..serve.metrics import Metrics

    log = _Log(env)
    metrics = Metrics(__version__)
    health = http.Health()
    server = http.start(opts.listen, metrics.exposition, health)
    host, port = server.server_address[:2]
    log(f"serving /metrics, /healthz and /readyz on http://{host}:{port}")
    stop = threading.Event()

    def on_signal(_sig: int, _frame: Any) -> None:
        stop.set()
    previous = signal.signal(signal.SIGTERM, on_signal)
    access = opts.kube.cluster
    engine: Optional[Any] = None
    try:
        engine = _start(opts, env, access, metrics, health, log, stop)
        conditions = ConditionWriter(access, lambda w, r: metrics.writes.labels(w, r).inc(), log) \
            if opts.write_conditions else None
        events = EventWriter(access, lambda w, r: metrics.writes.labels(w, r).inc(), log,
                             env.environ.get("POD_NAME") or env.environ.get("HOSTNAME") or "kubectl-gwdup") \
            if opts.write_events else None
        failed = ""
        while engine is not None and not stop.is_set():
            health.tick()
            try:
                ev = engine.next(timeout=1.0)
            except GwdupError as exc:  # the analysis could not run (a required kind refused)
                metrics.evaluations.labels("error").inc()
                why = exc.render().strip()
                if why != failed:
                    log(f"analysis failed: {why}")
                    failed = why
                health.set_ready(f"analysis failed: {why}")
                continue
            if ev is None:
                continue
            result: check.Evaluation = ev.result
            metrics.state.update(result.report, ev.objects, ev.finished)
            metrics.duration.observe(ev.duration)
            metrics.evaluations.labels("ok").inc()
            if failed or ev.generation == 1:
                log(check.summary(result.report, result.inventory) + f" (analysed in {ev.duration:.2f}s)")
                failed = ""
            health.set_ready(None)
            if conditions is not None:
                conditions.write(result.raw, result.report)
            if events is not None:
                events.write(result.raw, result.report)
    except KeyboardInterrupt:
        pass
    finally:
        if engine is not None:
            engine.stop()
        server.shutdown()
        signal.signal(signal.SIGTERM, previous)
        log("stopped")
    return ExitStatus.OK


def _start(opts: Options, env: Env, access: Any, metrics: Any, health: Any, log: Any, stop: threading.Event) -> Any:
    """The engine, once discovery works: an API server not there yet, or Istio's CRDs not
    installed yet, is waited for (logged once per reason), not a crash."""
    from ..watch.engine import Engine

    backoff, said = 1.0, ""
    # serve has no report to warn in: a --suppress matching nothing shows as zero on /metrics
    silent = with_stderr(env, lambda _text: None)
    while not stop.is_set():
        engine = Engine(access, lambda cached: check.evaluate_watched(opts, cached, silent),
                        read_secrets=opts.read_secrets, debounce=parse_duration(opts.debounce, "--debounce") or 0.2,
                        chunk_size=opts.kube.chunk_size, log=log,
                        on_error=lambda resource, reason: metrics.watch_errors.labels(resource, reason).inc())
        try:
            engine.start()
            return engine
        except GwdupError as exc:
            why = exc.render().strip()
            if why != said:
                log(f"waiting for the API server: {why}")
                said = why
            health.set_ready(why)
            metrics.watch_errors.labels("discovery", getattr(exc, "reason", "") or "Unreachable").inc()
            health.tick()
            stop.wait(backoff)
            backoff = min(30.0, backoff * 2)
    return None
