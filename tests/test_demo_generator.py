"""The example shop generator: deterministic files, documented columns, personas that can be found again."""

from __future__ import annotations

import csv
import hashlib
import json
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score

from pleasepoint_cli.demo.generator import (
    CUSTOMER_COLUMNS,
    ORDER_COLUMNS,
    PRODUCT_COLUMNS,
    STORE_COLUMNS,
    TRUTH_COLUMNS,
    ShopFiles,
    generate_shop,
)

AS_OF = date(2026, 6, 30)
RARE_CATEGORIES = {"Bicicletas eléctricas", "Menaje de cobre"}
SMALL_CATEGORIES = {
    "Supermercado ECO",
    "Huerto ECO",
    "Bebé y niño",
    "Hogar",
    "Jardín y exterior",
    "Plantas",
}


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> ShopFiles:
    """The small example shop, orders as CSV."""
    return generate_shop(tmp_path_factory.mktemp("shop"), customers=2000, seed=42, as_of=AS_OF)


def read_table(path: Path) -> Any:
    """A generated file as an Arrow table of strings (Parquet keeps its types)."""
    if path.suffix == ".parquet":
        return pq.read_table(path)
    with path.open(encoding="utf-8") as handle:
        header = next(csv.reader(handle))
    options = pacsv.ConvertOptions(column_types={name: pa.string() for name in header})
    return pacsv.read_csv(path, convert_options=options)


def header_of(path: Path) -> list[str]:
    """The column names of a CSV file."""
    with path.open(encoding="utf-8", newline="") as handle:
        return next(csv.reader(handle))


def file_hashes(shop: ShopFiles) -> dict[str, str]:
    """SHA-256 of every file of a shop, by file name."""
    return {
        path.name: hashlib.sha256(path.read_bytes()).hexdigest()
        for path in (shop.customers, shop.products, shop.stores, shop.orders, shop.truth, shop.truth_json)
    }


