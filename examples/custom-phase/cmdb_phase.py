"""An example phase: the assets of the flow's `parameters.cmdb` export, as the phase's
outputs for the phases after it. It runs in a Job of an image that has this package
installed (see the Dockerfile beside it), as the worker's `automated_collection`."""

from __future__ import annotations

from typing import Any

from collectionflow.domain.results import PhaseResult
from collectionflow.worker.context import PhaseContext


def collect(ctx: PhaseContext) -> PhaseResult:
    """Read the assets from the flow's parameters; fail, saying why, when there are none."""
    export: Any = ctx.parameters.get("cmdb")
    if not isinstance(export, list) or not export:
        return ctx.failed("parameters.cmdb must be a non-empty list of assets")
    assets = [asset for asset in export if isinstance(asset, dict) and asset.get("name")]
    decision = f"{len(assets)} assets from the CMDB export of {ctx.flow_name}"
    return ctx.succeeded({"assets": assets, "source": "cmdb"}, decision)
