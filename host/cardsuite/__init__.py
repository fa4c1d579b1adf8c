"""cardsuite: host tooling for the cardsuite Java Card applets.

Layers, bottom up: ``apdu`` (messages, status words, errors) → ``transport`` (PC/SC reader, in-process
simulator) → command clients → ``cli``. Build tooling lives in ``manifest``, ``toolchain`` and ``build``.
"""

__version__ = "0.1.0"
