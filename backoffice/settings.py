"""Back-office settings. One module; anything that differs per environment is an environment variable."""

import os
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env(name: str, default: str | None = None) -> str:
    """A required string, or its default; `NAME_FILE` may point at a file holding the value (secrets)."""
    if file_path := os.environ.get(f"{name}_FILE"):
        return Path(file_path).read_text().strip()
    value = os.environ.get(name, default)
    if value is None:
        raise ImproperlyConfigured(f"Set the {name} environment variable.")
    return value


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    if value.lower() not in ("true", "false", "1", "0"):
        raise ImproperlyConfigured(f"{name} must be 'true' or 'false', not {value!r}.")
    return value.lower() in ("true", "1")


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, not {value!r}.") from None


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in env(name, default).split(",") if item.strip()]


def database_from_url(url: str) -> dict:
    """postgres://user:password@host:port/name?sslmode=require → a DATABASES entry."""
    parts = urlsplit(url)
    if parts.scheme not in ("postgres", "postgresql") or not parts.path.strip("/"):
        raise ImproperlyConfigured(f"DATABASE_URL must look like postgres://user@host:5432/name, not {url!r}.")
    return {
        "ENGINE": "backoffice.postgresql",  # Django's, with a health check that needs no round trip
        "NAME": unquote(parts.path.lstrip("/")),
        "USER": unquote(parts.username or ""),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": parts.hostname or "",
        "PORT": str(parts.port or ""),
        "OPTIONS": dict(parse_qsl(parts.query)),
        "CONN_MAX_AGE": env_int("DATABASE_CONN_MAX_AGE", 60),
        "CONN_HEALTH_CHECKS": True,
        # No ATOMIC_REQUESTS: each service declares its own transaction.
    }


DEBUG = env_bool("DEBUG", default=False)
SECRET_KEY = env("SECRET_KEY", default="insecure-development-key-do-not-use" if DEBUG else None)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "guardian",
    "backoffice",
    "accounts",
    "kyc",
    "trading_risk",
    "withdrawals",
    "reconciliation",
    "financing",
    "reporting",
]

MIDDLEWARE = [
    "backoffice.middleware.ApiMiddleware",  # /api/v1/ endpoints: API_MIDDLEWARE only
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "accounts.staff_auth.RequireSecondFactorMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
# The API authenticates by bearer token and never reads a session, a CSRF token or a message. Only
# middleware that act on the request and the response belong here (process_view hooks are not run).
API_MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "backoffice.urls"
WSGI_APPLICATION = "backoffice.wsgi.application"
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "guardian.backends.ObjectPermissionBackend",
]
ANONYMOUS_USER_NAME = None  # guardian: no anonymous object permissions in a back office
LOGIN_URL = "staff-login"
LOGIN_REDIRECT_URL = "/admin/"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {"default": database_from_url(env("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/backoffice"))}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env("REDIS_URL", "redis://127.0.0.1:6379/0")
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": env("CACHE_KEY_PREFIX", "bo"),
    }
}

LANGUAGE_CODE = "en"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
MEDIA_ROOT = Path(env("MEDIA_ROOT", str(BASE_DIR / "media")))
MEDIA_URL = "media/"

# Staff sessions: idle sessions expire because every request pushes the expiry forward.
SESSION_COOKIE_AGE = env_int("STAFF_SESSION_IDLE_SECONDS", 30 * 60)
SESSION_SAVE_EVERY_REQUEST = True
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"

