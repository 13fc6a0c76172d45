"""``/v1/invoices``: one invoice per paid session, within the caller's merchant and mode."""

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from payhook.api import auth
from payhook.api.params import path_id
from payhook.api.responses import merchant_list, query
from payhook.api.state import state
from payhook.db.engine import reading
from payhook.services import invoices


async def list_invoices(request: Request) -> Response:
    return await merchant_list(request, invoices.list_invoices, invoices.to_object)


async def get_invoice(request: Request) -> Response:
    app = state(request)
    async with reading(app.engine) as conn:
        caller = await auth.merchant(request, conn)
        query(request)
        row = await invoices.get(conn, caller, path_id(request, "in"))
    return JSONResponse(invoices.to_object(row))


routes = [
    Route("/v1/invoices", list_invoices, methods=["GET"]),
    Route("/v1/invoices/{id}", get_invoice, methods=["GET"]),
]
