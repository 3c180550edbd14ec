"""The endpoints list pages with the services' pager, as the API's list does."""

from __future__ import annotations

import re

from portal.ui import endpoints as endpoint_views
from tests.factories import make_subscription


def test_endpoint_list_walks_every_page(portal, monkeypatch) -> None:
    monkeypatch.setattr(endpoint_views, "PAGE_SIZE", 2)
    ids = [
        make_subscription(portal.admin.tenant_id, f"http://127.0.0.1:9/{n}")[0].id for n in range(3)
    ]
    first = portal.get("/endpoints").get_data(as_text=True)
    older = re.search(r'href="/endpoints\?cursor=([^"]+)"', first)
    assert older and older.group(1) == ids[1]
    assert ids[2] in first and ids[1] in first and ids[0] not in first
    second = portal.get(f"/endpoints?cursor={older.group(1)}")
    body = second.get_data(as_text=True)
    assert second.status_code == 200
    assert ids[0] in body and ids[1] not in body
    assert "cursor=" not in body
