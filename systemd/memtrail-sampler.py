"""Start the memtrail sampler the way `python3 sampler.py` starts itself.

The unit runs this stable path. It imports sampler.py (from __pycache__/sampler.*.pyc,
compiled at install time by `memtrail install-unit` or `python3 -m py_compile sampler.py`),
then makes the sampler's one re-exec (sampler.lean_reexec): into an image that runs the
handed-over code without compiling anything, with glibc's mmap threshold fixed. Imported and
run in place, as this launcher did before, the sampler held 30 MiB at 19,900 processes
instead of 24 (bench/RESULTS.md). If the exec cannot be made, it runs here.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sampler  # noqa: E402

sampler.lean_reexec()
sys.exit(sampler.main())
