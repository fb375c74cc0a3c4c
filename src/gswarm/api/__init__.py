"""REST API and dashboard server (issue #6).

``create_app(source)`` (:mod:`gswarm.api.app`) builds the FastAPI app over a
:class:`~gswarm.api.source.DataSource` (live: a Runtime plus the store; read-only:
the store of a state directory). ``gswarm.api.server:create_service`` embeds it in
``gswarm run`` (same event loop, no own signal handlers; bound address in
``<state_dir>/run/api.json``); ``gswarm serve`` serves it read-only (bound address in
``<state_dir>/run/serve.json``; it never touches a running supervisor's ``api.json``).
Bound to a loopback address, requests whose ``Host`` is not ``localhost``/``127.x``/``[::1]``
answer 421 (DNS rebinding, :mod:`gswarm.api.hosts`).

Endpoints (times in Unix seconds; errors ``{"error", "detail"}``; 422 names the field):

* ``GET /api/v1/status``, ``/api/v1/nodes``, ``/api/v1/nodes/{node}`` (404 unknown); each carries
  ``maintenance``: ``{"until", "reason"}`` of the active maintenance window or null
* ``GET /api/v1/events`` (node, kind, since, until, limit 1..1000, offset), ``/api/v1/incidents``
  (node, category, severity, …), ``/api/v1/runs``, ``/api/v1/progress``
* ``GET /api/v1/nodes/{node}/metrics?since&until&points`` (bucketed avg/max), ``…/analytics``
* ``GET /api/v1/logs?tail&grep&node&level&since&until`` (JSON log, rotated and gzipped files too;
  ``grep`` is a case-insensitive plain substring, not a regex; text fields cut at 8 KiB, 4 MiB per answer)
* ``GET /api/v1/config`` (``override_error`` when the stored file is broken); ``PUT``/``PATCH /api/v1/config``
  (token; JSON body of at most 1 MiB, else 413/415; next start; 409 when read-only or the stored file is broken)
* ``POST /api/v1/nodes/{node}/start|stop|restart`` (token; 202; 409 when read-only, start unless
  STOPPED/FATAL/BACKOFF, stop when STOPPED/FATAL)
* ``GET /api/v1/events/stream`` (server-sent events), ``/healthz``, ``/readyz``, ``/metrics``
* ``/`` dashboard (no CDN, works offline); ``/openapi.json`` (the offline API reference);
  ``/docs`` is FastAPI's Swagger UI, whose script and CSS load from a CDN (jsdelivr): it needs
  internet in the browser, offline use ``/openapi.json``; ReDoc (``/redoc``) is off
"""
