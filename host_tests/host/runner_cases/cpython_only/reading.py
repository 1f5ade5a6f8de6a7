# A "firmware" module written with a CPython-only construct: MicroPython has no dataclasses.
from dataclasses import dataclass


@dataclass
class Reading:
    value: float
