"""Two apps whose pydantic models share a class name (``Message``), for the AsyncAPI document."""
