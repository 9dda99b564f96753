"""Calling the API the three ways the manual's customers do."""

from __future__ import annotations

import httpx

BASE = "/api/get-api/v1/"


def call(
    http: httpx.Client,
    path: str,
    how: str,
    variables: dict,
    *,
    header_key: str | None = None,
    method: str | None = None,
    accept: str | None = None,
) -> httpx.Response:
    """how: "get" (query string), "form" (POST urlencoded), "json" (POST JSON), "multipart", "put"."""
    headers = {}
    if header_key:
        headers["Api-Key"] = header_key
    if accept:
        headers["Accept"] = accept
    url = BASE + path
    if how == "get":
        return http.request(method or "GET", url, params=variables, headers=headers)
    if how == "form":
        return http.request(method or "POST", url, data=variables, headers=headers)
    if how == "put":
        return http.request("PUT", url, data=variables, headers=headers)
    if how == "multipart":
        files = {k: (None, str(v)) for k, v in variables.items()}
        return http.request(method or "POST", url, files=files, headers=headers)
    if how == "json":
        return http.request(method or "POST", url, json=variables, headers=headers)
    raise ValueError(how)


HOWS = ["get", "form", "json", "multipart", "put"]


def envelope_ok(body: dict) -> None:
    """Every reply carries the manual's envelope fields, all strings."""
    for key in ("version", "code", "status", "resultstring", "statusmessage"):
        assert key in body, body
        assert isinstance(body[key], str), body
