"""A JSON response for the prediction routes, rendered by orjson.

A route that returns a dict lets FastAPI walk every value through its generic
encoder before the standard library's ``json`` writes it; on a 1,000-class
answer those two took longer than the model itself (seen with py-spy). The
prediction routes build plain JSON values already, so they return this response,
which orjson writes in a twentieth of the time.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi.responses import JSONResponse


class FastJSONResponse(JSONResponse):
    """`JSONResponse` written by orjson; NumPy numbers and arrays are accepted."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY)
