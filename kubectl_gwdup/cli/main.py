"""Parse, dispatch, and the one error boundary that maps errors to exit statuses."""
from __future__ import annotations

import argparse
import gc
import importlib
import logging
import sys

from .. import __version__
from ..env import Env, PipeSafe, program_name
from ..errors import ExitStatus, GwdupError, UsageError
from . import spec

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Dict, List, NoReturn, Optional, Sequence


class _Parser(argparse.ArgumentParser):
    """argparse, but errors become UsageError (one `error:` line, status 2), as kubectl."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message}\nSee '{self.prog} -h' for help and examples")


def _add_group(parser: argparse.ArgumentParser, group: spec.FlagGroup) -> None:
    g = parser.add_argument_group(group.title)
    for flag in group.flags:
        kwargs = dict(flag.kwargs)
        default = kwargs.pop("default", None)
        kwargs["dest"] = flag.dest
        # kubectl shows a flag's default in its help; so do we, where there is one to show
        shown = f" (default {default})" if default not in (None, "", False, [], 0) else ""
        # SUPPRESS lets a flag stand before or after the subcommand, as with kubectl
        text = argparse.SUPPRESS if flag.help == spec.HIDDEN else flag.help + shown
        g.add_argument(*flag.names, help=text, default=argparse.SUPPRESS, **kwargs)


class _Version(argparse.Action):
    """--version, worked out only when asked: which YAML parser loads is the first thing to know
    about a slow `check -f` (the zipapp carries libyaml for the common platforms only)."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:  # type: ignore[override]
        import platform

        import yaml

        parser_name = "libyaml" if getattr(yaml, "__with_libyaml__", False) else "pure-Python"
        sys.stdout.write(f"kubectl-gwdup {__version__} (Python {platform.python_version()}, "
                         f"YAML parser: {parser_name})\n")
        parser.exit()


def build_parser(prog: str) -> argparse.ArgumentParser:
    common = (spec.GENERAL, spec.KUBE, spec.OUTPUT)
    parser = _Parser(prog=prog, description=spec.DESCRIPTION, epilog=spec.EXAMPLES + "\n\n" + spec.EXIT_STATUSES,
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action=_Version, nargs=0, help="print the version, the Python and the "
                        "YAML parser in use (libyaml, or the slower pure-Python one), and exit")
    for group in common:
        _add_group(parser, group)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for cmd in spec.COMMANDS:
        p = sub.add_parser(cmd.name, help=cmd.help, description=cmd.description,
                           epilog=cmd.examples + "\n\n" + spec.EXIT_STATUSES,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        for group in cmd.groups + common:
            _add_group(p, group)
    return parser


def _defaults() -> Dict[str, Any]:
    out: Dict[str, Any] = {}
    for group in (spec.GENERAL, spec.KUBE, spec.OUTPUT):
        for flag in group.flags:
            out[flag.dest] = flag.default
    for cmd in spec.COMMANDS:
        for group in cmd.groups:
            for flag in group.flags:
                out.setdefault(flag.dest, flag.default)
    return out


def parse(argv: Sequence[str], prog: str) -> argparse.Namespace:
    parser = build_parser(prog)
    args = parser.parse_args(list(argv))
    for key, value in _defaults().items():
        if not hasattr(args, key):
            setattr(args, key, list(value) if isinstance(value, list) else value)
    if not args.command:
        parser.print_help()
        raise SystemExit(ExitStatus.USAGE)
    return args


def run(args: argparse.Namespace, env: Env) -> int:
    cmd = next(c for c in spec.COMMANDS if c.name == args.command)
    module = importlib.import_module(cmd.module)
    # A short-lived process that builds large, acyclic trees (API pages, inventories): the
    # cyclic collector would only re-scan them, about a third of the run on big meshes.
    # Reference counting still frees everything; the collector is back on when we return.
    gc.disable()
    opts = None
    try:
        # every command follows Options.from_args -> validate (flag rules, no I/O) -> run
        opts = module.Options.from_args(args, env)
        opts.validate()
        return int(module.run(opts, env))
    finally:
        kube = getattr(opts, "kube", None)
        if kube is not None:
            kube.close()
        gc.enable()


def main(argv: Optional[List[str]] = None, env: Optional[Env] = None) -> int:
    env = env or Env(prog=program_name(sys.argv[0]))
    argv = sys.argv[1:] if argv is None else argv
    traceback = "--traceback" in argv
    if argv[:1] == ["__complete"]:  # hidden: kubectl's plugin completion protocol
        from .complete import complete

        env.stdout.write("\n".join(complete(argv[1:], env.environ)) + "\n")
        return int(ExitStatus.OK)
    # the client libraries log through `logging`; without a handler Python prints their
    # warnings and errors raw (urllib3's retries, the exec provider's "ERROR:root:"): kubectl
    # prints one error line, and so do we
    logging.getLogger().addHandler(logging.NullHandler())
    env.stdout = PipeSafe(env.stdout)  # type: ignore[assignment]
    env.stderr = PipeSafe(env.stderr)  # type: ignore[assignment]
    try:
        return run(parse(argv, env.prog), env)
    except GwdupError as exc:
        if traceback:
            raise
        env.stderr.write(exc.render() + "\n")
        return int(exc.status)
    except KeyboardInterrupt:
        if traceback:
            raise
        env.stderr.write("error: interrupted\n")
        return int(ExitStatus.INTERRUPTED)
    except BrokenPipeError:
        return int(ExitStatus.OK)  # `| head` closed the pipe: not our failure
    except SystemExit as exc:
        return int(exc.code or 0) if isinstance(exc.code, int) else 0
    except Exception as exc:  # the boundary: anything else is a bug in kubectl-gwdup
        if traceback:
            raise
        env.stderr.write(f"error: internal error: {type(exc).__name__}: {exc} "
                         "(run again with --traceback and report it)\n")
        return int(ExitStatus.INTERNAL)