# Transport security: on by default outside DEBUG; SECURE_SSL_REDIRECT=false behind a TLS-terminating proxy.
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", default=not DEBUG)
SECURE_REDIRECT_EXEMPT = [r"^health/?$"]
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SECURE_HSTS_SECONDS = 0 if DEBUG else env_int("SECURE_HSTS_SECONDS", 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
if env_bool("BEHIND_TLS_PROXY", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# The API accepts batches of up to 10,000 items; anything bigger than this is refused before parsing.
API_MAX_BODY_BYTES = env_int("API_MAX_BODY_BYTES", 16 * 1024 * 1024)
API_MAX_BATCH_ITEMS = 10_000
# How long a process may trust an API token it has read without reading it again (revocation delay).
API_TOKEN_CACHE_SECONDS = float(env("API_TOKEN_CACHE_SECONDS", "5"))
DATA_UPLOAD_MAX_MEMORY_SIZE = API_MAX_BODY_BYTES
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["backoffice.api.ApiTokenAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": ["backoffice.api.StrictJSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["backoffice.api.FastJSONRenderer"],
    "EXCEPTION_HANDLER": "backoffice.api.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": None,
    "COERCE_DECIMAL_TO_STRING": True,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Exchange back office — matching-engine API",
    "DESCRIPTION": (
        "Version 1 of the API the matching engine uses to push reference data and events and to read "
        'decisions. Amounts are decimal strings; errors are {"error": {"code", "message", "details"}}.'
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_AUTHENTICATION": [],
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    "DISABLE_ERRORS_AND_WARNINGS": False,
    "OAS_VERSION": "3.1.0",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "backoffice.api.add_struct_components",
    ],
}

CELERY_BROKER_URL = env("CELERY_BROKER_URL", REDIS_URL)
CELERY_TASK_ACKS_LATE = True  # safe only because every task is idempotent
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = 600
CELERY_TASK_SOFT_TIME_LIMIT = 540
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Re-margining keeps every position in the worker's memory: one process serves its queue (`-Q margin
# --concurrency 1`), so the arrays are built once and stay warm; everything else runs on the default queue.
CELERY_TASK_ROUTES = {"trading_risk.tasks.remargin": {"queue": "margin"}}
CELERY_BEAT_SCHEDULE = {
    "heartbeat": {"task": "backoffice.tasks.heartbeat", "schedule": timedelta(seconds=30)},
    "expire-change-requests": {
        "task": "backoffice.tasks.expire_change_requests",
        "schedule": timedelta(minutes=5),
    },
    "expire-restrictions": {"task": "accounts.tasks.expire_restrictions", "schedule": timedelta(seconds=5)},
    "surveillance-hourly": {"task": "trading_risk.tasks.run_hourly_surveillance", "schedule": crontab(minute=5)},
    "surveillance-daily": {"task": "trading_risk.tasks.run_daily_surveillance", "schedule": crontab(hour=0, minute=20)},
    "event-partitions": {"task": "trading_risk.tasks.maintain_partitions", "schedule": crontab(hour=0, minute=5)},
    "withdrawals-release-due-holds": {"task": "withdrawals.tasks.release_due_holds", "schedule": timedelta(minutes=1)},
    "withdrawals-pay-out-approved": {"task": "withdrawals.tasks.pay_out_approved", "schedule": timedelta(minutes=1)},
    "withdrawals-flow-review": {"task": "withdrawals.tasks.build_flow_review", "schedule": crontab(hour=0, minute=30)},
    "kyc-rescreen-all": {"task": "kyc.tasks.rescreen_all", "schedule": crontab(hour=2, minute=0)},
    "verify-audit-log": {"task": "backoffice.tasks.verify_audit_log", "schedule": crontab(hour=1, minute=30)},
    "broker-limit-reviews": {
        "task": "trading_risk.position_limits.check_broker_limit_reviews",
        "schedule": crontab(hour=0, minute=40),
    },
    "large-trader-report": {
        "task": "reporting.tasks.build_daily_large_trader_report",
        "schedule": crontab(hour=0, minute=45),
    },
    "margin-consequences": {"task": "trading_risk.tasks.apply_margin_consequences", "schedule": timedelta(minutes=1)},
    "margin-remargin": {"task": "trading_risk.tasks.remargin", "schedule": timedelta(seconds=15)},
}

# Outbound e-mail: SMTP in production; the console mailer under DEBUG so nothing leaves a development machine.
DEFAULT_SMTP = "django.core.mail.backends.smtp.EmailBackend"
MAILERS = {
    "default": {
        "BACKEND": env("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend" if DEBUG else DEFAULT_SMTP),
        "OPTIONS": {
            key: value
            for key, value in {
                "host": os.environ.get("EMAIL_HOST"),
                "port": int(os.environ["EMAIL_PORT"]) if os.environ.get("EMAIL_PORT") else None,
                "username": os.environ.get("EMAIL_HOST_USER"),
                "password": os.environ.get("EMAIL_HOST_PASSWORD"),
                "use_tls": env_bool("EMAIL_USE_TLS", default=False) or None,
            }.items()
            if value is not None
        },
    }
}
# Customer notification channels: the outbox keeps SMS and calls in the database (shown in the admin);
# point SMS or CALL at a gateway adapter class to deliver for real.
NOTIFICATION_CHANNELS = {
    "SMS": env("SMS_CHANNEL", "accounts.channels.OutboxChannel"),
    "EMAIL": env("EMAIL_CHANNEL", "accounts.channels.EmailChannel"),
    "CALL": env("CALL_CHANNEL", "accounts.channels.OutboxChannel"),
}
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", "risk@backoffice.localhost")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# How long a cached risk-parameter set may be served before its generation is re-checked in Redis.
RISK_PARAMETER_CACHE_SECONDS = float(env("RISK_PARAMETER_CACHE_SECONDS", "1"))

# Where load_demo reads the sanctions lists from (blank: load none); default: ../shared/reference/sanctions.
if "KYC_DEMO_SANCTIONS_DIR" in os.environ:
    KYC_DEMO_SANCTIONS_DIR = os.environ["KYC_DEMO_SANCTIONS_DIR"]

# Demo helpers (printing a demo staff member's current TOTP code) only work with this on.
DEMO_MODE = env_bool("DEMO_MODE", default=DEBUG)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
