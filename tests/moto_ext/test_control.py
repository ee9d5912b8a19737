"""The control endpoints answer, and close, whatever request body arrives with them."""

import os
import socket
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from werkzeug.serving import make_server  # noqa: E402

from moto_ext.control import ControlApp  # noqa: E402


def not_moto(environ, start_response):
    start_response("404 Not Found", [("Content-Length", "0")])
    return [b""]


class ControlBodyTest(unittest.TestCase):
    def setUp(self) -> None:
        self.server = make_server("127.0.0.1", 0, ControlApp(not_moto), threaded=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def tearDown(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def exchange(self, path: str, body: bytes) -> bytes:
        """Sends the headers, then the body a moment later, never closing the sending side
        (as an HTTP client waiting for the answer need not), and reads until the server
        closes. Werkzeug drains a body its handler left unread with a read that only EOF
        ends: a handler ignoring the body held such a connection open forever."""
        with socket.create_connection(("127.0.0.1", self.server.server_port), timeout=5) as s:
            head = (
                f"POST {path} HTTP/1.1\r\nHost: bed\r\nConnection: close\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
            )
            s.sendall(head.encode())
            time.sleep(0.003)
            s.sendall(body)
            answer = b""
            while chunk := s.recv(65536):
                answer += chunk
            return answer

    def test_an_endpoint_ignoring_its_body_still_closes(self) -> None:
        for _ in range(10):
            try:
                answer = self.exchange("/_bpl/requests/reset", b"{}")
            except socket.timeout:
                self.fail("no end of the answer within 5 s")
            self.assertTrue(answer.startswith(b"HTTP/1.1 200"), answer)
            self.assertIn(b'{"ok": true}', answer)

    def test_unknown_endpoints_close_too(self) -> None:
        answer = self.exchange("/_bpl/nothing", b'{"a": 1}')
        self.assertTrue(answer.startswith(b"HTTP/1.1 404"), answer)


if __name__ == "__main__":
    unittest.main()
