"""docs/api.md's curl examples, run against the app in order: each must succeed, and every
operation of the OpenAPI document must have one, so the guide cannot drift from the API."""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

from portal.api import API_PREFIX
from portal.api.operator import OPERATOR_PREFIX

DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"
EXAMPLE_URL = "https://example.com/hooks"


@dataclass
class Curl:
    """One curl command, reduced to what the test client needs."""

    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    data: str | None = None


def curl_commands(text: str) -> list[Curl]:
    commands = []
    for block in re.findall(r"```sh\n(.*?)```", text, flags=re.S):
        source = block.replace("\\\n", " ")
        if not source.lstrip().startswith("curl"):
            continue
        commands.append(parse(shlex.split(source)))
    return commands


def parse(argv: list[str]) -> Curl:
    assert argv[0] == "curl"
    method, url, headers, data, query, as_get = None, None, {}, None, [], False
    args = iter(argv[1:])
    for arg in args:
        if arg == "-s":
            continue
        if arg == "-X":
            method = next(args)
        elif arg == "-H":
            name, _, value = next(args).partition(":")
            headers[name.strip()] = value.strip()
        elif arg == "-d":
            data = next(args)
        elif arg == "-G":
            as_get = True
        elif arg == "--data-urlencode":
            query.append(tuple(next(args).split("=", 1)))
        elif arg.startswith("-"):
            raise AssertionError(f"the doc test does not know curl option {arg}")
        else:
            url = arg
    if as_get and query:
        url += "?" + urlencode(query, safe="$:")
    return Curl(method or ("POST" if data else "GET"), url, headers, data)


def operation_of(spec: dict, method: str, path: str) -> tuple[str, str] | None:
    for template, item in spec["paths"].items():
        pattern = "^" + re.sub(r"\\{\w+\\}", r"[^/]+", re.escape(template)) + "$"
        if re.match(pattern, path) and method.lower() in item:
            return method.lower(), template
    return None


def test_every_curl_example_in_the_api_guide_works(api, client, receiver):
    spec = client.get(API_PREFIX + "/openapi.json").get_json()
    commands = curl_commands(DOC.read_text(encoding="utf-8"))
    # Deletions go last, so the examples after them still have something to act on.
    commands.sort(key=lambda c: c.method == "DELETE")
    variables = {"$HOOKLINE_KEY": api.key, "$HOOKLINE": ""}
    covered = set()
    for command in commands:
        url = command.url
        headers = dict(command.headers)
        for name, value in sorted(variables.items(), key=lambda kv: -len(kv[0])):
            url = url.replace(name, value)
            headers = {k: v.replace(name, value) for k, v in headers.items()}
        data = command.data.replace(EXAMPLE_URL, receiver.url("/hooks")) if command.data else None
        if data is not None:
            json.loads(data)  # the guide's bodies are valid JSON
        response = client.open(url, method=command.method, headers=headers, data=data)
        assert response.status_code < 300, (command, response.get_data(as_text=True))
        if url == API_PREFIX + "/openapi.json":
            continue
        operation = operation_of(spec, command.method, url.split("?")[0])
        assert operation, f"{command.method} {url} is not an API operation"
        covered.add(operation)
        body = response.get_json(silent=True) or {}
        if operation == ("post", API_PREFIX + "/subscriptions"):
            variables["$SUB"] = body["id"]
        if operation == ("post", API_PREFIX + "/events"):
            variables["$EVT"] = body["id"]
            variables["$DLV"] = api.get("/deliveries").get_json()["data"][0]["id"]
    # The operator API's examples are docs/operator-api.md's (tests/api/test_operator.py).
    documented = {
        (method, path)
        for path, item in spec["paths"].items()
        for method in item
        if method in {"get", "post", "patch", "delete"} and not path.startswith(OPERATOR_PREFIX)
    }
    assert documented - covered == set(), "operations without a curl example in docs/api.md"
