"""The application layer: config tree, run plumbing, builders, the one training loop and the tasks.

It composes the library (``wnet.*``); nothing in the library imports it. Entry point:
``python experiments/run.py`` (:mod:`wnet.tasks.cli`).
"""
