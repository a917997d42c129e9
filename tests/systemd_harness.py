"""Boot a real systemd as PID 1 of new namespaces, to test the unit under the real thing.

The host's PID 1 is not systemd on the machines we test on, and a unit that only passed
`systemd-analyze verify` can still fail where it matters (a sandbox option that hides /proc, a
watchdog that never fires). So the integration test boots systemd itself (recipe and pitfalls:
shared/notes/systemd-testing.md): a dedicated cgroup v2 directory, `unshare` of the pid, mount,
cgroup, uts, ipc and net namespaces, an overlay of the host root so nothing reaches the host's
disk, then systemd --system with a minimal target so the host's enabled daemons do not start.
It boots in well under a second and needs no extra packages.

Use it as a context manager:

    with SystemdBox() as box:
        box.systemctl("start", "foo.service")
        box.show("foo.service", "ActiveState")

Everything it makes (namespaces, processes, cgroup directories) is gone when the block ends.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
import uuid
from typing import Dict, List, Optional

SYSTEMD = "/lib/systemd/systemd"
TARGET = "memtrail-box.target"
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# Runs inside the new mount namespace, as the first process of the new pid namespace.
# $1: the root directory to build, $2: whether to bind /dev/kmsg ("1" or "0").
_INNER = r"""
set -eu
S="$1"; KMSG="$2"
mount -t tmpfs -o mode=0755 scratch "$S"
mkdir "$S/upper" "$S/work" "$S/root"
mount -t overlay overlay -o "lowerdir=/,upperdir=$S/upper,workdir=$S/work" "$S/root"
R="$S/root"
mount -t proc proc "$R/proc"
mount --bind "$R/proc/sys" "$R/proc/sys"
mount -o remount,bind,ro "$R/proc/sys"
mount -t sysfs -o ro sysfs "$R/sys"
mount -t cgroup2 cgroup2 "$R/sys/fs/cgroup"
for d in run tmp dev; do mount -t tmpfs -o mode=0755 "box-$d" "$R/$d"; done
chmod 1777 "$R/tmp"
mkdir "$R/dev/shm" "$R/dev/pts"
mount -t tmpfs -o mode=1777 box-shm "$R/dev/shm"
# Fresh device nodes, never bind mounts of the host's: systemd chowns and chmods /dev/console
# (and others) at boot, which through a bind mount would change the host's /dev/null.
mknod -m 0666 "$R/dev/null" c 1 3
mknod -m 0666 "$R/dev/zero" c 1 5
mknod -m 0666 "$R/dev/full" c 1 7
mknod -m 0666 "$R/dev/random" c 1 8
mknod -m 0666 "$R/dev/urandom" c 1 9
mknod -m 0666 "$R/dev/tty" c 5 0
mknod -m 0600 "$R/dev/console" c 1 3
if [ "$KMSG" = 1 ] && [ -c /dev/kmsg ]; then mknod -m 0644 "$R/dev/kmsg" c 1 11; fi
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620 devpts "$R/dev/pts"
ln -s pts/ptmx "$R/dev/ptmx"
mkdir -p "$R/etc/systemd/system"
cat > "$R/etc/systemd/system/memtrail-box.target" <<'EOF'
[Unit]
Description=memtrail test box
Requires=basic.target
After=basic.target
AllowIsolate=yes
EOF
# Keep the box's journald off the host's kernel log (no import, no writes of its own there).
mkdir -p "$R/etc/systemd/journald.conf.d" "$R/etc/systemd/system/systemd-journald.service.d"
printf '[Journal]\nReadKMsg=no\nForwardToKMsg=no\n' > "$R/etc/systemd/journald.conf.d/box.conf"
printf '[Service]\nEnvironment=SYSTEMD_LOG_TARGET=console\n' \
    > "$R/etc/systemd/system/systemd-journald.service.d/box.conf"
mkdir -p "$R/.oldroot"
cd "$R"
pivot_root . .oldroot
umount -l /.oldroot
rmdir /.oldroot 2>/dev/null || true
exec env -i container=unshare PATH="$3" \
    /lib/systemd/systemd --system --log-target=journal --unit=memtrail-box.target
