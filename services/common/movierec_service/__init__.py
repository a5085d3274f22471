"""What every service shares: request ids, JSON logs, Prometheus metrics, health endpoints and
one mapping of errors to HTTP responses. Each service builds its app with ``create_service_app``."""

from movierec_service.app import ReadinessCheck, ServiceError, create_service_app

__all__ = ["ReadinessCheck", "ServiceError", "create_service_app"]
