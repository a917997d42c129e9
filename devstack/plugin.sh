#!/bin/bash
# plugin.sh: the memtrail devstack plugin. Records memory for the whole job with memtrail's
# sampler as a systemd unit (started before the projects are installed, so the stack itself
# is recorded too), writes a report when the stack is up, and the full set (report, HTML,
# JSON lines, raw logs) into $LOGDIR/memtrail at unstack, or from a Zuul post-run with
# devstack/tools/collect.sh. Settings: devstack/lib/memtrail. docs/fleet.md#devstack.

if is_service_enabled memtrail; then
    if [[ "$1" == "stack" && "$2" == "pre-install" ]]; then
        echo_summary "Installing memtrail and starting to record memory"
        install_memtrail
        configure_memtrail
        start_memtrail
    elif [[ "$1" == "stack" && "$2" == "install" ]]; then
        :  # recording since pre-install
    elif [[ "$1" == "stack" && "$2" == "post-config" ]]; then
        :
    elif [[ "$1" == "stack" && "$2" == "extra" ]]; then
        echo_summary "memtrail: memory report of the stack so far"
        memtrail_report stack-report || echo "memtrail: no report of the stack" >&2
    fi

    if [[ "$1" == "unstack" ]]; then
        stop_memtrail
        collect_memtrail
    fi

    if [[ "$1" == "clean" ]]; then
        cleanup_memtrail
    fi
fi
