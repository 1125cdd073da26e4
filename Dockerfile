# One image for the three processes of the back office: web (gunicorn), Celery worker and Celery beat.
FROM python:3.13-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DJANGO_SETTINGS_MODULE=backoffice.settings \
    # Import the project from /app, not from site-packages, so BASE_DIR (templates, static files) is /app.
    PYTHONPATH=/app

WORKDIR /app
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --home-dir /app --no-create-home --shell /usr/sbin/nologin app

COPY . .
# collectstatic only reads settings: a throwaway key is enough, and it does not stay in the image.
RUN pip install . \
    && SECRET_KEY=collectstatic-only python manage.py collectstatic --no-input --verbosity 0 \
    && mkdir -p /app/media \
    && chown app:app /app/media

USER app
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=4)"]
# Threaded gunicorn workers, WEB_CONCURRENCY processes of WEB_THREADS threads: see gunicorn.conf.py.
CMD ["gunicorn", "backoffice.wsgi", "--config", "gunicorn.conf.py", "--bind", "0.0.0.0:8000", "--access-logfile", "-", "--graceful-timeout", "20"]
