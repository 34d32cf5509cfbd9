"""The console's metrics history and pages, and the try-it page (no browser here).

``MetricsHistory`` runs on a real ``RuntimeMetrics`` registry counted through its own
methods, with a clock the tests move; then a real ``ApiServer`` where real DetectFaces
calls through ``/console/api/`` appear in ``/console/metrics/series``.
"""

from __future__ import annotations

import base64
import json
import math
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from streamproc.engine import Engine
from streamproc.errors import (
    InternalServerError,
    InvalidImageFormatException,
    InvalidParameterException,
    ThrottlingException,
)
from streamproc.http.server import ApiServer
from streamproc.metrics_history import MetricsHistory, histogram_quantile
from streamproc.runtime.metrics import RuntimeMetrics
from streamproc.settings import Settings
from streamproc.shapes import BoundingBox, DetectFacesResponse, FaceDetail
from tests.console_client import browser_session, signed_in

DATA = Path(__file__).parent / "data"
PHOTO = DATA / "faces" / "barack_obama" / "1.jpg"
T0 = 1_800_000_000.0 + 10  # ten seconds into a minute


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def _faces(count: int) -> DetectFacesResponse:
    box = BoundingBox(Left=0.1, Top=0.1, Width=0.2, Height=0.2)
    return DetectFacesResponse(
        FaceDetails=[FaceDetail(BoundingBox=box, Confidence=99.0) for _ in range(count)])


# -- MetricsHistory on a real registry ---------------------------------------------------------


