"""A TCP proxy in front of the apiserver whose traffic a test can cut: a network partition.

One process (an operator replica) gets a kubeconfig that points at the proxy instead of the
apiserver. `cut()` drops every open connection and from then on holds new ones open without
forwarding a byte, so requests hang until their timeouts, as across a partition (a refused
connection would fail fast, which a partition does not). `restore()` forwards again.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from pathlib import Path
from urllib.parse import urlsplit

import yaml

from harness.lifecycle import Service


class PartitionProxy(Service):
    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 443)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._cut = False
        self._closed = False

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def kubeconfig(self, original: Path, target: Path) -> Path:
        """A copy of `original` whose clusters point at this proxy."""
        document = yaml.safe_load(original.read_text())
        for cluster in document.get("clusters") or []:
            cluster["cluster"]["server"] = self.server
        target.write_text(yaml.safe_dump(document))
        return target

    def start(self) -> None:
        threading.Thread(target=self._accept, name="partition-proxy", daemon=True).start()

    def stop(self) -> None:
        self._closed = True
        with contextlib.suppress(OSError):
            self._listener.close()
        self._drop_all()

    def cut(self) -> None:
        with self._lock:
            self._cut = True
        self._drop_all()

    def restore(self) -> None:
        with self._lock:
            self._cut = False

    def _drop_all(self) -> None:
        with self._lock:
            sockets, self._sockets = self._sockets, set()
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                sock.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                cut = self._cut
                self._sockets.add(client)
            if cut:
                continue  # held open, never answered
            try:
                upstream = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets.add(upstream)
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
