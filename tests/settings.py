import os

os.environ.setdefault("SECRET_KEY", "tests-only-secret-key")
os.environ.setdefault("DEBUG", "false")
os.environ.setdefault("SECURE_SSL_REDIRECT", "false")

from backoffice.settings import *  # noqa: F403  (the one star import we allow)

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
CELERY_TASK_ALWAYS_EAGER = True
CELERY_TASK_EAGER_PROPAGATES = True
CACHES["default"]["KEY_PREFIX"] = f"test-{os.getpid()}"  # noqa: F405
STORAGES["staticfiles"]["BACKEND"] = "django.contrib.staticfiles.storage.StaticFilesStorage"  # noqa: F405
MAILERS = {"default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}}
RISK_PARAMETER_CACHE_SECONDS = 0
SESSION_COOKIE_SECURE = False
CSRF_COOKIE_SECURE = False
# Static files are not collected for tests; the admin's assets come from the app directories.
MIDDLEWARE = [m for m in MIDDLEWARE if m != "whitenoise.middleware.WhiteNoiseMiddleware"]  # noqa: F405
# The test runner empties tables with TRUNCATE between transactional tests; the operations log refuses
# TRUNCATE on every connection that has not opted out like this.
DATABASES["default"]["OPTIONS"] = {**DATABASES["default"]["OPTIONS"], "options": "-c backoffice.allow_truncate=on"}  # noqa: F405
# The demo's KYC section loads the real OFAC lists; tests that run load_demo use none (KYC's own demo test
# points it at a tiny list).
KYC_DEMO_SANCTIONS_DIR = ""
