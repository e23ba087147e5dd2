"""textrnn: a hand-written RNN sentiment classifier, run as a DVC pipeline."""

__version__ = "0.1.0"
