"""A lean HTTP/1.1 keep-alive client for the benchmarks: one connection, one request at a time, no cookies.

The load generator shares the machine's two cores with the servers it measures, and httpx spends about 1 ms of CPU
per request here: as much as the gateway's whole relay of a refresh. Keycloak's published figures come from a load
generator on other machines; this client keeps ours small (a request is written as bytes, the answer read by its
Content-Length), so the figures say more about the servers. It is used for a figure and for its bare-endpoint
baseline alike, so their ratio compares like with like.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit


@dataclass
class Response:
    status_code: int
    headers: dict[str, str]
    content: bytes

    def json(self) -> Any:
        return json.loads(self.content)


class LeanClient:
    def __init__(self, base_url: str) -> None:
        u = urlsplit(base_url)
        self.host, self.port = u.hostname or "127.0.0.1", u.port or 80
        self._host_header = f"{self.host}:{self.port}"
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def _connect(self) -> None:
        self._reader, self._writer = await asyncio.open_connection(self.host, self.port)

    async def request(self, method: str, path: str, *, headers: dict[str, str] | None = None,
                      data: dict[str, str] | None = None) -> Response:
        body = urlencode(data).encode() if data is not None else b""
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self._host_header}"]
        for k, v in (headers or {}).items():
            lines.append(f"{k}: {v}")
        if data is not None:
            lines.append("Content-Type: application/x-www-form-urlencoded")
        if body or method != "GET":
            lines.append(f"Content-Length: {len(body)}")
        raw = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
        for attempt in (0, 1):  # a keep-alive connection the server closed meanwhile is opened again once
            if self._writer is None:
                await self._connect()
            assert self._reader is not None and self._writer is not None
            try:
                self._writer.write(raw)
                head = await self._reader.readuntil(b"\r\n\r\n")
                break
            except (ConnectionError, asyncio.IncompleteReadError):
                await self.aclose()
                if attempt:
                    raise
        assert self._reader is not None  # the loop breaks only with the connection open
        status_line, *header_lines = head[:-4].decode("latin-1").split("\r\n")
        status = int(status_line.split(" ", 2)[1])
        got: dict[str, str] = {}
        for line in header_lines:
            k, _, v = line.partition(":")
            got[k.strip().lower()] = v.strip()
        if "content-length" in got:
            content = await self._reader.readexactly(int(got["content-length"]))
        elif got.get("transfer-encoding", "").lower() == "chunked":
            content = await self._chunked()
        else:
            content = b""
        if got.get("connection", "").lower() == "close":
            await self.aclose()
        return Response(status, got, content)

    async def _chunked(self) -> bytes:
        assert self._reader is not None
        parts: list[bytes] = []
        while True:
            size = int((await self._reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await self._reader.readuntil(b"\r\n")
                return b"".join(parts)
            parts.append(await self._reader.readexactly(size))
            await self._reader.readexactly(2)

    async def get(self, path: str, *, headers: dict[str, str] | None = None) -> Response:
        return await self.request("GET", path, headers=headers)

    async def post(self, path: str, *, headers: dict[str, str] | None = None,
                   data: dict[str, str] | None = None) -> Response:
        return await self.request("POST", path, headers=headers, data=data)

    async def aclose(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
            self._reader = None
