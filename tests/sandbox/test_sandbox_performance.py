"""A page of 100 parties with embeds out of 10,000 costs milliseconds of server CPU, not seconds."""

import time

from tap_capsule.sandbox.server import App


def test_large_pages_are_cheap():
    app = App(token="t", scale=10000, seed=1)
    headers = {"Authorization": "Bearer t"}
    start = time.process_time()
    total = 0
    for page in (1, 50, 100):
        response = app.handle(
            "GET",
            f"/api/v2/parties?perPage=100&embed=tags,fields,organisation&page={page}",
            headers,
            b"",
        )
        assert response.status == 200
        total += 1
    since = app.handle(
        "GET", "/api/v2/parties?perPage=100&since=2025-06-01T00:00:00Z", headers, b""
    )
    assert since.status == 200
    per_request = (time.process_time() - start) / (total + 1)
    assert per_request < 0.1, per_request
