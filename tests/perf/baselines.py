"""The two yardsticks: the raw HTTP ceiling and the naive one-RQ-job-per-delivery design.

    python -m tests.perf.baselines ceiling URL COUNT   # prints {"count", "seconds", "per_second"}
    python -m tests.perf.baselines concurrent URL COUNT THREADS   # the same, THREADS at once
    python -m tests.perf.baselines latency URL COUNT   # prints {"count", "median_seconds", ...}

The ceiling is one plain Python process POSTing the signed 1 KiB body over one kept-alive
requests.Session: no queue, no database. The naive job (`deliver`) is what a team writes by
hand: one RQ job per delivery, each doing `requests.post`, run by RQ's default forking Worker.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

import requests

from tests.perf import payload

ROOT = Path(__file__).resolve().parents[2]
WARMUP = 200


def ceiling(url: str, count: int) -> dict[str, float]:
    """POST `count` signed bodies one after another over one kept-alive session."""
    session = requests.Session()
    session.trust_env = False  # no proxy lookups: loopback only, as the workers do
    key = payload.new_key()
    event_id, body = payload.sample_body()
    for _ in range(WARMUP):
        session.post(url, data=body, headers=payload.signed_headers(key, event_id, body))
    started = time.perf_counter()
    for _ in range(count):
        response = session.post(url, data=body, headers=payload.signed_headers(key, event_id, body))
        if response.status_code != 200:
            raise RuntimeError(f"the receiver answered {response.status_code}")
    seconds = time.perf_counter() - started
    return {"count": count, "seconds": seconds, "per_second": count / seconds}


def concurrent(url: str, count: int, threads: int) -> dict[str, float]:
    """POST `count` signed bodies from `threads` threads, each with its own kept-alive session:
    the most a client with that many sending threads gets from a receiver that takes a while."""
    key = payload.new_key()
    event_id, body = payload.sample_body()
    remaining = [count]
    lock = threading.Lock()
    start = threading.Barrier(threads + 1)
    errors: list[str] = []

    def sender() -> None:
        session = requests.Session()
        session.trust_env = False
        for _ in range(3):  # connect and warm up before the clock starts
            session.post(url, data=body, headers=payload.signed_headers(key, event_id, body))
        start.wait()
        while True:
            with lock:
                if remaining[0] <= 0:
                    return
                remaining[0] -= 1
            headers = payload.signed_headers(key, event_id, body)
            response = session.post(url, data=body, headers=headers, timeout=30)
            if response.status_code != 200:
                errors.append(f"the receiver answered {response.status_code}")

    pool = [threading.Thread(target=sender, daemon=True) for _ in range(threads)]
    for thread in pool:
        thread.start()
    start.wait()
    started = time.perf_counter()
    for thread in pool:
        thread.join()
    seconds = time.perf_counter() - started
    if errors:
        raise RuntimeError(errors[0])
    return {"count": count, "threads": threads, "seconds": seconds, "per_second": count / seconds}


def latency(url: str, count: int) -> dict[str, float]:
    """How long the receiver takes to answer one POST, sequentially over a kept-alive session."""
    session = requests.Session()
    session.trust_env = False
    key = payload.new_key()
    event_id, body = payload.sample_body()
    timings = []
    for i in range(3 + count):
        headers = payload.signed_headers(key, event_id, body)
        started = time.perf_counter()
        session.post(url, data=body, headers=headers, timeout=30)
        if i >= 3:
            timings.append(time.perf_counter() - started)
    return {
        "count": count,
        "median_seconds": statistics.median(timings),
        "min_seconds": min(timings),
        "max_seconds": max(timings),
    }


def _in_process_of_its_own(*args: str) -> dict[str, float]:
    """A baseline in a process of its own (so nothing else in the bench shares its GIL)."""
    done = subprocess.run(
        [sys.executable, "-m", "tests.perf.baselines", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_ceiling(url: str, count: int) -> dict[str, float]:
    """`ceiling` in a process of its own."""
    return _in_process_of_its_own("ceiling", url, str(count))


def run_concurrent(url: str, count: int, threads: int) -> dict[str, float]:
    """`concurrent` in a process of its own."""
    return _in_process_of_its_own("concurrent", url, str(count), str(threads))


def run_latency(url: str, count: int) -> dict[str, float]:
    """`latency` in a process of its own."""
    return _in_process_of_its_own("latency", url, str(count))


def deliver(url: str, event_id: str, body: str, key_hex: str) -> int:
    """The naive job: sign and POST one delivery, fail the job unless the answer is 2xx."""
    data = body.encode()
    headers = payload.signed_headers(bytes.fromhex(key_hex), event_id, data)
    response = requests.post(url, data=data, headers=headers, timeout=15)
    response.raise_for_status()
    return response.status_code


def run_naive(redis_url: str, url: str, count: int, workdir: Path) -> dict[str, float]:
    """Enqueue `count` naive jobs, drain them with one `rq worker --burst`, time the jobs."""
    from redis import Redis
    from rq import Queue
    from rq.job import Job

    connection = Redis.from_url(redis_url)
    queue = Queue(f"naive-{time.monotonic_ns()}", connection=connection)
    key_hex = payload.new_key().hex()
    event_id, body = payload.sample_body()
    jobs = queue.enqueue_many(
        [
            Queue.prepare_data(deliver, (url, event_id, body.decode(), key_hex), result_ttl=600)
            for _ in range(count)
        ]
    )
    with open(workdir / "naive-worker.log", "a") as log:
        subprocess.run(
            [
                *(Path(sys.executable).parent / "rq", "worker", "--burst", "--url", redis_url),
                *("--logging_level", "WARNING", queue.name),
            ],
            cwd=ROOT,
            stdout=log,
            stderr=log,
            timeout=900,
            check=True,
        )
    finished = Job.fetch_many([job.id for job in jobs], connection=connection)
    failed = [job for job in finished if job is None or job.get_status() != "finished"]
    if failed:
        raise AssertionError(f"{len(failed)} naive jobs did not finish")
    first: datetime = min(job.started_at for job in finished)
    last: datetime = max(job.ended_at for job in finished)
    seconds = (last - first).total_seconds()
    queue.delete(delete_jobs=True)
    return {"count": count, "seconds": seconds, "per_second": count / seconds}


if __name__ == "__main__":
    command, arguments = sys.argv[1:2], sys.argv[2:]
    if command == ["ceiling"]:
        print(json.dumps(ceiling(arguments[0], int(arguments[1]))))
    elif command == ["concurrent"]:
        print(json.dumps(concurrent(arguments[0], int(arguments[1]), int(arguments[2]))))
    elif command == ["latency"]:
        print(json.dumps(latency(arguments[0], int(arguments[1]))))
    else:
        raise SystemExit(__doc__)
