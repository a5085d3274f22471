"""Celery tasks on the Redis broker: recommendation-cache invalidation and refresh
(``movierec.tasks.cache``) and online policy retraining (``movierec.tasks.policy``).

Start a worker with ``celery -A movierec.tasks.app worker`` and the scheduler with
``celery -A movierec.tasks.app beat`` (the launcher and docker-compose do both).
"""
