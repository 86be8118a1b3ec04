"""The chat app's ``Message``: a line of text."""

from pydantic import BaseModel


class Message(BaseModel):
    text: str
