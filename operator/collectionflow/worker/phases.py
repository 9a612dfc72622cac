"""The seven built-in phases of the `collection` flow type: a small, real reference.

They exist so that the operator can be run, demonstrated and tested end to end without an
external collection system: each one does deterministic work on an inventory of assets in
the flow's `parameters`, and each one shows a part of the phase contract (validation that
fails a phase, outputs read by later phases, a phase that skips the next one).

    {"assets": [{"name": "web-01", "platform": "vmware", "os": "linux", "cpu": 4}, ...],
     "requiredAttributes": ["os", "cpu", "memoryGiB", "owner"]}

`requiredAttributes` defaults to `DEFAULT_REQUIRED_ATTRIBUTES`. An attribute is known when
the asset has it with a value other than null or "". The manual phase reads answers to the
questionnaire from the manual input: `{"answers": {"web-01": {"owner": "team-a"}}}`.

A later phase uses an earlier phase's outputs from `ctx.previous_outputs` when they are
there, complete and consistent with the inventory, and recomputes them from `parameters`
otherwise. Per-asset listings in outputs are cut to a byte budget, with a count of what was
left out, so that a result always fits the termination message.

Every phase, built-in or plug-in, also obeys the demo and failure knobs in
`parameters["simulate"][<phase>]` (sleep, hang, exit code, failing attempts, forced next
phase): see `collectionflow.worker.simulation`.
"""

from __future__ import annotations

import functools
import json
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

from collectionflow.domain.registry import COLLECTION, CollectionPhase
from collectionflow.domain.results import PhaseResult
from collectionflow.worker.context import PhaseContext, PhaseHandler
from collectionflow.worker.inventory import UNKNOWN_PLATFORM, InvalidPhaseData, Inventory, is_value

BUILT_IN_FLOW_TYPE = COLLECTION.flow_type
LISTING_BUDGET_BYTES = 1200


QUESTIONS = {
    "os": "Which operating system does {asset} run?",
    "cpu": "How many CPUs does {asset} have?",
    "memoryGiB": "How much memory, in GiB, does {asset} have?",
    "owner": "Who owns {asset}?",
}
GENERIC_QUESTION = "What is the {attribute} of {asset}?"


def _inventory_phase(
    work: Callable[[PhaseContext, Inventory], PhaseResult],
) -> PhaseHandler:
    """A handler that parses the inventory first and fails the phase when it is invalid."""

    @functools.wraps(work)
    def handler(ctx: PhaseContext) -> PhaseResult:
        try:
            return work(ctx, Inventory.from_parameters(ctx.parameters))
        except InvalidPhaseData as error:
            return ctx.failed(str(error), f"phase {ctx.phase} cannot work on its data")

    return handler


def _bounded(key: str, listing: Mapping[str, Any]) -> dict[str, Any]:
    """`{key: listing}` cut to the byte budget, plus `<key>Omitted` when entries were cut."""
    kept: dict[str, Any] = {}
    used = 0
    for name, value in listing.items():
        used += len(json.dumps({name: value}))
        if used > LISTING_BUDGET_BYTES:
            break
        kept[name] = value
    outputs: dict[str, Any] = {key: kept}
    if len(kept) < len(listing):
        outputs[f"{key}Omitted"] = len(listing) - len(kept)
    return outputs


def _previous_listing(
    ctx: PhaseContext, phase: str, key: str, inventory: Inventory, *, every_asset: bool
) -> dict[str, list[str]] | None:
    """A complete per-asset listing of attributes from an earlier phase's outputs, or None."""
    outputs = ctx.previous_outputs.get(phase, {})
    listing = outputs.get(key)
    if not isinstance(listing, dict) or f"{key}Omitted" in outputs:
        return None
    names = inventory.names
    if not (set(listing) == names if every_asset else set(listing) <= names):
        return None
    required = set(inventory.required)
    for attributes in listing.values():
        if not isinstance(attributes, list) or not set(attributes) <= required:
            return None
    return {asset.name: listing[asset.name] for asset in inventory.assets if asset.name in listing}


