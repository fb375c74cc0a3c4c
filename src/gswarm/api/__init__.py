"""REST API and dashboard server (issue #6).

``create_app(source)`` (:mod:`gswarm.api.app`) builds the FastAPI app over a
:class:`~gswarm.api.source.DataSource` (live: a Runtime plus the store; read-only:
the store of a state directory). ``gswarm.api.server:create_service`` embeds it in
``gswarm run``; ``gswarm serve`` serves it read-only.
"""
