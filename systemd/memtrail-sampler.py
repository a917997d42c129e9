"""Start the memtrail sampler from its byte-compiled module.

The unit runs this, not sampler.py: a script is compiled at every start and CPython keeps its
parse tree (about 5.5 MiB) for the life of the process, while an imported module comes from
__pycache__/sampler.*.pyc, compiled at install time (`memtrail install-unit`, or
`python3 -m py_compile sampler.py` by hand). Without the .pyc it still works, with more memory.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sampler  # noqa: E402

sys.exit(sampler.main())
