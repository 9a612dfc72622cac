"""`python -m bench` (`make bench`): run every benchmark; fail if any fails."""

import sys

from bench import idle, job_pods, stall_latency

sys.exit(max(job_pods.main(), stall_latency.main(), idle.main()))
