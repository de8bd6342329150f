"""Counters for monitoring, in the Prometheus text format (version 0.0.4).

Per process: with several uvicorn workers each keeps its own counts (a scrape reaches
one of them); the ``pid`` label tells them apart. Routes are labelled by their name,
never by the raw path, so a client cannot grow the label set.
"""

from __future__ import annotations

import os
import threading
import time
from collections import Counter

from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: latency buckets, seconds
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class Metrics:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: Counter[tuple[str, str, int]] = Counter()
        self.latency_buckets: Counter[float] = Counter()
        self.latency_sum = 0.0
        self.latency_count = 0
        self.events: Counter[str] = Counter()
        self.started = time.time()

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        with self._lock:
            self.requests[(route, method, status)] += 1
            self.latency_sum += seconds
            self.latency_count += 1
            for bound in BUCKETS:
                if seconds <= bound:
                    self.latency_buckets[bound] += 1

    def count(self, event: str) -> None:
        with self._lock:
            self.events[event] += 1

    def render(self, gauges: dict[str, float]) -> str:
        pid = os.getpid()
        lines = ["# HELP sandi_http_requests_total HTTP requests answered, by route and status.",
                 "# TYPE sandi_http_requests_total counter"]
        with self._lock:
            for (route, method, status), n in sorted(self.requests.items()):
                lines.append(f'sandi_http_requests_total{{pid="{pid}",route="{route}",method="{method}",'
                             f'status="{status}"}} {n}')
            lines += ["# HELP sandi_http_request_seconds Time to answer a request.",
                      "# TYPE sandi_http_request_seconds histogram"]
            for bound in BUCKETS:
                lines.append(f'sandi_http_request_seconds_bucket{{pid="{pid}",le="{bound}"}} '
                             f"{self.latency_buckets[bound]}")
            lines.append(f'sandi_http_request_seconds_bucket{{pid="{pid}",le="+Inf"}} {self.latency_count}')
            lines.append(f'sandi_http_request_seconds_sum{{pid="{pid}"}} {self.latency_sum:.6f}')
            lines.append(f'sandi_http_request_seconds_count{{pid="{pid}"}} {self.latency_count}')
            lines += ["# HELP sandi_events_total Security events (enrolments, refused tokens, ...).",
                      "# TYPE sandi_events_total counter"]
            for event, n in sorted(self.events.items()):
                lines.append(f'sandi_events_total{{pid="{pid}",event="{event}"}} {n}')
        for name, value in sorted(gauges.items()):
            lines += [f"# TYPE {name} gauge", f'{name}{{pid="{pid}"}} {value:g}']
        lines += ["# TYPE sandi_process_start_time_seconds gauge",
                  f'sandi_process_start_time_seconds{{pid="{pid}"}} {self.started:.3f}']
        return "\n".join(lines) + "\n"


class MetricsMiddleware:
    """Time and count every HTTP request by the name of the route that answered."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = scope.get("sandi.route", "other")
            method = scope.get("method", "?") if scope.get("method") in ("GET", "HEAD", "POST") else "other"
            self.metrics.observe(str(route), str(method), status, time.perf_counter() - start)
