"""Thin Celery tasks: each loads rows by id, calls the engine, and writes results back."""
