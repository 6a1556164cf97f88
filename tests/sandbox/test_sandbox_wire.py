"""Each answer leaves in one write on a TCP_NODELAY socket (no delayed-ACK stall on keep-alive).

A stdlib handler writes the headers and the body separately; with Nagle's algorithm on, the second
small write waits for the client's delayed ACK (~40 ms). benchmarks/sandbox_latency.py shows the
time; this test checks the mechanism, without timing anything.
"""

import socket
import threading

from tap_capsule.sandbox.app import App
from tap_capsule.sandbox.server import Handler, SandboxHTTPServer


class CountingSocket(socket.socket):
    """A TCP socket that records every `sendall`."""

    sent: list

    def sendall(self, data, *args):
        self.sent.append(bytes(data))
        return super().sendall(data, *args)


def serve_one_connection(requests: bytes) -> tuple[list[bytes], bool, bytes]:
    """Run one Handler over a real loopback TCP connection; (writes, finished, bytes read)."""
    app = App(token="t", scale=3, seed=1)
    server = SandboxHTTPServer(("127.0.0.1", 0), app)  # bound only, not serving
    listener = socket.create_server(("127.0.0.1", 0))
    client = socket.create_connection(listener.getsockname(), timeout=10)
    accepted, address = listener.accept()
    conn = CountingSocket(socket.AF_INET, socket.SOCK_STREAM, 0, fileno=accepted.detach())
    conn.sent = []
    finished: list[int] = []

    def handle():
        Handler(conn, address, server)  # returns when the client asks to close
        finished.append(1)
        conn.close()  # what the server's shutdown_request does

    try:
        worker = threading.Thread(target=handle)
        worker.start()
        client.sendall(requests)
        received = b""
        while chunk := client.recv(65536):
            received += chunk
        worker.join(10)
    finally:
        client.close()
        listener.close()
        server.server_close()
    return conn.sent, bool(finished), received


def test_each_response_is_one_write_on_a_finished_socket(monkeypatch):
    options = []
    real_setsockopt = socket.socket.setsockopt

    def record(self, level, name, value, *rest):
        options.append((level, name, value))
        return real_setsockopt(self, level, name, value, *rest)

    monkeypatch.setattr(CountingSocket, "setsockopt", record, raising=False)
    auth = b"Authorization: Bearer t\r\nHost: x\r\n"
    requests = (
        b"GET /api/v2/users/current HTTP/1.1\r\n" + auth + b"\r\n"
        b"GET /api/v2/parties?perPage=2 HTTP/1.1\r\n" + auth + b"Connection: close\r\n\r\n"
    )
    writes, finished, received = serve_one_connection(requests)
    assert finished
    assert (socket.IPPROTO_TCP, socket.TCP_NODELAY, True) in options
    assert len(writes) == 2  # two keep-alive requests, one write each
    for write in writes:
        head, _, body = write.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 OK\r\n")
        length = next(
            int(line.split(b":")[1])
            for line in head.split(b"\r\n")
            if line.startswith(b"Content-Length")
        )
        assert len(body) == length > 0
        assert b"X-RateLimit-Remaining" in head and b"Date: " in head
    assert received == b"".join(writes)