def test_each_minute_keeps_what_happened_in_it() -> None:
    metrics, clock = RuntimeMetrics(), Clock()
    history = MetricsHistory(metrics, clock=clock)
    ops = metrics.operations
    ops.succeeded("DetectFaces", 0.04, _faces(2))
    ops.succeeded("DetectFaces", 0.06, _faces(1))
    ops.failed("DetectFaces", InvalidParameterException("bad"), 0.01)
    ops.failed("DetectFaces", ThrottlingException("slow down"), 0.0)
    history.sample()
    clock.advance(60)  # the next minute
    ops.succeeded("DetectFaces", 0.2, _faces(0))
    ops.failed("DetectFaces", InternalServerError("boom"), 0.3)
    clock.advance(5)
    series = history.series(3)

    assert series["times"] == [(int(T0 // 60) + i) * 60 for i in (-1, 0, 1)]
    faces = series["operations"]["DetectFaces"]
    assert faces["successful"] == [None, 2, 1]  # before the history started: no data
    assert faces["user_errors"] == [None, 1, 0]
    assert faces["server_errors"] == [None, 0, 1]
    assert faces["throttled"] == [None, 1, 0]
    assert faces["faces"] == [None, 3, 0]
    assert faces["labels"] == [None, 0, 0]
    # Response time observed for answers and refusals, not for throttled requests.
    assert faces["response_time_mean"][0] is None
    assert faces["response_time_mean"][1] == pytest.approx((0.04 + 0.06 + 0.01) / 3)
    assert faces["response_time_mean"][2] == pytest.approx(0.25)
    totals = series["totals"]["operations"]["DetectFaces"]
    assert totals["successful"] == 3 and totals["user_errors"] == 1
    assert totals["server_errors"] == 1 and totals["throttled"] == 1 and totals["faces"] == 3
    assert totals["requests"] == 6
    json.dumps(series)  # JSON-ready as it is


def test_a_quiet_minute_reads_zero_and_an_operation_appears_when_first_used() -> None:
    metrics, clock = RuntimeMetrics(), Clock()
    history = MetricsHistory(metrics, clock=clock)
    assert history.series(5)["operations"] == {}
    metrics.operations.succeeded("DetectLabels", 0.1)
    metrics.operations.labels.labels("DetectLabels").inc(7)
    clock.advance(120)
    labels = history.series(3)["operations"]["DetectLabels"]
    # Sampled only now: what happened since the last reading lands in the current minute.
    assert labels["successful"] == [0, 0, 1]
    assert labels["labels"] == [0, 0, 7]
    clock.advance(60)
    labels = history.series(4)["operations"]["DetectLabels"]
    assert labels["successful"] == [0, 0, 1, 0]
    assert labels["response_time_mean"] == [None, None, pytest.approx(0.1), None]


def test_the_ring_keeps_24_hours_and_forgets_what_is_older() -> None:
    metrics, clock = RuntimeMetrics(), Clock()
    history = MetricsHistory(metrics, clock=clock)
    ops = metrics.operations
    ops.succeeded("DetectFaces", 0.05)
    history.sample()
    clock.advance(1439 * 60)  # the same slot's last minute before it is reused
    ops.succeeded("DetectFaces", 0.05)
    ops.succeeded("DetectFaces", 0.05)
    series = history.series(1440)
    assert len(series["times"]) == 1440
    assert series["operations"]["DetectFaces"]["successful"][0] == 1
    assert series["operations"]["DetectFaces"]["successful"][-1] == 2
    assert sum(series["operations"]["DetectFaces"]["successful"]) == 3

    clock.advance(60)  # a day after the first minute: its slot now holds the new minute
    ops.succeeded("DetectFaces", 0.05)
    series = history.series(1440)
    assert series["times"][0] == (int(T0 // 60) + 1) * 60
    assert series["operations"]["DetectFaces"]["successful"][-1] == 1
    assert sum(series["operations"]["DetectFaces"]["successful"]) == 3  # the first one is gone
    assert history.series(100_000)["minutes"] == 1440  # never more than the ring holds

    clock.advance(3 * 1440 * 60)  # days of silence: nothing old shows through
    quiet = history.series(1440)["operations"]["DetectFaces"]["successful"]
    assert quiet == [0] * 1440


def test_stream_fps_and_latency_per_minute() -> None:
    metrics, clock = RuntimeMetrics(), Clock(T0 - 10)  # at a minute's start
    history = MetricsHistory(metrics, clock=clock)
    for _ in range(600):  # 10 fps for a whole minute, each 60 ms late
        metrics.frames.labels("door").inc()
        metrics.latency.labels("door").observe(0.06)
    metrics.online.labels("door").set(1)
    clock.advance(59)
    history.sample()
    clock.advance(31)  # half of the next minute, live
    for _ in range(150):
        metrics.frames.labels("door").inc()
        metrics.latency.labels("door").observe(0.3 if _ < 140 else 4.0)
    series = history.series(2)
    door = series["streams"]["door"]
    assert door["frames"] == [600, 150]
    assert door["fps"][0] == pytest.approx(10.0)
    assert door["fps"][1] == pytest.approx(5.0)  # 150 frames in the 30 s so far
    assert door["latency_mean"][0] == pytest.approx(0.06)
    # p95 as Prometheus's histogram_quantile: 95 % of the way through (0.05, 0.075].
    assert door["latency_p95"][0] == pytest.approx(0.05 + 0.025 * 0.95)
    assert door["latency_mean"][1] == pytest.approx((140 * 0.3 + 10 * 4.0) / 150)
    # Rank 142.5 of 150 lies in (2, 5]: 140 at or below 0.3, 10 in (2, 5].
    assert door["latency_p95"][1] == pytest.approx(2.0 + 3.0 * (142.5 - 140) / 10)
    totals = series["totals"]["streams"]["door"]
    assert totals["frames"] == 750 and totals["online"] is True


def test_histogram_quantile_as_prometheus() -> None:
    assert histogram_quantile(0.95, []) is None
    assert histogram_quantile(0.95, [(0.1, 0), (math.inf, 0)]) is None
    assert histogram_quantile(0.5, [(0.1, 10), (0.2, 10), (math.inf, 10)]) == pytest.approx(0.05)
    # Everything above the last finite bound: that bound, as Prometheus answers.
    assert histogram_quantile(0.95, [(0.1, 0), (1.0, 0), (math.inf, 5)]) == 1.0


# -- the console, in-process ------------------------------------------------------------------

ADMIN = ("AKIDADMIN", "admin-secret-1")
NO_METRICS = ("AKIDNOMETRICS", "no-metrics-secret-2")


def _auth_file(path: Path) -> Path:
    everything = {"Version": "2012-10-17",
                  "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
    rekognition_only = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "rekognition:*", "Resource": "*"}]}
    path.write_text(json.dumps({"Users": [
        {"UserName": "admin", "AccessKeyId": ADMIN[0], "SecretAccessKey": ADMIN[1],
         "Policy": everything},
        {"UserName": "nometrics", "AccessKeyId": NO_METRICS[0],
         "SecretAccessKey": NO_METRICS[1], "Policy": rekognition_only},
    ]}))
    return path


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[ApiServer]:
    tmp = tmp_path_factory.mktemp("console-metrics")
    engine = Engine(Settings(store=tmp / "store"))
    api = ApiServer(engine, port=0, auth_file=_auth_file(tmp / "auth.json"))
    await api.start()
    yield api
    await api.stop()
    engine.close()


async def _series(http: aiohttp.ClientSession, url: str, minutes: int = 60) -> Any:
    response = await http.get(f"{url}/console/metrics/series?minutes={minutes}",
                              headers={"Accept": "application/json"})
    assert response.status == 200, await response.text()
    return await response.json()


@pytest.mark.asyncio(loop_scope="module")
async def test_console_detect_faces_calls_show_up_in_the_metrics(server: ApiServer) -> None:
    url = server.url
    photo = base64.b64encode(PHOTO.read_bytes()).decode()
    async with browser_session() as http:
        csrf = await signed_in(http, url, *ADMIN)
        before = await _series(http, url)
        assert "DetectFaces" not in before["operations"]
        found = []
        for _ in range(2):
            answer = await http.post(f"{url}/console/api/DetectFaces",
                                     json={"Image": {"Bytes": photo}, "Attributes": ["ALL"]},
                                     headers={"X-CSRF-Token": csrf})
            assert answer.status == 200, await answer.text()
            found.append(len((await answer.json(content_type=None))["FaceDetails"]))
        assert found[0] >= 1 and found[0] == found[1]
        refused = await http.post(f"{url}/console/api/DetectFaces",
                                  json={"Image": {"Bytes": base64.b64encode(b"not an image")
                                                  .decode()}},
                                  headers={"X-CSRF-Token": csrf})
        assert refused.status == 400
        refusal = await refused.json(content_type=None)
        assert refusal["__type"] == InvalidImageFormatException.__name__

        series = await _series(http, url, minutes=60)
        assert len(series["times"]) == 60 and series["step"] == 60
        faces = series["operations"]["DetectFaces"]
        live = [v or 0 for v in faces["successful"]]
        assert sum(live) == 2 and live[-2] + live[-1] == 2  # this minute (or the last)
        assert sum(v or 0 for v in faces["faces"]) == sum(found)
        assert sum(v or 0 for v in faces["user_errors"]) == 1
        assert any(v is not None and v > 0 for v in faces["response_time_mean"])
        totals = series["totals"]["operations"]["DetectFaces"]
        assert totals["successful"] == 2 and totals["user_errors"] == 1
        assert totals["faces"] == sum(found)

        page = await http.get(f"{url}/console/metrics/?minutes=360")
        html = await page.text()
        assert page.status == 200
        assert re.search(r'<tr data-operation="DetectFaces">\s*<th scope="row">DetectFaces</th>'
                         r"<td>2</td><td>1</td>", html)
        assert 'value="360" checked' in html
        assert "/static/vendor/uplot/uPlot.min.css" in html and "/static/metrics.js" in html
        assert (await http.get(f"{url}/console/metrics/series?minutes=0",
                               headers={"Accept": "application/json"})).status == 400
        script = await http.get(f"{url}/console/static/vendor/uplot/uPlot.esm.js")
        assert script.status == 200 and "export { uPlot as default }" in await script.text()


@pytest.mark.asyncio(loop_scope="module")
async def test_the_try_it_page_renders_each_exercise(server: ApiServer) -> None:
    url = server.url
    async with browser_session() as http:
        await signed_in(http, url, *ADMIN)
        page = await http.get(f"{url}/console/try/")
        html = await page.text()
        assert page.status == 200
        assert 'id="op-DetectFaces" value="DetectFaces" checked' in html
        for op in ("CompareFaces", "DetectLabels", "DetectModerationLabels",
                   "RecognizeCelebrities"):
            assert f'id="op-{op}" value="{op}"' in html
        assert '<label for="image" id="image-label">Image</label>' in html
        assert 'id="drop-target" data-slot="target" hidden' in html
        assert 'id="response"' in html and 'id="result"' in html
        assert "/static/tryit.js" in html and 'aria-current="page"' in html
        compare = await (await http.get(f"{url}/console/try/CompareFaces")).text()
        assert 'id="op-CompareFaces" value="CompareFaces" checked' in compare
        assert "Source image (the face to look for)" in compare
        assert 'data-slot="target" hidden' not in compare
        assert (await http.get(f"{url}/console/try/DeleteCollection")).status == 404
        script = await http.get(f"{url}/console/static/tryit.js")
        assert script.status == 200 and "callOperation" in await script.text()


@pytest.mark.asyncio(loop_scope="module")
async def test_metrics_need_view_metrics(server: ApiServer) -> None:
    url = server.url
    async with browser_session() as http:
        await signed_in(http, url, *NO_METRICS)
        page = await http.get(f"{url}/console/metrics/")
        assert page.status == 403
        assert "not authorized to perform: streamproc:ViewMetrics" in await page.text()
        series = await http.get(f"{url}/console/metrics/series",
                                headers={"Accept": "application/json"})
        assert series.status == 403
        assert (await series.json(content_type=None))["__type"] == "AccessDeniedException"
        # The try-it page is there for whoever may call the operations.
        assert (await http.get(f"{url}/console/try/")).status == 200
