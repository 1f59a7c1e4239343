"""The batching engine: one thread that gathers waiting requests into batches and runs them.

A request waits in a bounded queue; the engine takes the oldest, waits a few milliseconds for
others on the same model in memory (a token budget and a row limit cap the batch), and runs
them in one `generate` call, each row with its own adapter, sampling and stop rule (rows.py).
Requests for another model wait for the next batch. A full queue refuses new requests at once
(the server answers 429). Static batches, not continuous batching: a batch runs until its
longest answer ends, which is simple and, on CPU, where a step costs about the same for 1 or
16 rows of a small model, already multiplies throughput."""

import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from tunelab.serve.pools import Pool
from tunelab.serve.rows import Job, finish


@dataclass(frozen=True)
class EngineLimits:
    max_batch: int = 16  # rows in one generate call
    wait_s: float = 0.01  # how long the first request waits for company
    token_budget: int = 8192  # prompt + answer tokens of all rows in one batch
    queue_size: int = 64  # requests waiting; more get 429


class QueueFull(Exception):
    pass


class BatchEngine:
    def __init__(self, pools: dict[int, Pool], limits: EngineLimits, lock: threading.Lock):
        self.pools, self.limits, self.lock = pools, limits, lock
        self.waiting: queue.Queue[Job] = queue.Queue(maxsize=limits.queue_size)
        self.held: deque[Job] = deque()  # taken from the queue, for another model than the batch
        self.on_batch: Callable[[list[Job], float], None] = lambda jobs, seconds: None
        self.thread = threading.Thread(target=self.serve_forever, name="tunelab-engine")
        self.thread.daemon = True
        self.running = False

    def start(self) -> None:
        self.running = True
        self.thread.start()

    def stop(self) -> None:
        self.running = False

    @property
    def depth(self) -> int:
        return self.waiting.qsize() + len(self.held)

    def submit(self, job: Job) -> None:
        try:
            self.waiting.put_nowait(job)
        except queue.Full:
            raise QueueFull from None

    def serve_forever(self) -> None:
        while self.running:
            batch = self.next_batch()
            if batch:
                self.run_batch(batch)

    def next_job(self, timeout: float) -> Job | None:
        if self.held:
            return self.held.popleft()
        try:
            return self.waiting.get(timeout=max(timeout, 0.0))
        except queue.Empty:
            return None

    def next_batch(self) -> list[Job]:
        first = self.next_job(timeout=0.1)
        if first is None or first.cancelled.is_set():
            return []
        batch, tokens, passed = [first], first.budget, []
        deadline = time.monotonic() + self.limits.wait_s
        while len(batch) < self.limits.max_batch:
            job = self.next_job(timeout=deadline - time.monotonic())
            if job is None:
                break
            if job.cancelled.is_set():
                continue
            fits = tokens + job.budget <= self.limits.token_budget
            if job.pool_key != first.pool_key or not fits:
                passed.append(job)
                if not fits:
                    break
                continue
            batch.append(job)
            tokens += job.budget
        self.held.extendleft(reversed(passed))  # they keep their place in line
        return batch

    def run_batch(self, jobs: list[Job]) -> None:
        start = time.perf_counter()
        try:
            with self.lock:
                self.pools[jobs[0].pool_key].run(jobs)
        except Exception as exc:  # a failed batch fails its requests, not the server
            for job in jobs:
                job.emit(("error", f"generation failed: {str(exc).splitlines()[0]}"))
            return
        for job in jobs:
            if job.finish_reason is None:  # ended with the batch (every row hit its limit)
                finish(job, "length")
        self.on_batch(jobs, time.perf_counter() - start)