def freq_matrix(shop: ShopFiles) -> tuple[Any, Any]:
    """The guide's matrix_freq (share of a customer's orders holding each category) and the true personas."""
    truth = read_table(shop.truth)
    products = read_table(shop.products)
    orders = read_table(shop.orders)
    orders = orders.filter(pc.equal(orders["status"], "completado"))

    categories = pc.dictionary_encode(products["category"].combine_chunks())
    product_category = categories.indices.to_numpy()
    line_category = product_category[pc.index_in(orders["product_id"], products["product_id"]).to_numpy()]
    line_customer = pc.index_in(orders["customer_id"], truth["customer_id"]).to_numpy()
    line_order = pc.dictionary_encode(orders["order_id"].combine_chunks()).indices.to_numpy()

    n_categories = len(categories.dictionary)
    order_category = np.unique(line_order.astype(np.int64) * n_categories + line_category)
    order_customer = np.zeros(line_order.max() + 1, dtype=np.int64)
    order_customer[line_order] = line_customer
    counts = np.zeros((truth.num_rows, n_categories))
    np.add.at(counts, (order_customer[order_category // n_categories], order_category % n_categories), 1)
    orders_per_customer = np.bincount(order_customer, minlength=truth.num_rows)
    persona = truth["persona"].to_numpy().astype(np.int64)
    return counts / orders_per_customer[:, None], persona, orders_per_customer


@pytest.mark.parametrize("orders_format", ["csv", "parquet"])
def test_the_same_inputs_give_byte_identical_files(tmp_path: Path, orders_format: str) -> None:
    first = generate_shop(tmp_path / "a", customers=1500, seed=7, orders_format=orders_format)
    second = generate_shop(tmp_path / "b", customers=1500, seed=7, orders_format=orders_format)
    other_seed = generate_shop(tmp_path / "c", customers=1500, seed=8, orders_format=orders_format)

    assert file_hashes(first) == file_hashes(second)
    assert file_hashes(first)[first.orders.name] != file_hashes(other_seed)[other_seed.orders.name]


def test_files_have_the_documented_columns(shop: ShopFiles) -> None:
    assert header_of(shop.customers) == list(CUSTOMER_COLUMNS)
    assert header_of(shop.products) == list(PRODUCT_COLUMNS)
    assert header_of(shop.stores) == list(STORE_COLUMNS)
    assert header_of(shop.orders) == list(ORDER_COLUMNS)
    assert header_of(shop.truth) == list(TRUTH_COLUMNS)
    assert ORDER_COLUMNS == (
        "order_id",
        "customer_id",
        "ordered_at",
        "product_id",
        "quantity",
        "unit_price",
        "store_id",
        "status",
    )


def test_counts_match_the_files(shop: ShopFiles) -> None:
    orders = read_table(shop.orders)

    truth = json.loads(shop.truth_json.read_text(encoding="utf-8"))
    missing = truth["dirt"]["counts"]["customers_missing_from_export"]
    blank = sum(truth["dirt"]["counts"][f"products_with_a_blank_{f}_line"] for f in ("name", "price"))

    assert read_table(shop.customers).num_rows == shop.n_customers - missing and 0 < missing < 40
    assert read_table(shop.truth).num_rows == shop.n_customers == 2000
    assert read_table(shop.products).num_rows == shop.n_products + blank
    assert shop.n_products == 240  # 6 categories and 2 rare ones, 30 products each
    assert orders.num_rows == shop.n_order_lines
    assert len(pc.unique(orders["order_id"])) == shop.n_orders
    assert 4 <= shop.n_order_lines / shop.n_customers <= 10


def test_accents_survive(shop: ShopFiles) -> None:
    customers = read_table(shop.customers)
    first_names = set(customers["first_name"].to_pylist())
    surnames = {word for name in customers["last_name"].to_pylist() for word in name.split()}
    categories = set(read_table(shop.products)["category"].to_pylist())
    cities = set(read_table(shop.stores)["city"].to_pylist())

    assert {"José", "María", "Lucía"} <= first_names
    assert {"García", "Martínez", "Núñez"} <= surnames
    assert categories == SMALL_CATEGORIES | RARE_CATEGORIES
    assert {"Málaga", "Córdoba", "Gijón"} <= cities
    assert "Jardín y exterior" in shop.products.read_bytes().decode("utf-8")


def test_customers_look_like_a_spanish_shop(shop: ShopFiles) -> None:
    customers = read_table(shop.customers).to_pylist()
    by_name = {(row["first_name"], row["gender"]) for row in customers}
    emails = [row["email"] or "" for row in customers]
    valid = [email for email in emails if email.count("@") == 1 and email.split("@")[0]]
    consented = [row for row in customers if row["email_consent"] == "true"]

    without_first_name = sum(not row["first_name"] for row in customers) / len(customers)
    assert 0.015 <= without_first_name <= 0.05
    assert ("María", "F") in by_name and ("María", "M") not in by_name
    assert ("José", "M") in by_name and ("José", "F") not in by_name
    assert all(email.isascii() and email == email.lower() for email in valid)
    assert any(email.startswith("jose.") for email in valid)
    assert 0.01 <= 1 - len(valid) / len(emails) <= 0.06
    assert 0.75 <= len(consented) / len(customers) <= 0.85
    assert all(row["consent_at"] for row in consented)
    assert not any(row["consent_at"] for row in customers if row["email_consent"] == "false")
    assert {row["country"] for row in customers} == {"ES"}
    assert {row["language"] for row in customers} == {"es", "ca"}
    assert sum(row["birth_date"][5:] == AS_OF.strftime("%m-%d") for row in customers) >= 10
    assert all("1945-01-01" <= row["birth_date"] <= "2005-12-31" for row in customers)


def test_some_customers_live_far_from_every_store(shop: ShopFiles) -> None:
    customers = read_table(shop.customers)
    stores = read_table(shop.stores)
    lat = np.radians(customers["lat"].to_numpy().astype(float))[:, None]
    lon = np.radians(customers["lon"].to_numpy().astype(float))[:, None]
    store_lat = np.radians(stores["lat"].to_numpy().astype(float))[None, :]
    store_lon = np.radians(stores["lon"].to_numpy().astype(float))[None, :]
    haversine = (
        np.sin((store_lat - lat) / 2) ** 2
        + np.cos(lat) * np.cos(store_lat) * np.sin((store_lon - lon) / 2) ** 2
    )
    nearest_km = (2 * 6371 * np.arcsin(np.sqrt(haversine))).min(axis=1)

    assert 0.1 <= (nearest_km > 5).mean() <= 0.9
    assert nearest_km.max() < 20


def test_customers_join_throughout_and_about_half_buy_once(shop: ShopFiles) -> None:
    orders = read_table(shop.orders)
    completed = orders.filter(pc.equal(orders["status"], "completado"))
    days: dict[str, set[str]] = {}
    for customer, ordered_at in zip(
        completed["customer_id"].to_pylist(), completed["ordered_at"].to_pylist(), strict=True
    ):
        days.setdefault(customer, set()).add(ordered_at[:10])
    first = np.array([(AS_OF - date.fromisoformat(min(d))).days for d in days.values()])
    last = np.array([(AS_OF - date.fromisoformat(max(d))).days for d in days.values()])
    purchase_days = np.array([len(d) for d in days.values()])
    truth = json.loads(shop.truth_json.read_text(encoding="utf-8"))

    assert len(days) == shop.n_customers
    assert last.min() >= 1 and first.max() <= 3 * 365
    assert 0.2 <= (first < 365).mean() <= 0.45  # joined in the last year: a third, as joins are uniform
    assert 0.45 <= (purchase_days == 1).mean() <= 0.62
    assert int((purchase_days == 1).sum()) == truth["purchase_process"]["one_time_buyers"]
    assert int(purchase_days.sum()) == truth["purchase_process"]["purchases"]
    assert (last < 182).mean() >= 0.15  # every recency state is populated
    assert (last >= 730).mean() >= 0.1
    assert min(orders["ordered_at"].to_pylist()) >= str(AS_OF - timedelta(days=3 * 365))


def test_every_planted_persona_is_present_with_unequal_sizes(shop: ShopFiles) -> None:
    truth = read_table(shop.truth)
    sizes = np.bincount(truth["persona"].to_numpy().astype(np.int64))[1:]
    names = dict(zip(truth["persona"].to_pylist(), truth["persona_name"].to_pylist(), strict=True))

    assert shop.personas == (
        "Sólo supermercado",
        "Supermercado + Huerto + Bebé",
        "Huerto + Plantas + Supermercado",
        "Sólo huerto",
        "Global",
    )
    assert [names[str(number)] for number in range(1, 6)] == list(shop.personas)
    assert list(sizes) == sorted(sizes, reverse=True) and len(set(sizes)) == 5


@pytest.mark.parametrize("customers", [2000, 20_000])
def test_kmeans_on_the_freq_matrix_finds_the_planted_personas(tmp_path: Path, customers: int) -> None:
    shop = generate_shop(tmp_path, customers=customers, seed=42)
    freq, persona, orders = freq_matrix(shop)
    regular = orders >= 3
    labels = KMeans(n_clusters=len(shop.personas), n_init=10, random_state=42).fit_predict(freq[regular])

    assert adjusted_rand_score(persona[regular], labels) >= 0.9


def test_products_have_offers_urls_and_brands(shop: ShopFiles) -> None:
    products = read_table(shop.products).to_pylist()
    on_offer = [row for row in products if row["offer_price"]]

    products = list({row["product_id"]: row for row in reversed(products)}.values())  # first line of each
    on_offer = [row for row in products if row["offer_price"]]
    assert 0.1 <= len(on_offer) / len(products) <= 0.2
    assert all(float(row["offer_price"]) < float(row["price"]) for row in on_offer)
    current = [row for row in on_offer if row["offer_from"] <= AS_OF.isoformat() <= row["offer_to"]]
    assert len(current) >= len(on_offer) / 2
    assert all(row["price"].count(".") == 1 and len(row["price"].split(".")[1]) == 2 for row in products)
    assert all(row["url"] == f"https://tienda.example/p/{row['product_id']}" for row in products)
    assert all(row["image_url"] == f"https://tienda.example/img/{row['product_id']}.jpg" for row in products)
    brand_categories: dict[str, set[str]] = {}
    for row in products:
        brand_categories.setdefault(row["brand"], set()).add(row["category"])
    assert any(len(categories) > 1 for categories in brand_categories.values())


def test_orders_have_spanish_statuses_returns_cancellations_and_stores(shop: ShopFiles) -> None:
    orders = read_table(shop.orders).to_pylist()
    returns = [row for row in orders if row["status"] == "devuelto"]
    cancelled = [row for row in orders if row["status"] == "cancelado"]
    purchases = [row for row in orders if row["status"] == "completado"]
    purchase_keys = {(row["customer_id"], row["product_id"], row["quantity"]) for row in purchases}
    order_ids = {row["order_id"] for row in purchases}
    in_store = {row["order_id"] for row in purchases if row["store_id"]}
    cancelled_orders = {row["order_id"] for row in cancelled}
    truth = json.loads(shop.truth_json.read_text(encoding="utf-8"))["dirt"]["counts"]

    assert {row["status"] for row in orders} == {"completado", "devuelto", "cancelado"}
    assert len(returns) == truth["returned_lines"] and 0.005 <= len(returns) / len(orders) <= 0.02
    assert len(cancelled_orders) == truth["cancelled_orders"]
    assert 0.02 <= len(cancelled_orders) / (len(order_ids) + len(cancelled_orders)) <= 0.06
    assert all(int(row["quantity"]) < 0 and row["order_id"] not in order_ids for row in returns)
    assert all(int(row["quantity"]) > 0 and row["order_id"] not in order_ids for row in cancelled)
    assert all(
        (row["customer_id"], row["product_id"], row["quantity"][1:]) in purchase_keys for row in returns
    )
    assert all(1 <= int(row["quantity"]) <= 6 for row in purchases)
    assert 0.6 <= len(in_store) / len(order_ids) <= 0.8
    assert all(row["order_id"].startswith("P") and len(row["order_id"]) == 8 for row in orders)
    assert [row["order_id"] for row in orders] == sorted(row["order_id"] for row in orders)
    assert [row["ordered_at"] for row in orders] == sorted(row["ordered_at"] for row in orders)


def test_an_order_is_its_basket_at_list_prices_scaled_to_a_gamma_gamma_total(shop: ShopFiles) -> None:
    orders = read_table(shop.orders).to_pylist()
    products = {row["product_id"]: row for row in reversed(read_table(shop.products).to_pylist())}
    ratios: dict[str, list[float]] = {}
    for row in orders:
        if row["status"] != "completado":
            continue
        product = products[row["product_id"]]
        offer = (
            product["offer_price"] and product["offer_from"] <= row["ordered_at"][:10] <= product["offer_to"]
        )
        list_price = float(product["offer_price"] if offer else product["price"])
        ratios.setdefault(row["order_id"], []).append(float(row["unit_price"]) / list_price)
    spread = [max(r) / min(r) for r in ratios.values() if min(r) > 0.05]
    totals: dict[str, float] = {}
    for row in orders:
        if row["status"] == "completado":
            totals[row["order_id"]] = totals.get(row["order_id"], 0.0) + int(row["quantity"]) * float(
                row["unit_price"]
            )
    mean_total = float(np.mean(list(totals.values())))

    assert np.median(spread) < 1.01  # one price level per order
    assert 25 <= mean_total <= 60  # Gamma-Gamma's mean p * gamma / (q - 1) is 35.2 euros


def test_parquet_and_csv_hold_the_same_orders(tmp_path: Path, shop: ShopFiles) -> None:
    parquet_shop = generate_shop(tmp_path, customers=2000, seed=42, as_of=AS_OF, orders_format="parquet")
    from_csv = read_table(shop.orders)
    from_parquet = read_table(parquet_shop.orders)

    assert parquet_shop.orders.suffix == ".parquet"
    assert file_hashes(parquet_shop)["customers.csv"] == file_hashes(shop)["customers.csv"]
    assert from_parquet.num_rows == from_csv.num_rows == parquet_shop.n_order_lines
    for column in ("order_id", "customer_id", "product_id", "status"):
        assert from_parquet[column].to_pylist() == from_csv[column].to_pylist()
    seconds = from_parquet["ordered_at"].cast(pa.timestamp("s"))
    assert pc.strftime(seconds, "%Y-%m-%d %H:%M:%S").to_pylist() == (from_csv["ordered_at"].to_pylist())
    assert from_parquet["quantity"].to_pylist() == [int(q) for q in from_csv["quantity"].to_pylist()]
    assert [f"{p:.2f}" for p in from_parquet["unit_price"].to_pylist()] == from_csv["unit_price"].to_pylist()
    assert [s or "" for s in from_parquet["store_id"].to_pylist()] == [
        s or "" for s in from_csv["store_id"].to_pylist()
    ]


def test_a_large_shop_has_twenty_common_categories_and_seven_personas(tmp_path: Path) -> None:
    shop = generate_shop(tmp_path, customers=100_000, seed=3, orders_format="parquet")
    products = read_table(shop.products)
    categories = set(products["category"].to_pylist())
    sizes = np.bincount(read_table(shop.truth)["persona"].to_numpy().astype(np.int64))[1:]

    assert len(categories - RARE_CATEGORIES) == 20 and categories > SMALL_CATEGORIES | RARE_CATEGORIES
    assert shop.n_products >= 5000
    assert len(shop.personas) == 7 and {"Hogar y jardín", "Bebé y niño"} < set(shop.personas)
    assert list(sizes) == sorted(sizes, reverse=True) and len(set(sizes)) == 7
    assert 4 <= shop.n_order_lines / shop.n_customers <= 10


def test_progress_is_reported(tmp_path: Path) -> None:
    messages: list[str] = []
    generate_shop(tmp_path, customers=100, progress=messages.append)

    assert messages and any("orders" in message for message in messages)


@pytest.mark.parametrize(("customers", "orders_format"), [(0, "csv"), (10, "xlsx")])
def test_bad_arguments_are_refused(tmp_path: Path, customers: int, orders_format: str) -> None:
    with pytest.raises(ValueError):
        generate_shop(tmp_path, customers=customers, orders_format=orders_format)
