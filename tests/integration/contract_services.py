"""A service with typed methods, served by tests/integration/test_typed_contracts.py."""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import enum
import uuid
from typing import TYPE_CHECKING

from service_template import MicroService, RPCError, private_api_method, public_method


class Size(enum.Enum):
    SMALL = "small"
    LARGE = "large"


@dataclasses.dataclass
class Line:
    sku: str
    qty: int
    size: Size = Size.SMALL


@dataclasses.dataclass
class Order:
    lines: list[Line]
    deliver_on: datetime.date


@dataclasses.dataclass
class Receipt:
    order_id: uuid.UUID
    total: decimal.Decimal
    placed_at: datetime.datetime
    lines: int


@dataclasses.dataclass
class Card:
    number: str


@dataclasses.dataclass
class Transfer:
    iban: str
    reference: str = ""


class OutOfStock(RPCError):
    default_code = 4001
    default_message = "Out of stock"


class TypedShop(MicroService):
    """Sells things, with typed methods."""

    name = "typed-shop"

    @public_method
    def charge(self, amount: int, currency: str = "EUR") -> str:
        """Charge ``amount`` cents."""
        return f"{amount} {currency}"

    @public_method(errors=[OutOfStock])
    def place(self, order: Order, *, gift: bool = False) -> Receipt:
        """Place an order; the receipt carries its id, total and time."""
        if not isinstance(order, Order) or not isinstance(order.deliver_on, datetime.date):
            raise TypeError("the method did not receive the declared types")
        if any(line.qty > 100 for line in order.lines):
            raise OutOfStock()
        return Receipt(
            uuid.UUID(int=len(order.lines)),
            decimal.Decimal("9.99") * sum(line.qty for line in order.lines),
            datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.UTC),
            len(order.lines),
        )

    @public_method
    async def tally(self, first: int, /, *more: int) -> int:
        return first + sum(more)

    @public_method
    def refund(self, to: Card | Transfer) -> str:
        """A union msgspec cannot tell apart: converted and described by pydantic."""
        if isinstance(to, Card):
            return f"card {to.number}"
        if isinstance(to, Transfer):
            return f"transfer {to.iban}"
        raise TypeError("the method did not receive the declared types")

    @private_api_method
    def restock(self, sku: str, qty: int) -> int:
        """Private: add stock."""
        return qty


if TYPE_CHECKING:  # seen by a type checker only: at run time the name is unknown
    from decimal import Context


class UnresolvableShop(MicroService):
    """A method whose annotation names a type imported only for type checkers: the service
    must refuse to start, naming the method and the parameter."""

    name = "unresolvable-shop"

    @public_method
    def charge(self, amount: int) -> str:
        return str(amount)

    @public_method
    def quote(self, context: Context) -> str:
        return str(context)
