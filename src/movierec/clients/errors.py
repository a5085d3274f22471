"""What a typed client raises. Callers degrade on ``ServiceUnavailable`` and pass
``ServiceRejected`` on (it is the caller's input that is wrong)::

    ClientError
    ├── ServiceUnavailable      connection refused, timeout, or a 5xx: try another replica or degrade
    │   └── ServiceTimeout      no answer within the client's timeout
    └── ServiceRejected         a 4xx: ``status``, ``code`` and ``message`` from the service's error body
        └── NotFound            404
"""

from __future__ import annotations


class ClientError(Exception):
    def __init__(self, service: str, message: str):
        super().__init__(f"{service}: {message}")
        self.service = service
        self.message = message


class ServiceUnavailable(ClientError):
    pass


class ServiceTimeout(ServiceUnavailable):
    pass


class ServiceRejected(ClientError):
    def __init__(self, service: str, status: int, code: str, message: str, details: list | None = None):
        super().__init__(service, message)
        self.status = status
        self.code = code
        self.details = details or []


class NotFound(ServiceRejected):
    pass
