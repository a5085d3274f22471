"""Start the whole system: the pipeline steps that are missing, servers, services, Celery.

``movierec up`` (``make up``) drives it; ``docker-compose.yml`` follows the same definitions
(``movierec.launcher.services``), which a test checks.
"""

from movierec.launcher.services import CELERY_PROCESSES, SERVICES, ProcessSpec, ServiceSpec, stack_environment

__all__ = ["CELERY_PROCESSES", "SERVICES", "ProcessSpec", "ServiceSpec", "stack_environment"]
