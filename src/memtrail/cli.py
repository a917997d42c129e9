"""The `memtrail` command: a thin dispatcher to one module per subcommand.

Each subcommand lives in its own module with a `main(argv) -> int`; modules are imported only
when their command runs, so `memtrail record` on a production host loads nothing but the
sampler, and a broken analyzer module can never stop recording.
"""

from __future__ import annotations

import gc
import importlib
import os
import sys
from typing import Any, Dict, List, Optional, Sequence, Tuple

from memtrail import __version__

# command -> (module, one-line help). Order is the order shown in --help.
COMMANDS = {
    "record": ("memtrail.sampler", "record memory to a log directory (the sampler)"),
    "report": ("memtrail.report", "explain a recording: peak, OOM kills, top programs, growers"),
    "top": ("memtrail.top", "the process table at any moment of a recording"),
    "tail": ("memtrail.tail", "a readable live view of a log directory (-f follows)"),
    "view": ("memtrail.view", "full-screen console: live, or back in time to any tick"),
    "diff": ("memtrail.diff", "two recordings side by side, per program"),
    "check": ("memtrail.check", "a CI gate: exit 1 when the recording breaks a limit"),
    "html": ("memtrail.html", "a self-contained HTML report with charts"),
    "export": ("memtrail.export", "CSV, JSON lines or OpenMetrics for other tools"),
    "run": ("memtrail.run", "record while a command runs, then report and gate"),
    "stop": ("memtrail.run", "stop a background recorder started with --daemon"),
    "fleet": ("memtrail.fleet", "summarise many recordings (one per job or host)"),
    "install-unit": ("memtrail.install", "install the systemd unit and the standalone sampler"),
}


def _usage() -> str:
    width = max(len(c) for c in COMMANDS)
    lines = [
        "usage: memtrail COMMAND [options]",
        "",
        "commands:",
    ]
    for name, (_mod, text) in COMMANDS.items():
        lines.append(f"  {name:<{width}}  {text}")
    lines += ["", "Run `memtrail COMMAND --help` for a command's options."]
    return "\n".join(lines)


class ReaderGone(BaseException):
    """Whoever read our stdout stopped reading (`memtrail tail | head`). Not an OSError, so a
    command's own `except OSError` (meant for its input files) cannot turn it into an error
    message: it travels up to `main`, which exits quietly."""


class StdoutClosed(Exception):
    """The command was started with its standard output closed (`memtrail report >&-`):
    Python then has no sys.stdout at all. Said in one line, as `ls >&-` does."""


