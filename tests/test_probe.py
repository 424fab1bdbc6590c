"""The start-up check of the stores: an answer of any kind will do, silence is one line."""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from pipeline.errors import UserError
from pipeline.probe import reachable

SEEN: list[str] = []  # the Authorization headers the server received


class _Refusing(BaseHTTPRequestHandler):
    def do_GET(self):
        SEEN.append(self.headers.get("Authorization", ""))
        self.send_response(401)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    httpd = HTTPServer(("127.0.0.1", 0), _Refusing)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd.server_address[1]
    httpd.shutdown()
    httpd.server_close()


def test_a_server_that_answers_at_all_is_reachable_with_the_urls_credentials(server):
    reachable("tracking.uri", f"http://user:secret@127.0.0.1:{server}", timeout=5)
    assert SEEN and SEEN[-1].startswith("Basic ")  # the credentials went as auth, not host


def test_a_port_that_is_not_http_or_silent_is_one_line_naming_the_key():
    with socket.socket() as listener:  # accepts, then says something that is not HTTP
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]

        def babble():
            conn, _ = listener.accept()
            conn.sendall(b"\x00\x01 not http\r\n\r\n")
            conn.close()

        threading.Thread(target=babble, daemon=True).start()
        with pytest.raises(UserError, match=r"^tracking\.uri: cannot use http://u:\*\*\*@"):
            reachable("tracking.uri", f"http://u:pw@127.0.0.1:{port}", timeout=5)


def test_files_and_sqlite_are_not_probed(tmp_path):
    reachable("tracking.uri", f"sqlite:///{tmp_path / 'none' / 'mlflow.db'}", timeout=1)
    reachable("tracking.artifact_location", (tmp_path / "a").as_uri(), timeout=1)
