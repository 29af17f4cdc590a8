"""The stepper of the 0.2 examples: pricing an order line step by step.

``PriceStepper().step_by_step("3 x 2.50")`` parses the line, converts the price to cents and
multiplies: ``750``. Each step's parameters are checked against the previous step's return
annotation when the stepper is defined.
"""

from __future__ import annotations

from decimal import Decimal

from orch_serv.stepper import Step, Stepper, StepsBuilder


def parse_line(line: str) -> tuple[int, str]:
    """``"3 x 2.50"`` -> ``(3, "2.50")``."""
    quantity, _, price = line.partition("x")
    return int(quantity.strip()), price.strip()


def to_cents(quantity: int, price: str) -> tuple[int, int]:
    """The unit price in cents."""
    return quantity, int(Decimal(price) * 100)


def total(quantity: int, cents: int, discount_percent: int = 0) -> int:
    """The line total in cents, after the discount."""
    return quantity * cents * (100 - discount_percent) // 100


class PriceStepper(Stepper):
    """parse_line -> to_cents -> total (5% off)."""

    steps = StepsBuilder(Step(parse_line), Step(to_cents), Step(total, discount_percent=5))
