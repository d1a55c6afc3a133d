"""The hand-made shop of the blog's segmentation: fifteen customers, each but three left out for one reason.

As of 2024-09-01, with stores T1 (Madrid) and T2 (Sevilla); everyone consents, has a valid address, lives
1 km from T1 and buys there, unless said otherwise:
C01 occasional buyer, C02 monthly buyer who last bought 20 days ago, C03 weekly buyer who bought yesterday
(the three selected); C04 refused consent, C05 never answered; C06 'pepe@', C07 no email; C08 suppressed
(as 'rosa@example.com', stored as ' Rosa@Example.com '); C09 erased; C10 lost (last purchase 800 days ago);
C11 monthly buyer who bought 5 days ago; C12 8 km from T1; C13 1 km from T2 but buys mostly at T1; C14 no
coordinates; C15 never bought (no preferred store).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path

from audience_oracle import Customer, Line, Shop

EXAMPLE = Path(__file__).parent.parent / "examples" / "audiences" / "blog_segmentation.yaml"
AS_OF = date(2024, 9, 1)
MADRID = (40.4168, -3.7038)
SEVILLA = (37.3891, -5.9845)
KM_PER_DEGREE = 6371.0088 * 3.141592653589793 / 180


def north_of(point: tuple[float, float], km: float) -> tuple[float, float]:
    """A point `km` due north of another (a meridian arc, so the great-circle distance is exactly km)."""
    return point[0] + km / KM_PER_DEGREE, point[1]


def blog_shop() -> Shop:
    shop = Shop(products={"P1": "Supermercado ECO"}, stores={"T1": MADRID, "T2": SEVILLA})
    order = 0

    def customer(
        cid: str,
        *,
        days_ago: list[int],
        store: str = "T1",
        home: tuple[float, float] | None = None,
        located: bool = True,
        **fields: object,
    ) -> None:
        nonlocal order
        lat, lon = home or north_of(MADRID, 1.0)
        defaults: dict[str, object] = {"email": f"{cid.lower()}@example.com", "email_consent": True}
        shop.customers.append(
            Customer(
                cid, lat=lat if located else None, lon=lon if located else None, **{**defaults, **fields}
            )
        )  # type: ignore[arg-type]
        for ago in days_ago:
            order += 1
            when = datetime.combine(AS_OF - timedelta(days=ago), datetime.min.time()) + timedelta(hours=11)
            shop.lines.append(Line(f"O{order}", cid, when, "P1", 1, 10.0, store))

    customer("C01", days_ago=[30, 100, 300])  # occasional buyer: selected
    customer("C02", days_ago=[20, 50, 80])  # monthly buyer, but last bought 20 days ago: selected
    customer("C03", days_ago=[1, 8, 15])  # weekly buyer who bought yesterday: selected
    customer("C04", days_ago=[30], email_consent=False)
    customer("C05", days_ago=[30], email_consent=None)
    customer("C06", days_ago=[30], email="pepe@")
    customer("C07", days_ago=[30], email=None)
    customer("C08", days_ago=[30], email=" Rosa@Example.com ")
    customer("C09", days_ago=[30], erased_at=datetime(2024, 5, 1))
    customer("C10", days_ago=[800, 900])  # lost: no purchase in the last 730 days
    customer("C11", days_ago=[5, 35, 65])  # monthly buyer who bought 5 days ago
    customer("C12", days_ago=[30], home=north_of(MADRID, 8.0))  # 8 km from the preferred store
    customer("C13", days_ago=[30, 60], home=north_of(SEVILLA, 1.0))  # 1 km from T2, but prefers T1
    order += 1
    shop.lines.append(Line(f"O{order}", "C13", datetime(2024, 6, 1, 11), "P1", 1, 10.0, "T2"))
    customer("C14", days_ago=[30], located=False)  # no coordinates
    customer("C15", days_ago=[])  # never bought: no preferred store
    shop.suppressed_emails = ["rosa@example.com"]
    return shop
