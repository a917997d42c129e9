"""`memtrail install-unit`: put the standalone sampler, the systemd unit and its settings in place.

The unit runs the sampler as one file from a fixed path (/usr/local/lib/memtrail/sampler.py,
imported from its byte-compiled cache by a short launcher beside it)
with Debian's /usr/bin/python3, not from wherever pip put the package: the service must not
depend on a virtualenv or a home directory (the unit hides /home), and it must keep working
when the analyzer package is upgraded or removed. `--prefix` installs under another root (a
package build, a container image, a test), `--dry-run` only says what it would do, and
`--uninstall` takes it all out again except the logs and a settings file the operator edited.

The command never runs systemctl itself: it prints the commands, so it works the same in an
image build, under a prefix, and on a host where the operator wants to look first.
"""

from __future__ import annotations

import argparse
import filecmp
import glob
import importlib.util
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from typing import List, Optional

UNIT_NAME = "memtrail.service"
SAMPLER_DEST = "usr/local/lib/memtrail/sampler.py"
# The unit starts the launcher (systemd/memtrail-sampler.py), not sampler.py: see its docstring.
LAUNCHER_DEST = "usr/local/lib/memtrail/memtrail-sampler.py"
UNIT_DEST = "etc/systemd/system/" + UNIT_NAME
ENV_DEST = "etc/default/memtrail"
# --textfile: the live textfile writer's unit, and the analyzer it runs copied beside the sampler
TEXTFILE_UNIT_NAME = "memtrail-textfile.service"
TEXTFILE_UNIT_DEST = "etc/systemd/system/" + TEXTFILE_UNIT_NAME
CLI_DEST = "usr/local/lib/memtrail/memtrail-cli.py"
PACKAGE_DEST = "usr/local/lib/memtrail/memtrail"
DEFAULT_PYTHON = "/usr/bin/python3"


class InstallError(Exception):
    """Something the operator must fix (a missing source file, a bad prefix): one line."""


@dataclass
class Sources:
    """The four files to install, found in the package or in the checkout."""

    sampler: str
    unit: str
    env: str
    launcher: str
    textfile_unit: str = ""
    cli: str = ""
    package: str = ""


def find_sources() -> Sources:
    """Locate sampler.py and the unit files.

    The sampler is wherever the `memtrail.sampler` module lives. The unit and env file live in
    the repository's `systemd/` directory; a wheel may also ship them inside the package as
    `memtrail/systemd/`. Both places are tried so a clone, an editable install and a wheel work.
    """
    spec = importlib.util.find_spec("memtrail.sampler")
    if spec is None or not spec.origin or not os.path.isfile(spec.origin):
        raise InstallError("cannot find the sampler (memtrail.sampler) in this installation")
    pkg_dir = os.path.dirname(os.path.abspath(spec.origin))
    candidates = [
        os.path.join(pkg_dir, "systemd"),
        os.path.join(os.path.dirname(os.path.dirname(pkg_dir)), "systemd"),
    ]
    for cand in candidates:
        unit = os.path.join(cand, "memtrail.service")
        env = os.path.join(cand, "memtrail.env")
        launcher = os.path.join(cand, "memtrail-sampler.py")
        if all(os.path.isfile(f) for f in (unit, env, launcher)):
            return Sources(sampler=spec.origin, unit=unit, env=env, launcher=launcher,
                           textfile_unit=os.path.join(cand, TEXTFILE_UNIT_NAME),
                           cli=os.path.join(cand, "memtrail-cli.py"), package=pkg_dir)
    raise InstallError(
        "cannot find systemd/memtrail.service, memtrail.env and memtrail-sampler.py (looked in "
        + ", ".join(candidates) + "); run from a clone of the repository"
    )


def unit_text(source: str, python: str) -> str:
    """The unit as installed: the shipped file, with another interpreter if asked for."""
    with open(source, encoding="utf-8") as f:
        text = f.read()
    if python != DEFAULT_PYTHON:
        text = text.replace("ExecStart=" + DEFAULT_PYTHON + " ", "ExecStart=" + python + " ")
    return text


def _read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def _write_atomic(path: str, data: bytes, mode: int) -> None:
    """Write next to the target and rename, so a half-written unit is never seen by systemd."""
    directory = os.path.dirname(path)
    os.makedirs(directory, mode=0o755, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".memtrail-", dir=directory)
    try:
        os.write(fd, data)
        os.fchmod(fd, mode)
        os.fsync(fd)
        os.close(fd)
        fd = -1
        os.replace(tmp, path)
    except BaseException:
        if fd >= 0:
            os.close(fd)
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


