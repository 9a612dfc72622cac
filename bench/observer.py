"""The benchmarks' view of a namespace's Jobs and their pods, from watches in threads."""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kubernetes import client
from kubernetes.watch.watch import iter_resp_lines


@dataclass
class Observer:
    """Sees every Job of a namespace: when each appeared and when each was seen Complete; and
    its pod: when first seen and when seen Succeeded, which splits a Job's run into the job
    controller's part and the node's."""

    namespace: str
    key: Callable[[dict[str, Any]], tuple[str, int] | None]
    created: dict[tuple[str, int], float] = field(default_factory=dict)
    completed: dict[tuple[str, int], float] = field(default_factory=dict)
    names: dict[tuple[str, int], str] = field(default_factory=dict)
    pod_seen: dict[str, float] = field(default_factory=dict)
    pod_succeeded: dict[str, float] = field(default_factory=dict)
    completions: queue.Queue[tuple[str, int]] = field(default_factory=queue.Queue)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self, api: client.ApiClient) -> None:
        self._follow(client.BatchV1Api(api).list_namespaced_job, self._on_job)

    def run_pods(self, api: client.ApiClient) -> None:
        self._follow(client.CoreV1Api(api).list_namespaced_pod, self._on_pod, "job-name")

    def _follow(
        self,
        list_call: Callable[..., Any],
        handle: Callable[[dict[str, Any]], None],
        label_selector: str = "",
    ) -> None:
        """Watch the namespace until stopped, each watch resuming where the last one ended (a
        fresh watch would replay every object), on raw JSON: the client's models would cost
        this process more than the work it measures."""
        resource_version: str | None = None
        while not self.stop.is_set():
            response = list_call(
                self.namespace,
                label_selector=label_selector,
                resource_version=resource_version,
                allow_watch_bookmarks=True,
                timeout_seconds=5,
                watch=True,
                _preload_content=False,
            )
            try:
                for line in iter_resp_lines(response):
                    event = json.loads(line)
                    if event["type"] == "ERROR":  # 410 Gone: start again from the current state
                        resource_version = None
                        break
                    resource_version = event["object"]["metadata"]["resourceVersion"]
                    if event["type"] != "BOOKMARK":
                        handle(event["object"])
                    if self.stop.is_set():
                        break
            finally:
                response.close()
                response.release_conn()

    def _on_job(self, job: dict[str, Any]) -> None:
        key = self.key(job)
        if key is None:
            return
        now = time.monotonic()
        self.created.setdefault(key, now)
        self.names[key] = job["metadata"]["name"]
        conditions = (job.get("status") or {}).get("conditions") or []
        complete = any(c["type"] == "Complete" and c["status"] == "True" for c in conditions)
        if complete and key not in self.completed:
            self.completed[key] = now
            self.completions.put(key)

    def _on_pod(self, pod: dict[str, Any]) -> None:
        job = pod["metadata"]["labels"]["job-name"]
        now = time.monotonic()
        self.pod_seen.setdefault(job, now)
        if (pod.get("status") or {}).get("phase") == "Succeeded":
            self.pod_succeeded.setdefault(job, now)

    def controller_stages(self) -> tuple[list[float], list[float]]:
        """The job controller's two parts of each Job's run: from the Job seen to its pod
        seen (creating the pod), and from the pod seen Succeeded to the Job seen Complete."""
        create, complete = [], []
        for key, name in self.names.items():
            if name in self.pod_seen and key in self.created:
                create.append(self.pod_seen[name] - self.created[key])
            if name in self.pod_succeeded and key in self.completed:
                complete.append(self.completed[key] - self.pod_succeeded[name])
        return create, complete

    def job_runs(self) -> list[float]:
        """From each Job seen created to seen Complete: the cluster's part of a phase."""
        return [
            done - self.created[key] for key, done in self.completed.items() if key in self.created
        ]

    def gaps(self) -> list[float]:
        return [
            self.created[(chain, step + 1)] - done
            for (chain, step), done in self.completed.items()
            if (chain, step + 1) in self.created
        ]


def observe(api: client.ApiClient, observer: Observer) -> threading.Thread:
    """Start the observer's watches; the Job watch's thread is returned (the pod watch's
    stops with it)."""
    threading.Thread(target=observer.run_pods, args=(api,), daemon=True).start()
    thread = threading.Thread(target=observer.run, args=(api,), daemon=True)
    thread.start()
    return thread
