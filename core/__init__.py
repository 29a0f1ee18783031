"""Tessera's shared kernel: what the API (``backend``) and the worker (``worker``) both import.

Database models and sessions, settings, the mask and superpixel-map codecs, job dispatch to the
broker, domain errors, logging and migrations. It imports neither ``backend`` nor ``worker``.
"""
