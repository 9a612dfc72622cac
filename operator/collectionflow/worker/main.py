"""`collectionflow worker`: run one phase attempt inside its Job and report how it went.

The operator learns the outcome from two things only: the container's exit code and its
termination message. So whatever happens (a bad environment, a handler that raises, a
simulated failure) the worker still writes a `PhaseResult` there when it can, and exits
0 for a succeeded phase, 1 (or the simulated exit code) for a failed one, and 2 when the
Job's environment does not describe a phase it can run.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import typer

from collectionflow.api.contract import (
    ENV_ATTEMPT,
    ENV_FLOW_NAME,
    ENV_NAMESPACE,
    ENV_PHASE,
    ENV_TERMINATION_MESSAGE_PATH,
    TERMINATION_MESSAGE_PATH,
    WorkerConfigError,
)
from collectionflow.domain.results import PhaseOutcome, PhaseResult
from collectionflow.worker.context import (
    PhaseContext,
    PhaseHandler,
)
from collectionflow.worker.heartbeat import Heartbeat, start_heartbeat
from collectionflow.worker.lookup import HandlerLookupError, find_handler
from collectionflow.worker.simulation import InvalidSimulation, Simulation

log = logging.getLogger("collectionflow.worker")

EXIT_SUCCEEDED = 0
EXIT_FAILED = 1
EXIT_CONFIG_ERROR = 2


class _PhaseTag(logging.Filter):
    """Stamps every log record with the namespace, flow, phase and attempt it belongs to."""

    def __init__(self, tag: str) -> None:
        super().__init__()
        self.tag = tag

    def filter(self, record: logging.LogRecord) -> bool:
        record.phase_tag = self.tag
        return True


def configure_logging(environ: Mapping[str, str]) -> None:
    """Log to stderr (stdout carries the result), tagged from the raw environment."""

    def value(name: str) -> str:
        return environ.get(name, "").strip() or "?"

    tag = f"{value(ENV_NAMESPACE)}/{value(ENV_FLOW_NAME)} {value(ENV_PHASE)}#{value(ENV_ATTEMPT)}"
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_PhaseTag(tag))
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)s [%(phase_tag)s] %(name)s: %(message)s")
    )
    logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)


def run_phase(
    ctx: PhaseContext,
    handler: PhaseHandler,
    heartbeat: Heartbeat,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[PhaseResult, int]:
    """Run the handler under the phase's simulation knobs; the result and the exit code."""
    try:
        simulation = Simulation.for_context(ctx)
    except InvalidSimulation as error:
        return ctx.failed(str(error), "the simulation knobs are invalid"), EXIT_FAILED
    simulation.work(heartbeat, sleep)
    exit_code = simulation.failure_exit_code(ctx.attempt)
    if exit_code is not None:
        message = f"simulated failure of attempt {ctx.attempt} (exit code {exit_code})"
        return ctx.failed(message, "the simulation asked this attempt to fail"), exit_code
    try:
        result = handler(ctx)
    except Exception as error:
        log.exception("the phase handler raised")
        return (
            ctx.failed(f"{type(error).__name__}: {error}", "the phase handler raised"),
            EXIT_FAILED,
        )
    if not isinstance(result, PhaseResult):
        message = f"the phase handler returned {type(result).__name__}, not a PhaseResult"
        return ctx.failed(message, "the phase handler broke the contract"), EXIT_FAILED
    result = simulation.steer(result)
    return result, EXIT_SUCCEEDED if result.state is PhaseOutcome.SUCCEEDED else EXIT_FAILED


def report(environ: Mapping[str, str], result: PhaseResult) -> None:
    """Write the result to the termination message and to stdout."""
    message = result.to_message()
    path = Path(environ.get(ENV_TERMINATION_MESSAGE_PATH) or TERMINATION_MESSAGE_PATH)
    try:
        path.write_text(message, encoding="utf-8")
    except OSError as error:
        log.error("cannot write the result to %s: %s", path, error)
    print(message, flush=True)


def _silent(ctx: PhaseContext) -> bool:
    """Whether the simulation keeps this attempt's heartbeat silent (invalid knobs are the
    phase's failure, reported by `run_phase`)."""
    try:
        return Simulation.for_context(ctx).silent
    except InvalidSimulation:
        return False


def run_worker(environ: Mapping[str, str]) -> int:
    """Run the phase the environment describes; returns the process exit code."""
    try:
        ctx = PhaseContext.from_environ(environ)
        handler = find_handler(ctx.flow_type, ctx.phase)
        heartbeat = start_heartbeat(ctx, environ, silent=_silent(ctx))
    except (WorkerConfigError, HandlerLookupError) as error:
        log.error("cannot run the phase: %s", error)
        report(
            environ,
            PhaseResult(
                state=PhaseOutcome.FAILED,
                next_phase=None,
                agent_decision="the worker's environment does not describe a phase it can run",
                error=str(error),
            ),
        )
        return EXIT_CONFIG_ERROR
    log.info(
        "running phase %s (flow type %s) with %s.%s",
        ctx.phase,
        ctx.flow_type,
        handler.__module__,
        getattr(handler, "__qualname__", type(handler).__name__),
    )
    try:
        result, exit_code = run_phase(ctx, handler, heartbeat)
    finally:
        heartbeat.stop()
    log.info(
        "phase %s %s (exit code %d): %s",
        ctx.phase,
        result.state.value,
        exit_code,
        result.error or result.agent_decision,
    )
    report(environ, result)
    return exit_code


def worker() -> None:
    """Run one phase attempt, as the COLLECTIONFLOW_* environment of its Job describes it."""
    configure_logging(os.environ)
    raise typer.Exit(run_worker(os.environ))
