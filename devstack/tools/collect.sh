#!/bin/bash
# Stop memtrail and write its reports into $MEMTRAIL_OUTPUT_DIR (default $LOGDIR/memtrail):
# what the plugin does at unstack, for a Zuul post-run (roles/memtrail-devstack-collect),
# where devstack itself is not loaded. Settings as in devstack/lib/memtrail.
set -o errexit -o pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib/memtrail"
stop_memtrail
collect_memtrail
