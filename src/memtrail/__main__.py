import sys

from memtrail.cli import main

sys.exit(main())
