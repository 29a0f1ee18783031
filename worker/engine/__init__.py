"""The pure method: superpixels, model, training, uncertainty, query strategies, oracle, metrics.

Only numpy, torch and scikit-image live here: no database, HTTP or Celery code, so every
step of DESIGN.md §1 can be tested on arrays (``tests/engine/test_boundaries.py`` enforces it).
"""
