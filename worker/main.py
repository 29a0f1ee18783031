"""``celery -A worker.main`` support (e.g. ``celery -A worker.main inspect active``, Flower).

Importing this module builds the app from the environment's settings: that is its only
purpose. Everything else uses ``worker.celery_app.create_celery_app``.
"""

from worker.celery_app import create_celery_app

app = create_celery_app()
