"""`python -m bench` (`make bench`): run every benchmark; fail if any fails."""

import sys

from bench import (
    active,
    eta,
    failover,
    first_sync,
    idle,
    job_pods,
    outage,
    request_costs,
    restarts,
    stall_latency,
    throughput,
    ui_latency,
)

sys.exit(
    max(
        job_pods.main(),
        stall_latency.main(),
        throughput.main(),
        request_costs.main(),
        outage.main(),
        restarts.main(),
        idle.main(),
        active.main(),
        first_sync.main(),
        failover.main(),
        eta.main(),
        ui_latency.main(),
    )
)
