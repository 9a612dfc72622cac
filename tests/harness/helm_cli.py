"""`helm` for the docs' commands, on a machine with helm-python-sdk and no helm binary.

The docs say `helm install ...`, `helm upgrade ...`, `helm test ...`, `helm rollback ...` and
`helm uninstall ...`; `tests/e2e/test_docs.py` puts this on the PATH as `helm`, so those
commands run as written, through Helm's own Go SDK. It knows the flags the docs use, and
refuses any other with helm's exit status 1.

`--set` follows Helm's strvals for what charts take from a command line: `a.b=c` nests,
`{x,y}` is a list, `true`/`false`/`null` and integers are typed, `\\,` and `\\.` escape.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Sequence
from typing import Any

import helm_python as helm

DURATION = re.compile(r"^(?:(?P<h>\d+)h)?(?:(?P<m>\d+)m)?(?:(?P<s>\d+)s)?$")


class SetError(ValueError):
    """A `--set` that Helm would refuse too."""


def _split(text: str, separator: str) -> list[str]:
    """Split on ``separator`` where it is not escaped by a backslash."""
    parts, current, index = [], "", 0
    while index < len(text):
        char = text[index]
        if char == "\\" and index + 1 < len(text):
            current += text[index + 1]
            index += 2
            continue
        if char == separator:
            parts.append(current)
            current = ""
        else:
            current += char
        index += 1
    parts.append(current)
    return parts


def typed(value: str) -> Any:
    """A `--set` value as Helm types it."""
    if value.startswith("{") and value.endswith("}"):
        inner = value[1:-1]
        return [_scalar(item) for item in _split(inner, ",")] if inner else []
    return _scalar(re.sub(r"\\(.)", r"\1", value))


def _scalar(value: str) -> Any:
    if value in ("true", "false"):
        return value == "true"
    if value == "null":
        return None
    if re.fullmatch(r"-?(0|[1-9]\d*)", value):
        return int(value)
    return value


def apply_set(values: dict[str, Any], assignment: str) -> None:
    """Apply one `--set key.path=value` (a comma separates several, as in Helm)."""
    for item in _split_top(assignment):
        key, equals, raw = item.partition("=")
        if not equals or not key:
            raise SetError(f"key {item!r} has no value")
        path = [part for part in _split(key, ".")]
        if any(not part for part in path):
            raise SetError(f"key {key!r} has an empty part")
        node = values
        for part in path[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        node[path[-1]] = typed(raw)


def _split_top(assignment: str) -> list[str]:
    """Split ``a=1,b={x,y}`` on the commas outside braces."""
    parts, current, depth, escaped = [], "", 0, False
    for char in assignment:
        if escaped:
            current += "\\" + char
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            depth += {"{": 1, "}": -1}.get(char, 0)
            current += char
    parts.append(current)
    return parts


def seconds(duration: str) -> int:
    """`5m`, `90s`, `1h30m` as seconds."""
    match = DURATION.fullmatch(duration)
    if not duration or match is None:
        raise argparse.ArgumentTypeError(f"invalid duration {duration!r}")
    return int(match["h"] or 0) * 3600 + int(match["m"] or 0) * 60 + int(match["s"] or 0)


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="helm", description=__doc__.splitlines()[0])
    commands = top.add_subparsers(dest="command", required=True)
    for name in ("install", "upgrade"):
        command = commands.add_parser(name)
        command.add_argument("release")
        command.add_argument("chart")
        command.add_argument("--set", action="append", default=[])
        command.add_argument("--reuse-values", action="store_true")
        command.add_argument("--create-namespace", action="store_true")
    test = commands.add_parser("test")
    test.add_argument("release")
    test.add_argument("--logs", action="store_true")
    rollback = commands.add_parser("rollback")
    rollback.add_argument("release")
    rollback.add_argument("revision", type=int, nargs="?")
    uninstall = commands.add_parser("uninstall")
    uninstall.add_argument("release")
    history = commands.add_parser("history")
    history.add_argument("release")
    for command in commands.choices.values():
        command.add_argument("-n", "--namespace", default="default")
        command.add_argument("--wait", action="store_true")
        command.add_argument("--timeout", type=seconds, default=300)
    return top


def values_of(assignments: Sequence[str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for assignment in assignments:
        apply_set(values, assignment)
    return values


def run(args: argparse.Namespace) -> str:
    """Carry out one command; what helm prints for it."""
    config = helm.Config(kubeconfig_path=os.environ.get("KUBECONFIG"), namespace=args.namespace)
    wait = "watcher" if args.wait else None
    match args.command:
        case "install" | "upgrade":
            chart_args = (args.chart, args.release, values_of(args.set))
            options = {"namespace": args.namespace, "wait": wait, "timeout": args.timeout}
            if args.command == "install":
                release = config.install(
                    *chart_args, **options, create_namespace=args.create_namespace
                )
                return _summary(release) + f"\nNOTES:\n{release.get('notes', '')}"
            release = config.upgrade(*chart_args, **options, reuse_values=args.reuse_values)
            return f'Release "{args.release}" has been upgraded.\n' + _summary(release)
        case "test":
            tested = config.test(args.release, timeout=args.timeout, logs=args.logs)
            return _summary(tested["release"]) + "\n" + str(tested.get("logs") or "")
        case "rollback":
            config.rollback(args.release, version=args.revision, wait=wait, timeout=args.timeout)
            return "Rollback was a success! Happy Helming!"
        case "uninstall":
            config.uninstall(args.release, wait=wait, timeout=args.timeout)
            return f'release "{args.release}" uninstalled'
        case _:
            rows = config.history(args.release)
            return "\n".join(json.dumps(row, default=str) for row in rows)


def _summary(release: dict[str, Any]) -> str:
    return (
        f"NAME: {release.get('name')}\nNAMESPACE: {release.get('namespace')}\n"
        f"STATUS: {release.get('status')}\nREVISION: {release.get('revision')}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        print(run(args))
    except (helm.HelmError, SetError) as error:
        print(f"Error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
