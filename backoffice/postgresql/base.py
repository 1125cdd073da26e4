"""Django's PostgreSQL backend, with a cheaper per-request health check.

With CONN_HEALTH_CHECKS, Django sends `SELECT 1` before the first query of every request on a
persistent connection: a round trip on every API call. A connection the server has ended (a restart, a
terminated backend, an idle timeout) has something left to read on its socket — the server's goodbye or
the end of the stream — while a healthy idle connection has nothing. So the socket is polled first, and
only a connection with unread data, not idle, or already marked broken gets the `SELECT 1` (which
closes it if it fails, as before).
"""

import select

from django.db.backends.postgresql import base
from psycopg2.extensions import TRANSACTION_STATUS_IDLE


class DatabaseWrapper(base.DatabaseWrapper):
    def close_if_health_check_failed(self):
        if self.connection is not None and self.health_check_enabled and not self.health_check_done and self._quiet():
            self.health_check_done = True
            return
        super().close_if_health_check_failed()

    def _quiet(self) -> bool:
        """Open, idle outside a transaction, and with nothing from the server waiting to be read."""
        connection = self.connection
        if connection.closed or connection.info.transaction_status != TRANSACTION_STATUS_IDLE:
            return False
        poller = select.poll()
        poller.register(connection.fileno(), select.POLLIN | select.POLLPRI)
        return not poller.poll(0)
