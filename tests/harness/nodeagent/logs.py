"""The part of the kubelet API that `kubectl logs` needs: a container's log, over HTTPS.

The apiserver proxies `pods/log` to the node's kubelet endpoint (the node status's
`daemonEndpoints.kubeletEndpoint.Port`) at its InternalIP; this serves
`GET /containerLogs/<namespace>/<pod>/<container>` from the agent's log files. The apiserver
of the harness does not verify kubelet certificates, so a self-signed one does.
"""

from __future__ import annotations

import ssl
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from harness.pki import self_signed

ContainerLog = Callable[[str, str, str, bool], str]


class LogServer:
    def __init__(self, workdir: Path, container_log: ContainerLog) -> None:
        cert, key = self_signed(workdir / "kubelet-pki", "nodeagent-kubelet")
        read = container_log

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urlsplit(self.path)
                parts = url.path.strip("/").split("/")
                if len(parts) != 4 or parts[0] != "containerLogs":
                    self.send_error(404)
                    return
                previous = parse_qs(url.query).get("previous") == ["true"]
                try:
                    body = read(parts[1], parts[2], parts[3], previous).encode()
                except FileNotFoundError as error:
                    self.send_error(404, str(error))
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self.port = self._server.server_address[1]

    def start(self) -> None:
        threading.Thread(
            target=self._server.serve_forever, name="kubelet-logs", daemon=True
        ).start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
