"""One Redis connection pool per process, for counters and locks that need more than the cache API."""

import threading

import redis
from django.conf import settings

_lock = threading.Lock()
_client: redis.Redis | None = None


def get_redis() -> redis.Redis:
    global _client
    if _client is None:
        with _lock:
            if _client is None:
                _client = redis.Redis.from_url(
                    settings.REDIS_URL, socket_timeout=0.5, socket_connect_timeout=0.5, health_check_interval=30
                )
    return _client


def key(*parts) -> str:
    """A key in this deployment's namespace (the cache prefix keeps test runs and sites apart)."""
    return ":".join([settings.CACHES["default"].get("KEY_PREFIX", "bo"), *map(str, parts)])
