"""Wiring for the municipality service."""

from aiohttp import web
from sqlalchemy import select

from services.kit.service import Service
from services.municipality.handlers import make_capacity_handler
from services.municipality.reference import load_register
from services.municipality.store import Base, Capacity

REGISTER = load_register()

service = Service("municipality", Base.metadata)
service.handles("no.ema.municipality.capacity.v1", durable="municipality-capacity")(
    make_capacity_handler(REGISTER)
)


async def capacity(request: web.Request) -> web.Response:
    """GET /capacity: published capacity per municipality and year."""
    async with service.sessions() as session:
        rows = (await session.scalars(select(Capacity).order_by(Capacity.kommunenummer))).all()
    return web.json_response([
        {"kommunenummer": r.kommunenummer, "name": REGISTER.municipalities[r.kommunenummer].name,
         "bufetat_region": r.bufetat_region, "year": r.year, "children": r.children,
         "measures": r.measures, "free_places": r.free_places}
        for r in rows
    ])  # fmt: skip


service.routes.append(web.get("/capacity", capacity))