def _known(ctx: PhaseContext, inventory: Inventory) -> dict[str, list[str]]:
    previous = _previous_listing(
        ctx, CollectionPhase.AUTOMATED_COLLECTION, "collected", inventory, every_asset=True
    )
    return previous if previous is not None else inventory.known()


def _gaps(ctx: PhaseContext, inventory: Inventory) -> dict[str, list[str]]:
    """Per asset with gaps, the required attributes still unknown after automated collection."""
    previous = _previous_listing(
        ctx, CollectionPhase.GAP_ANALYSIS, "gaps", inventory, every_asset=False
    )
    if previous is not None:
        return previous
    known = _known(ctx, inventory)
    gaps = {
        name: [attribute for attribute in inventory.required if attribute not in attributes]
        for name, attributes in known.items()
    }
    return {name: missing for name, missing in gaps.items() if missing}


def _count(listing: Mapping[str, list[str]]) -> int:
    return sum(len(attributes) for attributes in listing.values())


@_inventory_phase
def initialization(ctx: PhaseContext, inventory: Inventory) -> PhaseResult:
    count = len(inventory.assets)
    return ctx.succeeded(
        {"assetCount": count, "requiredAttributes": list(inventory.required)},
        f"inventory of {count} assets is valid; "
        f"{len(inventory.required)} attributes are required per asset",
    )


@_inventory_phase
def platform_detection(ctx: PhaseContext, inventory: Inventory) -> PhaseResult:
    platforms = inventory.platforms
    decision = f"{len(inventory.assets)} assets on {len(platforms)} platforms"
    if platforms[UNKNOWN_PLATFORM]:
        decision += f"; {platforms[UNKNOWN_PLATFORM]} without a platform"
    return ctx.succeeded(
        {**_bounded("platforms", platforms), "platformCount": len(platforms)}, decision
    )


@_inventory_phase
def automated_collection(ctx: PhaseContext, inventory: Inventory) -> PhaseResult:
    collected = inventory.known()
    count = _count(collected)
    return ctx.succeeded(
        {
            **_bounded("collected", collected),
            "collectedAttributeCount": count,
            "requiredAttributeCount": inventory.required_count,
        },
        f"collected {count} of {inventory.required_count} required attributes automatically",
    )


@_inventory_phase
def gap_analysis(ctx: PhaseContext, inventory: Inventory) -> PhaseResult:
    gaps = _gaps(ctx, inventory)
    count = _count(gaps)
    return ctx.succeeded(
        {**_bounded("gaps", gaps), "gapCount": count, "assetsWithGaps": len(gaps)},
        f"{count} required attributes are missing on {len(gaps)} of {len(inventory.assets)} assets",
    )


@_inventory_phase
def questionnaire_generation(ctx: PhaseContext, inventory: Inventory) -> PhaseResult:
    gaps = _gaps(ctx, inventory)
    questions = {
        name: {
            attribute: QUESTIONS.get(attribute, GENERIC_QUESTION).format(
                asset=name, attribute=attribute
            )
            for attribute in missing
        }
        for name, missing in gaps.items()
    }
    count = _count(gaps)
    outputs = {**_bounded("questions", questions), "questionCount": count}
    if count:
        return ctx.succeeded(
            outputs,
            f"{count} gaps on {len(gaps)} assets need answers: asking {count} questions "
            f"in {CollectionPhase.MANUAL_COLLECTION}",
            CollectionPhase.MANUAL_COLLECTION,
        )
    return ctx.succeeded(
        outputs,
        "no gaps: every required attribute was collected automatically, so "
        f"{CollectionPhase.MANUAL_COLLECTION} is skipped and the flow goes on to "
        f"{CollectionPhase.SYNTHESIS}",
        CollectionPhase.SYNTHESIS,
    )


def _answers(manual_input: Mapping[str, Any] | None) -> dict[str, dict[str, Any]]:
    if manual_input is None or "answers" not in manual_input:
        return {}
    answers = manual_input["answers"]
    if not isinstance(answers, dict) or not all(isinstance(a, dict) for a in answers.values()):
        raise InvalidPhaseData(
            'the manual input\'s answers must be an object of {"<asset>": {"<attribute>": <value>}}'
        )
    return answers


