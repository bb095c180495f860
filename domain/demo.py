"""The demo account: created with sample sellers, products and orders when the database has no users."""

from __future__ import annotations

import logging

import anyio.to_thread

from domain.services import Services
from domain.services.users import hash_password
from domain.store.base import StoreOrder, StoreOrderItem
from domain.store.local import LocalStore
from domain.tables import User

logger = logging.getLogger("dropsync.demo")

DEMO_USERNAME = "demo"
DEMO_PASSWORD = "demo-password"  # noqa: S105 - a published sample account, documented in the README


async def seed_demo(services: Services) -> bool:
    """Create the demo user and its data if no user exists yet; True when it did."""
    if await User.exists():
        return False
    password_hash = await anyio.to_thread.run_sync(hash_password, DEMO_PASSWORD)
    user_id = (await services.users.create_user(DEMO_USERNAME, password_hash))["id"]
    acme = await services.sellers.create(
        user_id, {"name": "Acme Supplies", "email": "orders@acme.example", "notes": "Ships in 2 days"}
    )
    globex = await services.sellers.create(user_id, {"name": "Globex Wholesale", "email": "sales@globex.example"})
    catalogue = [
        (acme, "ACME-MUG", "Enamel camping mug", "4.20", "12.99", 40),
        (acme, "ACME-LAMP", "Solar garden lamp", "7.50", "24.90", 12),
        (acme, "ACME-TENT", "Two-person tent", "38.00", "89.00", 3),
        (globex, "GLX-CABLE", "USB-C cable 2 m", "1.10", "9.99", 250),
        (globex, "GLX-HUB", "7-port USB hub", "9.80", "29.50", 0),
    ]
    products = []
    for seller, sku, name, cost, price, stock in catalogue:
        products.append(
            await services.products.create(
                user_id,
                {
                    "seller_id": seller["id"],
                    "sku": sku,
                    "name": name,
                    "cost_price": cost,
                    "price": price,
                    "stock": stock,
                },
            )
        )
    await services.orders.create(
        user_id,
        {
            "external_id": "1001",
            "customer": {
                "name": "Ada Lovelace",
                "email": "ada@example.com",
                "address": "12 St James's Sq, London",
            },
            "items": [
                {"product_id": products[0]["id"], "quantity": 2},
                {"product_id": products[3]["id"], "quantity": 1},
            ],
        },
    )
    await services.orders.create(
        user_id,
        {
            "external_id": "1002",
            "customer": {"name": "Grace Hopper", "email": "grace@example.com", "address": "Arlington, VA"},
            "items": [{"product_id": products[2]["id"], "quantity": 1}],
        },
    )
    # Two orders waiting in the (local) store: POST /orders/fetch brings them in.
    store = LocalStore(user_id)
    await store.place_order(
        StoreOrder(
            store_order_id="",
            external_id="1003",
            customer_name="Alan Turing",
            customer_email="alan@example.com",
            customer_address="Bletchley Park, Milton Keynes",
            items=[StoreOrderItem(sku="ACME-LAMP", quantity=2, unit_price_cents=2490)],
            total_cents=4980,
        )
    )
    await store.place_order(
        StoreOrder(
            store_order_id="",
            external_id="1004",
            customer_name="Katherine Johnson",
            customer_email="katherine@example.com",
            customer_address="Hampton, VA",
            items=[
                StoreOrderItem(sku="GLX-CABLE", quantity=3, unit_price_cents=999),
                StoreOrderItem(sku="ACME-MUG", quantity=1, unit_price_cents=1299),
            ],
            total_cents=4296,
        )
    )
    logger.info("created the demo user %r with sample data", DEMO_USERNAME)
    return True
