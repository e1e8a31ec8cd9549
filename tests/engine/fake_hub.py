"""A stand-in for the Hugging Face Hub on 127.0.0.1: in-memory repos served the way the Hub
answers huggingface_hub 2.4's `HfApi.model_info` and `hf_hub_download`, with a log of the
requests it received. Loopback only; each repo has one commit, reachable as "main" or by hash."""

from __future__ import annotations

import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

#: repo id -> file name -> content
Repos = dict[str, dict[str, bytes]]


class FakeHub(ThreadingHTTPServer):
    """Serves `repos` at `url` from a daemon thread until `stop()`. `requests` lists each
    request as (method, path), query left out, in the order they arrived."""

    def __init__(self, repos: Repos) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.repos = repos
        self.requests: list[tuple[str, str]] = []
        self.url = f"http://127.0.0.1:{self.server_address[1]}"
        # a short poll keeps `stop()` quick
        self._thread = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def start(self) -> FakeHub:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop answering and close the port, so a client gets "connection refused"."""
        if self._thread.is_alive():
            self.shutdown()
        self.server_close()

    def commit(self, repo_id: str) -> str:
        """The repo's commit hash: 40 hex digits that change when any file does."""
        digest = hashlib.sha1()
        for name, content in sorted(self.repos[repo_id].items()):
            digest.update(name.encode() + b"\0" + hashlib.sha1(content).digest())
        return digest.hexdigest()


class _Handler(BaseHTTPRequestHandler):
    # HTTP/1.0: one request per connection, so a stopped hub cannot be reached through a kept one
    server: FakeHub

    def do_GET(self) -> None:
        self._answer()

    def do_HEAD(self) -> None:
        self._answer()  # the same headers as GET, without the body

    def log_message(self, format: str, *args: object) -> None:
        pass  # keep the test output clean

    def _answer(self) -> None:
        path = unquote(urlsplit(self.path).path)
        self.server.requests.append((self.command, path))
        if path.startswith("/api/models/"):
            # /api/models/{repo_id} or /api/models/{repo_id}/revision/{revision}
            repo_id, _, revision = path.removeprefix("/api/models/").partition("/revision/")
            self._model_info(repo_id, revision or "main")
        elif "/resolve/" in path:
            # /{repo_id}/resolve/{revision}/{filename}
            repo_id, _, rest = path.lstrip("/").partition("/resolve/")
            revision, _, filename = rest.partition("/")
            self._file(repo_id, revision, filename)
        else:
            self._send(404, {}, b"")

    def _model_info(self, repo_id: str, revision: str) -> None:
        if self._refused(repo_id, revision):
            return
        files = self.server.repos[repo_id]
        info = {
            "id": repo_id,
            "sha": self.server.commit(repo_id),
            "siblings": [{"rfilename": name, "size": len(data)} for name, data in files.items()],
        }
        self._send(200, {"Content-Type": "application/json"}, json.dumps(info).encode())

    def _file(self, repo_id: str, revision: str, filename: str) -> None:
        if self._refused(repo_id, revision):
            return
        commit = {"X-Repo-Commit": self.server.commit(repo_id)}
        content = self.server.repos[repo_id].get(filename)
        if content is None:
            # the commit header lets the client cache the file's absence under that commit
            self._error("EntryNotFound", f"{filename} does not exist on {revision}", commit)
            return
        headers = {
            **commit,
            "ETag": f'"{hashlib.sha256(content).hexdigest()}"',
            "Content-Type": "application/octet-stream",
        }
        self._send(200, headers, content)

    def _refused(self, repo_id: str, revision: str) -> bool:
        """Answer the Hub's 404 for an unknown repo or revision; True when it did."""
        if repo_id not in self.server.repos:
            self._error("RepoNotFound", "Repository not found")
        elif revision not in ("main", self.server.commit(repo_id)):
            self._error("RevisionNotFound", "Invalid rev id")
        else:
            return False
        return True

    def _error(self, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        # huggingface_hub picks its exception class from X-Error-Code
        body = json.dumps({"error": message}).encode()
        self._send(404, {**(headers or {}), "X-Error-Code": code, "X-Error-Message": message}, body)

    def _send(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))  # HEAD too: the client reads the size
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
