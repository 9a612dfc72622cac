"""`python -m bench` (`make bench`): run every benchmark."""

import sys

from bench import stall_latency

sys.exit(stall_latency.main())
