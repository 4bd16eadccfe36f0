"""Small stateful fakes of Bluesky's XRPC, X's v2 and Postiz's public API, as real HTTP servers
on 127.0.0.1 (threads) that store what they receive and can inject 429s, 5xx and refusals."""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qs, urlsplit

from oauthlib.oauth1.rfc5849 import signature as oauth_signature

Answer = tuple[int, dict[str, str], Any]


@dataclass
class Request:
    """One request as the fake received it."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    raw_query: str = ""

    def json(self) -> Any:
        return json.loads(self.body or b"null")

    def multipart(self) -> dict[str, tuple[bytes, str]]:
        """Multipart form fields: name → (bytes, content type)."""
        head = f"Content-Type: {self.headers['content-type']}\r\n\r\n".encode()
        message = BytesParser(policy=HTTP).parsebytes(head + self.body)
        return {part.get_param("name", header="content-disposition"):
                (part.get_payload(decode=True), part.get_content_type())
                for part in message.iter_parts()}


@dataclass
class Fault:
    """Answer the next `count` requests to `method path` with this instead."""

    method: str
    path: str
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None
    count: int = 1


class FakeServer:
    """A threaded HTTP server whose routes are `(method, path prefix) → handler`."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.faults: list[Fault] = []
        self.routes: list[tuple[str, str, Callable[[Request], Answer]]] = []
        self.lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                parts = urlsplit(self.path)
                request = Request(self.command, parts.path, parse_qs(parts.query),
                                  {k.lower(): v for k, v in self.headers.items()},
                                  self.rfile.read(length), parts.query)
                status, headers, body = owner.answer(request)
                data = b"" if body is None else json.dumps(body).encode()
                self.send_response(status)
                for key, value in {"Content-Type": "application/json", **headers}.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _serve  # noqa: N815

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def route(self, method: str, path: str, handler: Callable[[Request], Answer]) -> None:
        self.routes.append((method, path, handler))

    def answer(self, request: Request) -> Answer:
        with self.lock:
            self.requests.append(request)
            for fault in self.faults:
                if fault.method == request.method and request.path.startswith(fault.path):
                    fault.count -= 1
                    if fault.count <= 0:
                        self.faults.remove(fault)
                    return fault.status, fault.headers, fault.body
            for method, path, handler in self.routes:
                if method == request.method and request.path.startswith(path):
                    return handler(request)
        return 404, {}, {"error": "NotFound", "message": request.path}

    def start(self) -> FakeServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def fake_jwt(did: str, scope: str) -> str:
    now = int(time.time())
    return ".".join((_b64({"alg": "HS256", "typ": "JWT"}),
                     _b64({"scope": scope, "sub": did, "iat": now, "exp": now + 7200,
                           "aud": "did:web:fake.test"}), "c2ln"))


def fake_cid(data: bytes) -> str:
    """A real CIDv1 (raw codec, sha2-256), base32: what a PDS answers for a blob."""
    raw = bytes([0x01, 0x55, 0x12, 0x20]) + hashlib.sha256(data).digest()
    return "b" + base64.b32encode(raw).decode().lower().rstrip("=")


class BlueskyFake(FakeServer):
    """createSession, refreshSession, uploadBlob, createRecord, listRecords."""

    def __init__(self, handle: str, password: str) -> None:
        super().__init__()
        self.handle, self.password, self.did = handle, password, "did:plc:fakeava"
        self.sessions_created = 0
        self.blobs: list[tuple[bytes, str]] = []
        self.records: list[dict[str, Any]] = []
        xrpc = "/xrpc/"
        self.route("POST", xrpc + "com.atproto.server.createSession", self._create_session)
        self.route("POST", xrpc + "com.atproto.server.refreshSession", self._session)
        self.route("POST", xrpc + "com.atproto.repo.uploadBlob", self._upload)
        self.route("POST", xrpc + "com.atproto.repo.createRecord", self._create)
        self.route("GET", xrpc + "com.atproto.repo.listRecords", self._list)

    def _session(self, request: Request) -> Answer:
        del request
        return 200, {}, {"accessJwt": fake_jwt(self.did, "com.atproto.access"),
                         "refreshJwt": fake_jwt(self.did, "com.atproto.refresh"),
                         "handle": self.handle, "did": self.did}

    def _create_session(self, request: Request) -> Answer:
        body = request.json()
        if body.get("identifier") != self.handle or body.get("password") != self.password:
            return 401, {}, {"error": "AuthenticationRequired", "message": "Invalid password"}
        self.sessions_created += 1
        return self._session(request)

    def _authorized(self, request: Request) -> bool:
        return request.headers.get("authorization", "").startswith("Bearer ")

    def _upload(self, request: Request) -> Answer:
        if not self._authorized(request):
            return 401, {}, {"error": "AuthenticationRequired"}
        if len(request.body) > 2_000_000:
            return 400, {}, {"error": "BlobTooLarge", "message": "over 2,000,000 bytes"}
        self.blobs.append((request.body, request.headers.get("content-type", "")))
        return 200, {}, {"blob": {"$type": "blob", "ref": {"$link": fake_cid(request.body)},
                                  "mimeType": "image/jpeg", "size": len(request.body)}}

    def _create(self, request: Request) -> Answer:
        if not self._authorized(request):
            return 401, {}, {"error": "AuthenticationRequired"}
        body = request.json()
        rkey = f"3k{len(self.records):011d}"
        uri = f"at://{self.did}/{body['collection']}/{rkey}"
        self.records.append({"uri": uri, "cid": fake_cid(request.body), "value": body["record"]})
        return 200, {}, {"uri": uri, "cid": fake_cid(request.body)}

    def _list(self, request: Request) -> Answer:
        return 200, {}, {"records": list(reversed(self.records))}


