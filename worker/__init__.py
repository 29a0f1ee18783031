"""Tessera's worker side: the pure method engine, the simulator and (later) Celery tasks."""
