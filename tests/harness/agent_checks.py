"""Pods, Jobs and process checks the node-agent cluster tests share."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path
from typing import Any

from kubernetes import client

from harness.cluster import VENV_IMAGE

PYTHON = sys.executable
IMAGE = VENV_IMAGE

# Appends its pid to $PID_FILE, then sleeps until killed.
SLEEPER = textwrap.dedent(
    """
    import os, time
    with open(os.environ["PID_FILE"], "a") as handle:
        handle.write(f"{os.getpid()}\\n")
    while True:
        time.sleep(0.1)
    """
)


def python_container(script: str, name: str = "main", **extra: Any) -> dict[str, Any]:
    return {"name": name, "image": IMAGE, "command": [PYTHON, "-c", script], **extra}


def env_var(name: str, value: str) -> dict[str, str]:
    return {"name": name, "value": value}


def pids_in(path: Path) -> list[int]:
    try:
        return [int(line) for line in path.read_text().split()]
    except FileNotFoundError:
        return []


def alive(pid: int) -> bool:
    """Whether a process exists and is not a zombie (orphans are reaped by whoever is init)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def job_manifest(name: str, script: str, backoff_limit: int) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "backoffLimit": backoff_limit,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [python_container(script)],
                }
            },
        },
    }


def job_condition(batch: client.BatchV1Api, namespace: str, name: str, kind: str) -> Any:
    job = batch.read_namespaced_job(name, namespace)
    for condition in (job.status.conditions if job.status else None) or []:
        if condition.type == kind and condition.status == "True":
            return job
    return None
