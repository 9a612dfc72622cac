"""``python -m harness.nodeagent``: run the local node agent until SIGTERM or SIGINT."""

from __future__ import annotations

import argparse
import logging
import shlex
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from harness.images.store import prepare_image
from harness.nodeagent.agent import NodeAgent


def parse_image_option(value: str) -> tuple[str, tuple[str, ...] | None]:
    """``NAME`` or ``NAME=ENTRYPOINT`` (shell-split) of the ``--image`` option."""
    name, sep, entrypoint = value.partition("=")
    if not name:
        raise ValueError(f"--image {value!r}: the image name is empty")
    return name, (tuple(shlex.split(entrypoint)) if sep else None)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m harness.nodeagent",
        description="Run the local node agent until SIGTERM/SIGINT (graceful stop).",
    )
    parser.add_argument("--kubeconfig", type=Path, required=True, help="admin kubeconfig")
    parser.add_argument("--node-name", required=True)
    parser.add_argument("--workdir", type=Path, required=True, help="pod directories and logs")
    parser.add_argument(
        "--image",
        action="append",
        default=[],
        metavar="NAME[=ENTRYPOINT]",
        help="an image repository the agent runs, optionally with its entrypoint (repeatable)",
    )
    parser.add_argument(
        "--local-image",
        action="append",
        default=[],
        metavar="REFERENCE",
        help="a locally built image (buildah) whose pods run from its filesystem (repeatable)",
    )
    parser.add_argument("--heartbeat-seconds", type=float, default=5.0)
    parser.add_argument(
        "--no-schedule",
        action="store_true",
        help="do not bind pending pods (another scheduler or agent does)",
    )
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    try:
        image_map = dict(parse_image_option(value) for value in args.image)
    except ValueError as error:
        parser.error(str(error))
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    agent = NodeAgent(
        kubeconfig=args.kubeconfig,
        node_name=args.node_name,
        image_map=image_map,
        workdir=args.workdir,
        local_images=[prepare_image(reference) for reference in args.local_image],
        heartbeat_seconds=args.heartbeat_seconds,
        schedule=not args.no_schedule,
    )
    agent.start()
    print(f"nodeagent: node {args.node_name} is ready", flush=True)
    while not stop.wait(1.0):
        pass
    agent.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