"""


class BoxError(RuntimeError):
    """The box could not be booted or driven; the message says what failed."""


def _cgroup2_root() -> Optional[str]:
    """Where a cgroup v2 hierarchy is mounted on the host (pure v2 or the hybrid 'unified')."""
    for path in ("/sys/fs/cgroup/unified", "/sys/fs/cgroup"):
        if os.path.exists(os.path.join(path, "cgroup.procs")) and os.path.exists(
            os.path.join(path, "cgroup.max.depth")
        ):
            return path
    return None


def unavailable_reason() -> Optional[str]:
    """Why a box cannot be booted here, or None when it can. For pytest.skip()."""
    if os.geteuid() != 0:
        return "needs root (mounts, namespaces, cgroups)"
    for tool in ("unshare", "nsenter", "pivot_root", "mount"):
        if shutil.which(tool) is None:
            return f"{tool} not found (util-linux)"
    if not os.access(SYSTEMD, os.X_OK):
        return f"{SYSTEMD} not found (systemd not installed)"
    if _cgroup2_root() is None:
        return "no cgroup v2 hierarchy mounted"
    for ns in ("pid", "mnt", "cgroup", "uts", "ipc", "net"):
        if not os.path.exists(f"/proc/self/ns/{ns}"):
            return f"the kernel has no {ns} namespaces"
    probe = subprocess.run(
        ["unshare", "--pid", "--fork", "--mount", "--cgroup", "--uts", "--ipc", "--net", "true"],
        capture_output=True, text=True, timeout=20,
    )
    if probe.returncode != 0:
        return "cannot create namespaces here: " + (probe.stderr.strip() or "unshare failed")
    return None


class SystemdBox:
    """A systemd booted as PID 1 of private namespaces; driven through nsenter."""

    def __init__(self, kmsg: bool = True, boot_timeout: float = 30.0) -> None:
        self.kmsg = kmsg
        self.boot_timeout = boot_timeout
        self.name = "memtrail-box-" + uuid.uuid4().hex[:8]
        self.cgroup = ""
        self.scratch = ""
        self.proc: Optional[subprocess.Popen] = None
        self.pid = 0  # systemd's PID on the host

    # -- lifecycle ---------------------------------------------------------------------------

    def __enter__(self) -> SystemdBox:
        try:
            self.boot()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def boot(self) -> None:
        root = _cgroup2_root()
        if root is None:
            raise BoxError("no cgroup v2 hierarchy")
        self.cgroup = os.path.join(root, self.name)
        os.mkdir(self.cgroup)
        # The scratch mount point must exist on the host; the tmpfs over it lives only inside
        # the box's mount namespace (propagation is private).
        self.scratch = os.path.join("/run", self.name)
        os.mkdir(self.scratch, 0o700)
        procs = os.path.join(self.cgroup, "cgroup.procs")
        launch = (
            'echo $$ > "$0" && exec unshare --pid --fork --mount --cgroup --uts --ipc --net '
            '--propagation private sh -c "$1" inner "$2" "$3" "$4"'
        )
        self.proc = subprocess.Popen(
            ["sh", "-c", launch, procs, _INNER, self.scratch, "1" if self.kmsg else "0", PATH],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + self.boot_timeout
        while not self.pid:
            self._check_alive()
            self.pid = self._find_systemd()
            if not self.pid:
                self._wait_until(deadline, "systemd to start")
        private = f"/proc/{self.pid}/root/run/systemd/private"
        while not os.path.exists(private):
            self._check_alive()
            self._wait_until(deadline, "systemd's private bus socket")
        left = max(1.0, deadline - time.monotonic())
        state = self.run("systemctl", "is-system-running", "--wait", check=False, timeout=left)
        if state.stdout.strip() not in ("running", "degraded"):
            raise BoxError(
                f"box did not boot: is-system-running says {state.stdout.strip()!r}; failed units: "
                + self.run("systemctl", "--failed", "--no-legend", check=False).stdout
            )

    def close(self) -> None:
        """Power the box off (gently, then not), then remove its cgroups and mount point."""
        if self.proc is not None and self.proc.poll() is None:
            if self.pid and os.path.exists(f"/proc/{self.pid}/root/run/systemd/private"):
                self.run("systemctl", "poweroff", check=False, timeout=10)
            if not self._wait_exit(10) and self.pid:
                _kill(self.pid, signal.SIGRTMIN + 4)  # systemd: halt/poweroff in containers
                if not self._wait_exit(5):
                    _kill(self.pid, signal.SIGKILL)  # ends the whole pid namespace
                    self._wait_exit(10)
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(10)
        if self.proc is not None and self.proc.stdout is not None:
            self.proc.stdout.close()
        if self.cgroup:
            _remove_cgroup_tree(self.cgroup)
            self.cgroup = ""
        if self.scratch:
            try:
                os.rmdir(self.scratch)
            except OSError:
                pass
            self.scratch = ""

    # -- driving it ----------------------------------------------------------------------------

    def run(self, *argv: str, check: bool = True, timeout: float = 30.0,
            env: Optional[Dict[str, str]] = None) -> subprocess.CompletedProcess:
        """Run a command inside every namespace of the box (as root, the box's PATH)."""
        cmd = ["nsenter", "-t", str(self.pid), "-a", "env", "-i", f"PATH={PATH}"]
        cmd += [f"{k}={v}" for k, v in (env or {}).items()]
        res = subprocess.run(cmd + list(argv), capture_output=True, text=True, timeout=timeout)
        if check and res.returncode != 0:
            raise BoxError(f"{' '.join(argv)} -> {res.returncode}: {res.stderr.strip()}")
        return res

    def systemctl(self, *args: str, check: bool = True, timeout: float = 30.0) -> str:
        return self.run("systemctl", *args, check=check, timeout=timeout).stdout

    def show(self, unit: str, prop: str) -> str:
        return self.systemctl("show", "-P", prop, unit).strip()

    def journal(self, *args: str) -> str:
        return self.run("journalctl", "--no-pager", *args, check=False).stdout

    def host_path(self, path: str) -> str:
        """The host path of a path inside the box (for reading its files from the test)."""
        return f"/proc/{self.pid}/root/" + path.lstrip("/")

    def write(self, path: str, text: str, mode: int = 0o644) -> None:
        """Create a file inside the box (it lands in the overlay, in memory)."""
        host = self.host_path(path)
        os.makedirs(os.path.dirname(host), exist_ok=True)
        with open(host, "w") as f:
            f.write(text)
        os.chmod(host, mode)

    # -- internals -----------------------------------------------------------------------------

    def _find_systemd(self) -> int:
        """systemd's host PID: the child of the unshare process, once it has exec'd systemd."""
        assert self.proc is not None
        try:
            with open(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children") as f:
                kids = f.read().split()
        except OSError:
            return 0
        for kid in kids:
            try:
                exe = os.readlink(f"/proc/{kid}/exe")
            except OSError:
                continue
            if exe.endswith("/systemd") and not exe.endswith("(deleted)"):
                return int(kid)
        return 0

    def _check_alive(self) -> None:
        assert self.proc is not None
        if self.proc.poll() is not None:
            out = self.proc.stdout.read().decode(errors="replace") if self.proc.stdout else ""
            raise BoxError(f"the box exited with {self.proc.returncode}: {out.strip()[-2000:]}")

    def _wait_until(self, deadline: float, what: str) -> None:
        if time.monotonic() > deadline:
            raise BoxError(f"timed out waiting for {what}")
        time.sleep(0.02)

    def _wait_exit(self, timeout: float) -> bool:
        assert self.proc is not None
        try:
            self.proc.wait(timeout)
            return True
        except subprocess.TimeoutExpired:
            return False


def _kill(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _remove_cgroup_tree(path: str, timeout: float = 10.0) -> List[str]:
    """rmdir a cgroup and its children, deepest first (a cgroup dies with its last process)."""
    left: List[str] = []
    deadline = time.monotonic() + timeout
    for dirpath, _dirs, _files in sorted(os.walk(path), key=lambda t: -t[0].count("/")):
        while True:
            try:
                os.rmdir(dirpath)
                break
            except FileNotFoundError:
                break
            except OSError:  # still populated for a moment after the last process exits
                if time.monotonic() > deadline:
                    left.append(dirpath)
                    break
                time.sleep(0.05)
    return left
