"""UVox: a self-hostable telecom customer platform."""

__version__ = "0.1.0"
