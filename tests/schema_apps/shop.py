"""The shop app's ``Message``: an order line."""

from pydantic import BaseModel


class Message(BaseModel):
    sku: str
    quantity: int
