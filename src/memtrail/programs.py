"""Name processes by the program people know them as, so a worker pool reads as one line.

`ps` shows `python3` for half a machine; an operator thinks "nova-api x24". The rules:
- the basename of argv[0] (a login shell's leading `-` dropped);
- an interpreter running a script is named by the script: `python3 /usr/bin/nova-api` ->
  `nova-api`, `python3 -m http.server` -> `http.server`, `java -jar /opt/kafka.jar` ->
  `kafka.jar`, `java ... org.example.Main` -> `Main`, `node server.js`, `perl x.pl`, `bash x.sh`;
- a process title set by the program itself (`nova-api: worker(3)`, `postgres: checkpointer`,
  `nginx: worker process`) is folded into the program before the colon;
- no command line (a zombie, or a process that cleared it): the kernel's `comm`.
Kernel threads never reach this: the sampler does not record them.
"""

from __future__ import annotations

import os
import re
from typing import List, Optional, Sequence

_INTERP_RE = re.compile(
    r"^(?:python|pypy|perl|ruby|node|nodejs|php|lua|luajit|tclsh|bash|sh|dash|zsh|ksh|"
    r"Rscript|deno|bun|java|jruby|gawk|awk)(?:\d+(?:\.\d+)*[a-z]?)?(?:-\w+)?$")
# Interpreter options that take a separate argument (the value is not the script).
_OPTS_WITH_ARG = {
    "python": {"-W", "-X", "-Q"},
    "perl": {"-I", "-M", "-m", "-x"},
    "ruby": {"-I", "-r", "-E", "-C", "-F"},
    "node": {"-r", "--require", "--import", "--loader", "--experimental-loader", "--inspect-port",
             "--title", "--max-old-space-size"},
    "java": {"-cp", "-classpath", "--class-path", "-p", "--module-path", "--add-opens",
             "--add-exports", "--add-modules", "-splash", "--add-reads", "--patch-module"},
    "bash": {"-o", "-O", "--rcfile", "--init-file"},
}
_TITLE_RE = re.compile(r"^([^\s:/][^\s:]*|/[^\s:]+): ")


def _family(name: str) -> str:
    for fam in ("python", "pypy", "perl", "ruby", "nodejs", "node", "java", "bash", "zsh",
                "dash", "ksh", "sh"):
        if name.startswith(fam):
            return {"pypy": "python", "nodejs": "node", "zsh": "bash", "dash": "bash",
                    "ksh": "bash", "sh": "bash"}.get(fam, fam)
    return name


def _script_of(interp: str, args: List[str]) -> Optional[str]:
    """The script/module/jar an interpreter runs, or None (`python3 -c ...`, a bare shell)."""
    fam = _family(interp)
    with_arg = _OPTS_WITH_ARG.get(fam, set())
    i = 0
    while i < len(args):
        arg = args[i]
        if fam == "python" and arg == "-m" and i + 1 < len(args):
            return args[i + 1]
        if fam == "python" and arg.startswith("-m") and len(arg) > 2:
            return arg[2:]
        if fam == "java" and arg == "-jar" and i + 1 < len(args):
            return os.path.basename(args[i + 1])
        if fam == "java" and arg in ("-m", "--module") and i + 1 < len(args):
            return args[i + 1].split("/")[-1].rsplit(".", 1)[-1]
        if arg in ("-c", "-e", "-E") and fam in ("python", "bash", "perl", "ruby", "node"):
            return None  # inline code: the interpreter is the best name
        if arg == "--":
            return os.path.basename(args[i + 1]) if i + 1 < len(args) else None
        if arg.startswith("-"):
            i += 2 if arg in with_arg else 1
            continue
        if fam == "java":
            return arg.rsplit(".", 1)[-1] if "/" not in arg else os.path.basename(arg)
        if arg.startswith(("/dev/fd/", "/proc/", "/dev/stdin")):
            return None  # a script fed through a pipe: the interpreter is the best name
        return os.path.basename(arg) or None
    return None


def title_args(cmd: Sequence[str]) -> List[str]:
    """argv without the padding of a rewritten process title, for display: setproctitle
    (nginx) leaves the old argv area as empty strings, postgres pads its title with spaces.
    A table or a sentence shows `nginx: worker process`, not it followed by 20 blanks."""
    args = list(cmd)
    while args and not args[-1].strip():
        args.pop()
    if args:
        args[-1] = args[-1].rstrip(" ")
    return args


def program_name(cmd: List[str], comm: str = "?") -> str:
    """The program a process belongs to (see the module docstring for the rules)."""
    args = list(cmd)
    while args and args[-1] == "":
        args.pop()  # setproctitle leaves the old argv area as empty strings
    if not args:
        return comm or "?"
    first = args[0]
    title = _TITLE_RE.match(first)
    if title:
        return os.path.basename(title.group(1).lstrip("-")) or comm
    if len(args) == 1 and " " in first.strip():
        args = first.split()  # a title rewritten as one string: "ruby /srv/app/x"
        first = args[0]
    base = os.path.basename(first).lstrip("-")
    if not base:
        return comm or "?"
    if _INTERP_RE.match(base):
        script = _script_of(base, args[1:])
        if script:
            return script
    return base
