import os

import pytest
from celery.contrib.testing.worker import start_worker
from django.core.cache import cache

from backoffice import celery_app, health, tasks


@pytest.fixture
def no_heartbeat():
    cache.delete(health.HEARTBEAT_KEY)


class TestHealth:
    def test_reports_database_and_redis_and_a_missing_worker_as_degraded(self, client, db, no_heartbeat):
        response = client.get("/health")

        body = response.json()
        assert response.status_code == 200
        assert body["status"] == "degraded"
        assert (body["database"]["ok"], body["redis"]["ok"], body["worker"]["ok"]) == (True, True, False)

    def test_reports_an_unreachable_redis_as_down(self, client, db, settings):
        settings.CACHES = {
            "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://127.0.0.1:1/0"}
        }

        response = client.get("/health/")

        assert response.status_code == 503
        assert response.json()["status"] == "down"
        assert response.json()["redis"]["ok"] is False


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
class TestWorkerHeartbeat:
    def test_a_real_worker_running_the_heartbeat_makes_health_ok(self, client, no_heartbeat):
        queue = f"health-test-{os.getpid()}"
        celery_app.conf.task_always_eager = False
        try:
            with start_worker(celery_app, pool="solo", perform_ping_check=False, queues=[queue], shutdown_timeout=10):
                tasks.heartbeat.apply_async(queue=queue)
                _wait_for_heartbeat()
        finally:
            celery_app.conf.task_always_eager = True

        body = client.get("/health").json()
        assert body["worker"]["ok"] is True
        assert body["status"] == "ok"


def _wait_for_heartbeat(timeout: float = 20.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while cache.get(health.HEARTBEAT_KEY) is None:
        if time.monotonic() > deadline:
            raise AssertionError("the worker did not record a heartbeat")
        time.sleep(0.05)
