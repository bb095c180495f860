"""Query and path parameters shared by the resource controllers."""

from typing import Annotated

from litestar.params import Parameter

Limit = Annotated[int, Parameter(ge=1, le=500, description="page size (1-500)")]
Offset = Annotated[int, Parameter(ge=0, le=2_147_483_647, description="items to skip")]
ObjectId = Annotated[int, Parameter(ge=1, le=2_147_483_647)]
DEFAULT_LIMIT = 50
