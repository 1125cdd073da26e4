"""Health: can we reach the database and Redis, and is a Celery worker (and beat) alive?

The worker's liveness is its heartbeat: beat schedules `backoffice.tasks.heartbeat` every 30 s and a
worker writes the time to Redis. No heartbeat for two minutes means no worker or no beat.
"""

from datetime import datetime, timedelta

from django.core.cache import cache
from django.db import connection
from django.http import JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

HEARTBEAT_KEY = "health:worker-heartbeat"
HEARTBEAT_STALE_AFTER = timedelta(minutes=2)


@never_cache
@require_GET
def health(request):
    now = timezone.now()
    checks = {"database": _database(), "redis": _redis(), "worker": _worker(now)}
    ok = checks["database"]["ok"] and checks["redis"]["ok"]
    status = "ok" if ok and checks["worker"]["ok"] else ("degraded" if ok else "down")
    return JsonResponse({"status": status, "checked_at": now.isoformat(), **checks}, status=200 if ok else 503)


def _database() -> dict:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return {"ok": True}
    except Exception as exc:
        return {"ok": False, "error": type(exc).__name__}


def _redis() -> dict:
    try:
        cache.set("health:ping", "1", timeout=10)
        return {"ok": cache.get("health:ping") == "1"}
    except Exception as exc:
        return {"ok": False, "error": type(exc).__name__}


def _worker(now: datetime) -> dict:
    try:
        beat = cache.get(HEARTBEAT_KEY)
    except Exception:
        return {"ok": False, "last_heartbeat_at": None}
    if beat is None:
        return {"ok": False, "last_heartbeat_at": None}
    last = datetime.fromisoformat(beat)
    return {"ok": now - last < HEARTBEAT_STALE_AFTER, "last_heartbeat_at": beat}


def record_heartbeat(*, now: datetime) -> None:
    """Called by the worker: it is alive now."""
    cache.set(HEARTBEAT_KEY, now.isoformat(), timeout=None)