@_inventory_phase
def manual_collection(ctx: PhaseContext, inventory: Inventory) -> PhaseResult:
    answers = _answers(ctx.manual_input)
    gaps = _gaps(ctx, inventory)
    platform_of = {asset.name: asset.platform for asset in inventory.assets}
    answered: dict[str, list[str]] = {}
    remaining: dict[str, list[str]] = {}
    for name, missing in gaps.items():
        given = answers.get(name, {})
        answered[name] = [attribute for attribute in missing if is_value(given.get(attribute))]
        remaining[name] = [a for a in missing if a not in answered[name]]
    answered = {name: attributes for name, attributes in answered.items() if attributes}
    remaining = {name: attributes for name, attributes in remaining.items() if attributes}
    answered_by_platform: Counter[str] = Counter()
    for name, attributes in answered.items():
        answered_by_platform[platform_of[name]] += len(attributes)
    answered_count = _count(answered)
    ignored = sum(len(given) for given in answers.values()) - answered_count
    decision = f"{answered_count} of {_count(gaps)} gaps answered; {_count(remaining)} remain"
    if ctx.manual_input is None:
        decision = f"no manual input was given; {decision}"
    if ignored:
        decision += f"; {ignored} answers did not fill a gap and were ignored"
    return ctx.succeeded(
        {
            **_bounded("answered", answered),
            "answeredCount": answered_count,
            **_bounded("remaining", remaining),
            "remainingGapCount": _count(remaining),
            "answeredByPlatform": dict(answered_by_platform),
            "ignoredAnswerCount": ignored,
        },
        decision,
    )


def _answered_by_platform(ctx: PhaseContext, inventory: Inventory) -> Counter[str]:
    """Answers per platform from the manual phase; none when it did not run or is unusable."""
    raw = ctx.previous_outputs.get(CollectionPhase.MANUAL_COLLECTION, {}).get("answeredByPlatform")
    platforms = inventory.platforms
    if not isinstance(raw, dict) or not all(
        platform in platforms and type(count) is int and count >= 0
        for platform, count in raw.items()
    ):
        return Counter()
    return Counter(raw)


def _percentage(part: int, whole: int) -> float:
    return round(100 * part / whole, 1) if whole else 100.0


@_inventory_phase
def synthesis(ctx: PhaseContext, inventory: Inventory) -> PhaseResult:
    known = _known(ctx, inventory)
    answered = _answered_by_platform(ctx, inventory)
    known_by_platform: Counter[str] = Counter()
    for asset in inventory.assets:
        known_by_platform[asset.platform] += len(known[asset.name])
    readiness: dict[str, float] = {}
    for platform, assets in inventory.platforms.items():
        required = assets * len(inventory.required)
        known_by_platform[platform] = min(
            required, known_by_platform[platform] + answered[platform]
        )
        readiness[platform] = _percentage(known_by_platform[platform], required)
    known_count = sum(known_by_platform.values())
    overall = _percentage(known_count, inventory.required_count)
    unknown = inventory.required_count - known_count
    return ctx.succeeded(
        {
            **_bounded("readiness", readiness),
            "readinessPercentage": overall,
            "knownAttributeCount": known_count,
            "requiredAttributeCount": inventory.required_count,
            "remainingGapCount": unknown,
        },
        f"inventory is {overall}% ready ({known_count} of {inventory.required_count} "
        "required attributes known); "
        + (f"{unknown} are still unknown" if unknown else "every asset is complete"),
    )


BUILT_IN_PHASES: Mapping[str, PhaseHandler] = {
    CollectionPhase.INITIALIZATION: initialization,
    CollectionPhase.PLATFORM_DETECTION: platform_detection,
    CollectionPhase.AUTOMATED_COLLECTION: automated_collection,
    CollectionPhase.GAP_ANALYSIS: gap_analysis,
    CollectionPhase.QUESTIONNAIRE_GENERATION: questionnaire_generation,
    CollectionPhase.MANUAL_COLLECTION: manual_collection,
    CollectionPhase.SYNTHESIS: synthesis,
}
