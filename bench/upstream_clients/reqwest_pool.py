"""Prototype (bench only, issue 17): an `H1Pool` look-alike on pyreqwest, to measure pyreqwest
through the gateway. Not part of the package and not maintained: the measured tree was a copy of
`src/` with this file as `llmroute/providers/reqwest_pool.py` and `HTTPTransport.pool()` building
`ReqwestPool(self.base_url, self.headers, limit=..., connect_s=..., read_s=...)` instead of an
`H1Pool`, run with pyreqwest==0.15.1 on PYTHONPATH (docs/benchmarks.md, "The upstream client").
Its streamed bodies arrived all at once there (read_chunk), not investigated further."""
from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta

from pyreqwest.client import ClientBuilder


class ReqwestResponse:
    def __init__(self, req, response):
        self.req = req
        self.response = response
        self.status = response.status
        self.headers = {k.lower(): v for k, v in response.headers.items()}
        self.reader = response.body_reader

    async def chunk(self):
        data = await self.reader.read_chunk()
        if data is None:
            await self.req.__aexit__(None, None, None)
            return None
        return bytes(data)

    async def read(self):
        data = bytes(await self.reader.bytes())
        await self.req.__aexit__(None, None, None)
        return data

    def release(self):
        pass


class ReqwestPool:
    def __init__(self, base_url: str, headers: Mapping[str, str], *, limit: int, connect_s: float,
                 read_s: float):
        self.base_url = base_url
        self.client = (ClientBuilder().default_headers(dict(headers)).follow_redirects(False)
                       .max_connections(limit).connect_timeout(timedelta(seconds=connect_s))
                       .read_timeout(timedelta(seconds=read_s)).build())

    async def request(self, path, body, headers=None):
        builder = self.client.post(self.base_url + path).body_bytes(body)
        if headers:
            builder = builder.headers(dict(headers))
        req = builder.build_streamed()
        response = await req.__aenter__()
        return ReqwestResponse(req, response)

    def close(self):
        pass