class Installer:
    """Carries out (or, with dry_run, only describes) the steps; `log` holds what was said."""

    def __init__(self, root: str, dry_run: bool) -> None:
        self.root = root
        self.dry_run = dry_run
        self.log: List[str] = []

    def path(self, rel: str) -> str:
        """`rel` (a path inside the system being installed) under the root."""
        return os.path.join(self.root, rel.lstrip("/"))

    def say(self, text: str) -> None:
        self.log.append(("would " if self.dry_run else "") + text)

    def put(self, rel: str, data: bytes, mode: int = 0o644, keep_existing: bool = False) -> None:
        dest = self.path(rel)
        if os.path.exists(dest):
            if _read(dest) == data:
                self.log.append(f"unchanged {dest}")
                return
            if keep_existing:
                self.log.append(f"kept {dest} (exists; the new defaults are not applied)")
                return
        self.say(f"install {dest}")
        if not self.dry_run:
            _write_atomic(dest, data, mode)

    def remove(self, rel: str, unless_changed_from: Optional[str] = None) -> None:
        dest = self.path(rel)
        if not os.path.lexists(dest):
            return
        if unless_changed_from is not None and not filecmp.cmp(
            dest, unless_changed_from, shallow=False
        ):
            self.log.append(f"kept {dest} (edited locally; remove it by hand if unwanted)")
            return
        self.say(f"remove {dest}")
        if not self.dry_run:
            os.unlink(dest)

    def rmdir(self, rel: str) -> None:
        dest = self.path(rel)
        if os.path.isdir(dest) and not os.listdir(dest):
            self.say(f"remove {dest}/")
            if not self.dry_run:
                os.rmdir(dest)


def byte_compile(inst: Installer, python: str) -> None:
    """Compile the installed sampler with the unit's own interpreter (its cache tag)."""
    if inst.dry_run:
        inst.say(f"byte-compile {inst.path(SAMPLER_DEST)} with {python}")
        return
    interp = inst.path(python)
    if not os.path.exists(interp):
        interp = python
    try:
        res = subprocess.run([interp, "-I", "-S", "-m", "py_compile", inst.path(SAMPLER_DEST)],
                             capture_output=True, text=True, timeout=120)
        ok, why = res.returncode == 0, (res.stderr.strip().splitlines() or [""])[-1]
    except OSError as exc:
        ok, why = False, str(exc)
    if ok:
        inst.say(f"byte-compiled {inst.path(SAMPLER_DEST)}")
    else:
        inst.log.append(f"warning: could not byte-compile the sampler with {interp} ({why}); "
                        "it still runs, compiled at each start (about 5 MiB more memory)")


def _package_files(package: str) -> List[str]:
    return sorted(n for n in os.listdir(package) if n.endswith(".py"))


def install_textfile(inst: Installer, src: Sources, python: str) -> None:
    """The textfile writer: its unit, and the analyzer (stdlib only) beside the sampler, so the
    unit runs with the system's Python like the sampler, whatever pip did."""
    for path in (src.textfile_unit, src.cli):
        if not os.path.isfile(path):
            raise InstallError(f"cannot find {path}; run from a clone of the repository")
    for name in _package_files(src.package):
        inst.put(f"{PACKAGE_DEST}/{name}", _read(os.path.join(src.package, name)))
    inst.put(CLI_DEST, _read(src.cli))
    inst.put(TEXTFILE_UNIT_DEST, unit_text(src.textfile_unit, python).encode())


def install(inst: Installer, src: Sources, python: str, textfile: bool = False) -> List[str]:
    """Copy the files and byte-compile the sampler; return the commands to run next."""
    inst.put(SAMPLER_DEST, _read(src.sampler))
    inst.put(LAUNCHER_DEST, _read(src.launcher))
    byte_compile(inst, python)
    inst.put(UNIT_DEST, unit_text(src.unit, python).encode())
    inst.put(ENV_DEST, _read(src.env), keep_existing=True)
    if not os.path.exists(inst.path(python)):
        inst.log.append(
            f"warning: {inst.path(python)} does not exist; the unit runs the sampler "
            "with it (install python3, or pass --python PATH)"
        )
    units = UNIT_NAME
    if textfile:
        install_textfile(inst, src, python)
        units += " " + TEXTFILE_UNIT_NAME
    return ["systemctl daemon-reload", "systemctl enable --now " + units]