class XFake(FakeServer):
    """v2 media upload + metadata, POST /2/tweets, users/me and the user's posts."""

    def __init__(self, secrets: dict[str, str]) -> None:
        super().__init__()
        self.secrets = secrets
        self.media: dict[str, dict[str, Any]] = {}
        self.tweets: list[dict[str, Any]] = []
        self.route("POST", "/2/media/upload", self._upload)
        self.route("POST", "/2/media/metadata", self._metadata)
        self.route("POST", "/2/tweets", self._tweet)
        self.route("GET", "/2/users/me", self._guard(lambda r: (200, {}, {"data": {
            "id": "42", "username": "ava"}})))
        self.route("GET", "/2/users/42/tweets", self._guard(lambda r: (200, {}, {"data": [
            {"id": t["id"], "text": t["text"]} for t in reversed(self.tweets)]})))

    def _guard(self, handler: Callable[[Request], Answer]) -> Callable[[Request], Answer]:
        def guarded(request: Request) -> Answer:
            if not self._signed(request):
                return 401, {}, {"title": "Unauthorized"}
            return handler(request)
        return guarded

    def _signed(self, request: Request) -> bool:
        """An OAuth 1.0a HMAC-SHA1 signature that verifies with this app's and user's secrets."""
        auth = {"Authorization": request.headers.get("authorization", "")}
        if not auth["Authorization"].startswith("OAuth "):
            return False
        given = dict(oauth_signature.collect_parameters(headers=auth,
                                                        exclude_oauth_signature=False))
        signed = SimpleNamespace(
            uri=f"{self.base_url}{request.path}", http_method=request.method,
            params=oauth_signature.collect_parameters(uri_query=request.raw_query, headers=auth),
            signature=given.get("oauth_signature", ""))
        return given.get("oauth_consumer_key") == self.secrets["consumer_key"] and \
            oauth_signature.verify_hmac_sha1(signed, self.secrets["consumer_secret"],
                                             self.secrets["access_token_secret"])

    def _upload(self, request: Request) -> Answer:
        if not self._signed(request):
            return 401, {}, {"title": "Unauthorized"}
        fields = request.multipart()
        media_id = str(1000 + len(self.media))
        self.media[media_id] = {"bytes": len(fields["media"][0]),
                                "category": fields["media_category"][0].decode()}
        return 200, {}, {"data": {"id": media_id, "media_key": f"3_{media_id}"}}

    def _metadata(self, request: Request) -> Answer:
        body = request.json()
        self.media[body["id"]]["alt_text"] = body["metadata"]["alt_text"]["text"]
        return 200, {}, {"data": {"id": body["id"]}}

    def _tweet(self, request: Request) -> Answer:
        if not self._signed(request):
            return 401, {}, {"title": "Unauthorized"}
        body = request.json()
        tweet = {"id": str(9000 + len(self.tweets)), **body}
        self.tweets.append(tweet)
        return 201, {}, {"data": {"id": tweet["id"], "text": body["text"]}}


class PostizFake(FakeServer):
    """GET /integrations, POST /upload, POST /posts, GET /posts."""

    def __init__(self, api_key: str) -> None:
        super().__init__()
        self.api_key = api_key
        self.uploads: list[bytes] = []
        self.posts: list[dict[str, Any]] = []
        base = "/public/v1"
        self.route("GET", base + "/integrations", self._guard(lambda r: (200, {}, [
            {"id": "chan-1", "name": "ava", "identifier": "bluesky", "disabled": False}])))
        self.route("POST", base + "/upload", self._guard(self._upload))
        self.route("POST", base + "/posts", self._guard(self._create))
        self.route("GET", base + "/posts", self._guard(lambda r: (200, {}, {"posts": [
            {"id": p["id"], "content": p["posts"][0]["value"][0]["content"],
             "publishDate": p["date"]} for p in self.posts]})))

    def _guard(self, handler: Callable[[Request], Answer]) -> Callable[[Request], Answer]:
        def guarded(request: Request) -> Answer:
            if request.headers.get("authorization") != self.api_key:
                return 401, {}, {"message": "Invalid API key"}
            return handler(request)
        return guarded

    def _upload(self, request: Request) -> Answer:
        data, _ = request.multipart()["file"]
        self.uploads.append(data)
        number = len(self.uploads)
        return 200, {}, {"id": f"up-{number}", "path": f"https://uploads.test/{number}.jpg"}

    def _create(self, request: Request) -> Answer:
        body = request.json()
        post = {"id": f"post-{len(self.posts) + 1}", **body}
        self.posts.append(post)
        return 200, {}, [{"postId": post["id"], "integration": "chan-1"}]