class _GuardedOutput:
    """sys.stdout, with a broken pipe on write or flush raised as `ReaderGone`, and any use
    of a stdout that was closed before we started as `StdoutClosed`."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        if self._stream is None:
            raise StdoutClosed
        try:
            return self._stream.write(text)
        except BrokenPipeError:
            raise ReaderGone from None

    def flush(self) -> None:
        if self._stream is None:
            return  # nothing was written (a write would have raised)
        try:
            self._stream.flush()
        except BrokenPipeError:
            raise ReaderGone from None

    def __getattr__(self, name: str) -> Any:
        if self._stream is None:
            raise StdoutClosed
        return getattr(self._stream, name)


def _quiet_stdout() -> None:
    """Point stdout at /dev/null, so the interpreter's last flush at exit has nowhere to fail
    (it would print "Exception ignored ... BrokenPipeError")."""
    try:
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, sys.stdout.fileno())
        os.close(null)
    except (OSError, ValueError, AttributeError):
        pass


# PyPy sizes its young generation from the CPU's cache: on the benchmark machine that alone
# held ~300 MB of RSS for a report that needs 80. A 2 MB nursery, and a major collection once
# the heap grew 1.4x (not 1.82x), keep a week's report, check and html within 100 MiB at
# nearly the same speed (bench/RESULTS.md). An operator who set any PYPY_GC_* variable is
# tuning PyPy already: their settings win, untouched.
PYPY_GC = {"PYPY_GC_NURSERY": "2MB", "PYPY_GC_MAJOR_COLLECT": "1.4"}


def pypy_restart(args: Sequence[str], env: Dict[str, str], implementation: str,
                 executable: str, path: Sequence[str]) -> Optional[Tuple[List[str],
                                                                   Dict[str, str]]]:
    """(argv, environment) to start this command again under PyPy with PYPY_GC, or None:
    not PyPy, PyPy's collector already tuned, the sampler (which runs as it was started: its
    one documented re-exec is its own), not POSIX (an exec there is a new process), or a
    memtrail that is not a directory of files.

    The new image finds memtrail as this one did (`-m memtrail`, the same interpreter, the
    environment and the working directory): `path` is this image's sys.path, and only when
    memtrail's directory is not on it is that directory added to PYTHONPATH. A site-packages
    directory put there would come before the standard library and could shadow it."""
    if implementation != "pypy" or any(k.startswith("PYPY_GC_") for k in env) \
            or not executable or not args or args[0] == "record" or os.name != "posix":
        return None
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if not os.path.isdir(os.path.join(here, "memtrail")):
        return None  # inside a zip: run as started
    new_env = dict(env, **PYPY_GC)
    if here not in {os.path.abspath(p or os.curdir) for p in path}:
        new_env["PYTHONPATH"] = os.pathsep.join(p for p in (env.get("PYTHONPATH"), here) if p)
    return [executable, "-m", "memtrail", *args], new_env


# A replay allocates millions of short-lived tuples and makes next to no reference cycles:
# collecting the young generation every 700 allocations (CPython's default) took ~4% of a
# day's jsonl and html (least of 5-7 interleaved runs, same bytes out), for ~1 MB more
# memory at 50 000.
ANALYZER_GC = (50000, 20, 20)


def analyzer_gc(args: Sequence[str], implementation: str) -> Optional[Tuple[int, int, int]]:
    """The collector's thresholds for this command, or None to leave them: the sampler
    (`record`) keeps CPython's (its memory is the budget), PyPy has a collector of its own."""
    if implementation != "cpython" or not args or args[0] == "record":
        return None
    return ANALYZER_GC


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    thresholds = analyzer_gc(args, sys.implementation.name) if argv is None else None
    if thresholds is not None:
        gc.set_threshold(*thresholds)
    restart = pypy_restart(args, dict(os.environ), sys.implementation.name,
                           sys.executable, sys.path) if argv is None else None
    if restart is not None:
        sys.stdout.flush()
        try:
            os.execve(restart[0][0], restart[0], restart[1])
        except OSError:
            pass  # run as started: slower to collect, not wrong
    if not args or args[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0 if args else 2
    if args[0] == "--version":
        print(f"memtrail {__version__}")
        return 0
    name, rest = args[0], args[1:]
    entry = COMMANDS.get(name)
    if entry is None:
        print(f"memtrail: unknown command {name!r} (see `memtrail --help`)", file=sys.stderr)
        return 2
    if name == "record" and "--daemon" in rest:
        entry = ("memtrail.daemon", entry[1])  # backgrounding lives outside the sampler
    try:
        module = importlib.import_module(entry[0])
    except ImportError as exc:  # a command not built yet on this install
        print(f"memtrail: command {name!r} is not available: {exc}", file=sys.stderr)
        return 2
    func = getattr(module, "main_" + name.replace("-", "_"), None) or module.main
    # A terminal or pipe that is not UTF-8 (PYTHONIOENCODING=ascii, a latin-1 locale) gets a
    # CJK name as an escape, not a UnicodeEncodeError halfway through a report. UTF-8 streams
    # stay strict: every string reaching them went through safetext, and a lone surrogate that
    # did not would fail loudly in the tests rather than pass as an escape.
    for stream in (sys.stdout, sys.stderr):
        encoding = (getattr(stream, "encoding", None) or "").lower().replace("_", "-")
        if hasattr(stream, "reconfigure") and stream.errors == "strict" \
                and encoding not in ("utf-8", "utf8"):
            stream.reconfigure(errors="backslashreplace")
    real_stdout = sys.stdout
    if name != "record":  # the sampler writes nothing to stdout but --help
        sys.stdout = _GuardedOutput(real_stdout)
    try:
        status = int(func(rest) or 0)
        if sys.stdout is not None:  # (`record` started with stdout closed has none)
            sys.stdout.flush()  # a reader that left during the last lines is seen here
        return status
    except KeyboardInterrupt:
        return 130
    except StdoutClosed:
        print(f"memtrail {name}: cannot write the output: standard output is closed "
              "(redirect it, or give -o FILE where the command has it)", file=sys.stderr)
        return 2
    except (ReaderGone, BrokenPipeError):  # `memtrail report | head`: quietly, every command
        sys.stdout = real_stdout
        _quiet_stdout()
        return 0
    finally:
        sys.stdout = real_stdout


if __name__ == "__main__":
    sys.exit(main())