def uninstall(inst: Installer, src: Optional[Sources]) -> List[str]:
    """Remove what install() put in place, and the unit's enablement links; never the logs."""
    had_textfile = os.path.lexists(inst.path(TEXTFILE_UNIT_DEST))
    for name in (UNIT_NAME, TEXTFILE_UNIT_NAME):
        for link in sorted(glob.glob(inst.path("etc/systemd/system/*/" + name))):
            if os.path.islink(link):
                inst.remove(os.path.relpath(link, inst.root))
    inst.remove(UNIT_DEST)
    inst.remove(TEXTFILE_UNIT_DEST)
    inst.remove(CLI_DEST)
    pkg = inst.path(PACKAGE_DEST)
    if os.path.isdir(pkg):
        for name in sorted(os.listdir(pkg)):
            if name.endswith(".py"):
                inst.remove(f"{PACKAGE_DEST}/{name}")
        for pyc in sorted(glob.glob(os.path.join(pkg, "__pycache__", "*.pyc"))):
            inst.remove(os.path.relpath(pyc, inst.root))
        inst.rmdir(PACKAGE_DEST + "/__pycache__")
        inst.rmdir(PACKAGE_DEST)
    inst.remove(SAMPLER_DEST)
    inst.remove(LAUNCHER_DEST)
    cache = os.path.join(os.path.dirname(SAMPLER_DEST), "__pycache__")
    for pyc in sorted(glob.glob(inst.path(cache + "/sampler.*.pyc"))):
        inst.remove(os.path.relpath(pyc, inst.root))
    inst.rmdir(cache)
    inst.rmdir(os.path.dirname(SAMPLER_DEST))
    if src is not None:
        inst.remove(ENV_DEST, unless_changed_from=src.env)
    elif os.path.exists(inst.path(ENV_DEST)):
        inst.log.append(f"kept {inst.path(ENV_DEST)} (no shipped copy to compare it with)")
    stop = ["systemctl stop " + TEXTFILE_UNIT_NAME] if had_textfile else []
    return stop + ["systemctl stop " + UNIT_NAME, "systemctl daemon-reload",
            "(the logs stay in /var/log/memtrail: remove them by hand when no longer needed)"]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="memtrail install-unit",
        description="Install the sampler as a systemd service: /usr/local/lib/memtrail/"
        "sampler.py, /etc/systemd/system/memtrail.service, /etc/default/memtrail.",
    )
    p.add_argument("--prefix", default="/", metavar="ROOT",
                   help="install under this root directory instead of / (packaging, images)")
    p.add_argument("--uninstall", action="store_true",
                   help="remove the unit, the sampler and an unedited settings file (not logs)")
    p.add_argument("--dry-run", action="store_true", help="say what would be done, change nothing")
    p.add_argument("--textfile", action="store_true",
                   help="also memtrail-textfile.service: live figures for node_exporter's "
                        "textfile collector (/var/lib/prometheus/node-exporter/memtrail.prom; "
                        "docs/fleet.md)")
    p.add_argument("--python", default=DEFAULT_PYTHON, metavar="PATH",
                   help=f"interpreter the unit runs the sampler with (default {DEFAULT_PYTHON})")
    return p


def main(argv: List[str]) -> int:
    args = _parser().parse_args(argv)
    root = os.path.abspath(args.prefix)
    if not os.path.isdir(root):
        print(f"memtrail install-unit: --prefix {args.prefix}: not a directory", file=sys.stderr)
        return 2
    if not os.path.isabs(args.python):
        print(f"memtrail install-unit: --python {args.python}: must be an absolute path",
              file=sys.stderr)
        return 2
    inst = Installer(root, args.dry_run)
    try:
        if args.uninstall:
            try:
                src: Optional[Sources] = find_sources()
            except InstallError:
                src = None  # still uninstall; an edited settings file is then kept
            commands = uninstall(inst, src)
        else:
            commands = install(inst, find_sources(), args.python, args.textfile)
    except InstallError as exc:
        print(f"memtrail install-unit: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        where = f" {exc.filename}" if exc.filename else ""
        print(f"memtrail install-unit:{where}: {exc.strerror or exc}", file=sys.stderr)
        for line in inst.log:
            print(line, file=sys.stderr)
        return 1
    for line in inst.log:
        print(line)
    if not inst.log:
        print("nothing to do")
    print()
    print("next:" if root == "/" else f"next, on the system installed in {root}:")
    for cmd in commands:
        print("  " + cmd)
    return 0
