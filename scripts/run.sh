#!/usr/bin/env bash
# Migrates, loads the demo exchange on first run, then runs web + Celery worker + beat until Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBUG="${DEBUG:-true}"
if [ ! -f .env ]; then
  # Development settings for manage.py commands run by hand in this checkout (never used in production).
  printf 'DEBUG=true\n' > .env
fi
export DJANGO_SETTINGS_MODULE=backoffice.settings
PORT="${PORT:-8000}"
BIN=.venv/bin

$BIN/python manage.py migrate --no-input -v 0 && echo "database migrated"
$BIN/python manage.py collectstatic --no-input -v 0
if ! $BIN/python manage.py load_demo --if-empty; then
  echo "error: loading the demo data failed" >&2; exit 1
fi

pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM

$BIN/celery -A backoffice worker --loglevel=WARNING --concurrency=2 --queues=celery --hostname=default@%h &
pids+=($!)
$BIN/celery -A backoffice worker --loglevel=WARNING --concurrency=1 --queues=margin --hostname=margin@%h &
pids+=($!)
$BIN/celery -A backoffice beat --loglevel=WARNING --schedule=/tmp/backoffice-celerybeat-schedule &
pids+=($!)

cat <<MSG

  Back office running at http://127.0.0.1:${PORT}/admin/
  API docs at http://127.0.0.1:${PORT}/api/docs/   health at http://127.0.0.1:${PORT}/health
  Log in as one of the demo staff (password: demo-password-1):
    risk, compliance, ops, auditor, admin, desk (trading desk: first KYC review)
  Second factor: the current code is printed by
    make totp STAFF=risk
  (or scan the QR code shown by the same command with an authenticator app).
  Ctrl-C stops everything.

MSG
$BIN/python manage.py runserver "127.0.0.1:${PORT}" --noreload &
pids+=($!)
wait -n "${pids[@]}"
