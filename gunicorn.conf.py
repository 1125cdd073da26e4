"""gunicorn settings of the web process, shared by the image, docker-compose and the benchmarks.

Command-line flags override them. Workers: `WEB_CONCURRENCY` (gunicorn's own variable); threads per
worker: `WEB_THREADS` (default 8).

Threaded workers keep the matching engine's connections alive (a sync worker closes each after one
response), and a request spends part of its time waiting on PostgreSQL and Redis, so a few threads per
process keep a core busy. Threads of one process share one interpreter lock: for more throughput add
processes, not threads. On the benchmark machine (2 cores shared with PostgreSQL and the load
generator) 2 processes × 8 threads, 2 × 4 and 4 × 2 measured the same within the noise.
"""

import gc
import logging
import os

worker_class = "gthread"
threads = int(os.environ.get("WEB_THREADS", "8"))


def post_worker_init(worker):
    """Finish loading before the first request instead of during it, then move everything loaded at
    start-up out of the garbage collector's way: its full passes then walk only what requests
    allocate, not the ~140,000 objects of Django and the apps (a 40–85 ms pause of every thread)."""
    from django.urls import get_resolver

    get_resolver().url_patterns  # noqa: B018  (imports every urls module and its views)
    _load_celery_producer()
    gc.collect()
    gc.freeze()


def _load_celery_producer() -> None:
    """Register the tasks and load the broker transport (no connection is made): otherwise ~45 ms of
    imports land on the first request that queues a task, such as a security event that locks."""
    from backoffice.celery import app

    try:
        app.finalize(auto=True)
        app.producer_pool  # noqa: B018
        connection = app.connection_for_write()
        connection.transport  # noqa: B018
        connection.release()
    except Exception:  # never keep a worker from starting: the first task loads it instead
        logging.getLogger(__name__).warning("could not preload the Celery producer", exc_info=True)
