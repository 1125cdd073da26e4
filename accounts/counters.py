"""Rate counters for security events, in Redis, correct under concurrent requests.

Each counter is one atomic Lua script, so two requests can never both read "99" and both pass a cap of
100. Scripts go out as EVAL in one pipeline: one round trip per event (Redis keeps the compiled script).
Windows are computed from the event's own time, so a replayed or delayed event counts where it belongs and
tests need no sleeping; Redis expiry only cleans up.
"""

from datetime import UTC, datetime, time, timedelta

from backoffice.redis_client import get_redis, key

# Sliding window: drop members older than the window, add this one, return how many remain.
_SLIDING = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1] - ARGV[2])
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[3])
redis.call('EXPIRE', KEYS[1], ARGV[2] + 60)
return redis.call('ZCOUNT', KEYS[1], ARGV[1] - ARGV[2], '+inf')
"""
# Fixed window: increment, set the expiry on first use, return the count.
_FIXED = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return n
"""
# Block: remember until when a cookie is blocked (event time, in ms); return ms left, or 0.
_BLOCK_LEFT = """
local blocked_until = tonumber(redis.call('GET', KEYS[1]) or '0')
local left = blocked_until - tonumber(ARGV[1])
if left > 0 then return left end
return 0
"""


def _ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def failed_login(*, customer_id: int, ip: str, event_id: str, at: datetime, window: timedelta) -> tuple[int, int]:
    """Record a failed login; returns (failures against this customer, distinct customers this IP failed
    against), both within the window ending at `at`."""
    window_ms = int(window.total_seconds() * 1000)
    pipe = get_redis().pipeline(transaction=False)
    pipe.eval(_SLIDING, 1, key("sec", "fail-customer", customer_id), _ms(at), window_ms, event_id)
    pipe.eval(_SLIDING, 1, key("sec", "fail-ip", ip), _ms(at), window_ms, customer_id)
    by_customer, by_ip = pipe.execute()
    return int(by_customer), int(by_ip)


def registration(*, ip: str, device_id: str, cookie_id: str, at: datetime) -> tuple[int, int, int, int]:
    """Count a registration attempt per IP, device and cookie for the event's UTC day; returns the three
    counts and the seconds until that day ends."""
    day = at.astimezone(UTC).date()
    day_end = datetime.combine(day + timedelta(days=1), time.min, tzinfo=UTC)
    pipe = get_redis().pipeline(transaction=False)
    for kind, value in (("ip", ip), ("device", device_id), ("cookie", cookie_id)):
        pipe.eval(_FIXED, 1, key("sec", "reg", kind, value or "-", day.isoformat()), 2 * 86400)
    ip_n, device_n, cookie_n = (int(n) for n in pipe.execute())
    if not cookie_id:
        cookie_n = 0
    return ip_n, device_n, cookie_n, int((day_end - at).total_seconds())


def account_check(*, cookie_id: str, at: datetime) -> tuple[int, int]:
    """Count an account check in the event's second; returns (checks this second, ms the cookie is
    still blocked for)."""
    pipe = get_redis().pipeline(transaction=False)
    pipe.eval(_BLOCK_LEFT, 1, key("sec", "block", cookie_id), _ms(at))
    pipe.eval(_FIXED, 1, key("sec", "check", cookie_id, int(at.timestamp())), 5)
    blocked_ms, count = pipe.execute()
    return int(count), int(blocked_ms)


def block_cookie(*, cookie_id: str, at: datetime, seconds: int) -> None:
    """Block a cookie for `seconds` from the event's time (a later block never shortens an earlier one)."""
    until = _ms(at) + seconds * 1000
    r = get_redis()
    name = key("sec", "block", cookie_id)
    current = int(r.get(name) or 0)
    if until > current:
        r.set(name, until, px=seconds * 1000 + 60_000)
