"""Run the `memtrail` command from the copy of the analyzer beside this file.

`memtrail install-unit --textfile` copies the analyzer package (standard library only) to
/usr/local/lib/memtrail/memtrail/ and this launcher next to it, so memtrail-textfile.service
runs with the system's Python, independent of any virtualenv or home directory (the unit
hides /home), like the sampler. `-I` leaves the script's directory off sys.path: put it back.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from memtrail.cli import main  # noqa: E402

sys.exit(main())
