from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from agent.campaigns.records import (
    Address,
    Channel,
    CheckoutRecord,
    Consent,
    Customer,
    LineItem,
    OrderRecord,
)
from agent.campaigns.webhooks import (
    WebhookRejected,
    parse_generic,
    parse_generic_payload,
    parse_shopify,
    parse_woocommerce,
)

DATA = Path(__file__).parent / "data"
SECRET = "shpss_0f9e8d7c6b5a4f3e2d1c"
NOW = datetime(2024, 3, 6, 21, 45, 30, tzinfo=UTC)
# Customer data in the sample payloads that must never appear in a rejection message.
PERSONAL = [
    "maria.lopez@example.com",
    "555-0123",
    "2015550123",
    "oliver.bennett@example.co.uk",
    "7946 0018",
    "dana.kim@example.net",
    "555-0142",
    "3055550142",
]


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((DATA / name).read_text())
    return data


def b64_hmac(secret: str, body: bytes) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def shopify_headers(body: bytes, topic: str, secret: str = SECRET) -> dict[str, str]:
    return {
        "X-Shopify-Topic": topic,
        "X-Shopify-Hmac-Sha256": b64_hmac(secret, body),
        "X-Shopify-Shop-Domain": "harbor-home.myshopify.com",
        "X-Shopify-Webhook-Id": "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043",
        "X-Shopify-Event-Id": "98880550-7158-44d4-b7cd-2c97c8a091b5",
    }


def woo_headers(body: bytes, topic: str = "order.updated", secret: str = SECRET) -> dict[str, str]:
    return {
        "X-WC-Webhook-Source": "https://shop.example.co.uk/",
        "X-WC-Webhook-Topic": topic,
        "X-WC-Webhook-Resource": topic.split(".")[0],
        "X-WC-Webhook-Event": topic.split(".")[-1],
        "X-WC-Webhook-Signature": b64_hmac(secret, body),
        "X-WC-Webhook-ID": "12",
        "X-WC-Webhook-Delivery-ID": "9f2c6e0b7a1d4c58e3b2f1a0d9c8b7a6",
    }


def generic_headers(body: bytes, at: datetime = NOW, secret: str = SECRET) -> dict[str, str]:
    ts = str(int(at.timestamp()))
    sig = hmac.new(secret.encode(), ts.encode() + b"." + body, hashlib.sha256).hexdigest()
    return {"X-Cartline-Timestamp": ts, "X-Cartline-Signature": f"v1={sig}"}


def encode(payload: object) -> bytes:
    return json.dumps(payload).encode()


def assert_rejected(err: WebhookRejected, code: str, status: int) -> None:
    assert (err.code, err.status) == (code, status)
    for value in PERSONAL:
        assert value not in str(err)


# --- Shopify ---------------------------------------------------------------------------------


def test_shopify_checkout_becomes_a_checkout_record() -> None:
    body = (DATA / "shopify_checkout.json").read_bytes()
    delivery = parse_shopify(shopify_headers(body, "checkouts/update"), body, SECRET)
    assert (delivery.source, delivery.topic) == ("shopify", "checkouts/update")
    assert delivery.delivery_id == "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"
    assert delivery.records == (
        CheckoutRecord(
            source="shopify",
            external_id="b1946ac92492d2347c6235b4d2611184",
            customer=Customer(
                phone="(201) 555-0123",  # the checkout's own phone is null: the shipping one
                email="maria.lopez@example.com",
                first_name="Maria",
                last_name="Lopez",
                address=Address(country="US", region="NJ", postal_code="07030", city="Hoboken"),
                external_id="7285611102432",
            ),
            total=Decimal("197.10"),
            currency="USD",
            abandoned_at=datetime(2024, 3, 1, 14, 20, 3, tzinfo=UTC),
            items=(
                LineItem("Linen Throw", 2, Decimal("89.00"), "LT-SAND"),
                LineItem("Gift Card Sleeve", 1, Decimal("4.50"), None),
            ),
            checkout_url="https://harbor-home.myshopify.com/60123456789/checkouts/ac/"
            "b1946ac92492d2347c6235b4d2611184/recover?key=5f3c0a9e",
            completed=False,
            consents=(
                Consent(
                    Channel.SMS,
                    True,
                    "single_opt_in",
                    datetime(2024, 3, 1, 14, 19, 58, tzinfo=UTC),
                    "shopify-checkout",
                ),
                Consent(
                    Channel.CALL,
                    True,
                    "call-consent-2024-02",
                    datetime(2024, 3, 1, 14, 20, 3, tzinfo=UTC),
                    "shopify-checkout",
                ),
            ),
        ),
    )


def test_shopify_headers_are_read_whatever_their_case() -> None:
    body = (DATA / "shopify_checkout.json").read_bytes()
    headers = {k.lower(): v for k, v in shopify_headers(body, "checkouts/create").items()}
    assert len(parse_shopify(headers, body, SECRET).records) == 1


def test_shopify_event_id_is_the_delivery_id_without_a_webhook_id() -> None:
    body = (DATA / "shopify_checkout.json").read_bytes()
    headers = shopify_headers(body, "checkouts/create")
    del headers["X-Shopify-Webhook-Id"]
    assert parse_shopify(headers, body, SECRET).delivery_id == headers["X-Shopify-Event-Id"]


def shopify_checkout(**changes: Any) -> CheckoutRecord:
    payload = load("shopify_checkout.json")
    payload.update(changes)
    body = encode(payload)
    (record,) = parse_shopify(shopify_headers(body, "checkouts/update"), body, SECRET).records
    assert isinstance(record, CheckoutRecord)
    return record


def test_shopify_completed_checkout_and_fallbacks() -> None:
    payload = load("shopify_checkout.json")
    record = shopify_checkout(
        completed_at="2024-03-02T18:41:05-05:00",
        token=None,
        phone="+1 201 555 0199",
        currency=None,
        shipping_address=None,
        updated_at=None,
        note_attributes=[{"name": "cartline_call_consent", "value": "No"}],
        customer={**payload["customer"], "sms_marketing_consent": {"state": "unsubscribed"}},
    )
    assert record.completed
    assert record.external_id == "35213218054368"  # no token: the numeric id
    assert record.customer.phone == "+1 201 555 0199"
    assert record.currency == "USD"  # presentment_currency
    assert record.customer.address == Address("US", "NJ", "07030", "Hoboken")  # billing
    created = datetime(2024, 3, 1, 14, 12, 44, tzinfo=UTC)
    assert record.abandoned_at == created
    assert record.consents == (
        Consent(Channel.SMS, False, "shopify", created, "shopify-checkout"),
        Consent(Channel.CALL, False, "checkout-v1", created, "shopify-checkout"),
    )


@pytest.mark.parametrize("value", ["", "sure thing", None, {"v": 1}])
def test_shopify_unclear_call_consent_records_none(
    value: object, caplog: pytest.LogCaptureFixture
) -> None:
    payload = load("shopify_checkout.json")
    record = shopify_checkout(
        note_attributes=[{"name": "cartline_call_consent", "value": value}],
        customer={**payload["customer"], "sms_marketing_consent": {"state": "not_subscribed"}},
    )
    assert record.consents == ()
    assert "sure thing" not in caplog.text
    assert ("cartline_call_consent" in caplog.text) == (value not in ("", None))


def test_shopify_order() -> None:
    body = (DATA / "shopify_order.json").read_bytes()
    delivery = parse_shopify(shopify_headers(body, "orders/create"), body, SECRET)
    (order,) = delivery.records
    assert isinstance(order, OrderRecord)
    assert order.external_id == "5736428290272"
    assert order.checkout_external_id == "b1946ac92492d2347c6235b4d2611184"
    assert (order.total, order.currency) == (Decimal("197.10"), "USD")
    assert order.created_at == datetime(2024, 3, 2, 23, 41, 7, tzinfo=UTC)
    assert order.customer.email == "maria.lopez@example.com"


def test_shopify_order_without_token_links_by_checkout_id() -> None:
    payload = load("shopify_order.json")
    payload["checkout_token"] = None
    body = encode(payload)
    (order,) = parse_shopify(shopify_headers(body, "orders/paid"), body, SECRET).records
    assert isinstance(order, OrderRecord)
    assert order.checkout_external_id == "35213218054368"


def test_shopify_ignored_topic_is_accepted_without_reading_the_body() -> None:
    body = b"not even json"
    delivery = parse_shopify(shopify_headers(body, "products/update"), body, SECRET)
    assert (delivery.topic, delivery.records) == ("products/update", ())


def test_shopify_wrong_secret_tampered_body_missing_signature() -> None:
    body = (DATA / "shopify_checkout.json").read_bytes()
    with pytest.raises(WebhookRejected) as wrong:
        parse_shopify(shopify_headers(body, "checkouts/create", "other"), body, SECRET)
    assert_rejected(wrong.value, "bad_signature", 401)

    headers = shopify_headers(body, "checkouts/create")
    with pytest.raises(WebhookRejected) as tampered:
        parse_shopify(headers, body.replace(b"197.10", b"1.00"), SECRET)
    assert_rejected(tampered.value, "bad_signature", 401)

    del headers["X-Shopify-Hmac-Sha256"]
    with pytest.raises(WebhookRejected) as missing:
        parse_shopify(headers, body, SECRET)
    assert_rejected(missing.value, "missing_signature", 401)


def test_no_secret_configured_rejects_everything() -> None:
    body = b"{}"
    with pytest.raises(WebhookRejected) as err:
        parse_shopify(shopify_headers(body, "checkouts/create", ""), body, "")
    assert_rejected(err.value, "bad_signature", 401)


def test_signature_checked_before_headers() -> None:
    body = b"{}"
    with pytest.raises(WebhookRejected) as err:
        parse_shopify({"X-Shopify-Hmac-Sha256": "nope"}, body, SECRET)
    assert err.value.code == "bad_signature"


def set_path(payload: dict[str, Any], path: str, value: object) -> None:
    *parents, last = path.split(".")
    node: Any = payload
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    node[last] = value


@pytest.mark.parametrize(
    ("path", "value", "named"),
    [
        ("total_price", None, "total_price"),
        ("total_price", "lots", "total_price"),
        ("total_price", "-1.00", "total_price"),
        ("line_items", {"title": "x"}, "line_items"),
        ("line_items.0.price", "NaN", "line_items[0].price"),
        ("line_items.1.quantity", "one", "line_items[1].quantity"),
        ("line_items.1.quantity", -1, "line_items[1].quantity"),
        ("line_items.0.title", None, "line_items[0].title"),
        ("updated_at", "yesterday", "updated_at"),
        ("currency", "US Dollars", "currency"),
        ("shipping_address", "12 Orchard Lane", "shipping_address"),
        ("email", ["maria.lopez@example.com"], "email"),
        ("phone", {"number": "2015550123"}, "phone"),
    ],
)
def test_shopify_malformed_checkout_names_the_field(path: str, value: object, named: str) -> None:
    payload = load("shopify_checkout.json")
    set_path(payload, path, value)
    body = encode(payload)
    with pytest.raises(WebhookRejected) as err:
        parse_shopify(shopify_headers(body, "checkouts/update"), body, SECRET)
    assert_rejected(err.value, "malformed", 400)
    assert str(err.value).startswith(f"{named}:")


@pytest.mark.parametrize("body", [b"", b"{not json", b"[]", b'"text"', b"\xff\xfe", b"NaN"])
def test_shopify_unreadable_body(body: bytes) -> None:
    with pytest.raises(WebhookRejected) as err:
        parse_shopify(shopify_headers(body, "checkouts/create"), body, SECRET)
    assert_rejected(err.value, "malformed", 400)


def test_shopify_checkout_without_any_id_or_time() -> None:
    for missing in (("token", "id"), ("updated_at", "created_at")):
        payload = load("shopify_checkout.json")
        for key in missing:
            payload[key] = None
        body = encode(payload)
        with pytest.raises(WebhookRejected) as err:
            parse_shopify(shopify_headers(body, "checkouts/create"), body, SECRET)
        assert_rejected(err.value, "malformed", 400)


def test_shopify_missing_topic_or_delivery_id() -> None:
    body = (DATA / "shopify_order.json").read_bytes()
    for header in ("X-Shopify-Topic", "X-Shopify-Webhook-Id"):
        headers = shopify_headers(body, "orders/create")
        del headers[header]
        headers.pop("X-Shopify-Event-Id")
        with pytest.raises(WebhookRejected) as err:
            parse_shopify(headers, body, SECRET)
        assert_rejected(err.value, "malformed", 400)
        assert header in str(err.value)


# --- WooCommerce -----------------------------------------------------------------------------


def test_woocommerce_pending_order_is_an_abandoned_checkout() -> None:
    body = (DATA / "woocommerce_order_pending.json").read_bytes()
    delivery = parse_woocommerce(woo_headers(body, "order.created"), body, SECRET)
    assert delivery.delivery_id == "9f2c6e0b7a1d4c58e3b2f1a0d9c8b7a6"
    at = datetime(2024, 3, 4, 13, 5, 40, tzinfo=UTC)
    assert delivery.records == (
        CheckoutRecord(
            source="woocommerce",
            external_id="4172",
            customer=Customer(
                phone="020 7946 0018",
                email="oliver.bennett@example.co.uk",
                first_name="Oliver",
                last_name="Bennett",
                address=Address(country="GB", region=None, postal_code="NW1 6XE", city="London"),
                external_id=None,  # a guest
            ),
            total=Decimal("70.89"),
            currency="GBP",
            abandoned_at=at,
            items=(
                LineItem("Stoneware Mug - Ink Blue", 3, Decimal("12.5"), "MUG-INK"),
                LineItem("Tea Towel", 1, Decimal("16.625"), None),
            ),
            checkout_url="https://shop.example.co.uk/checkout/order-pay/4172/"
            "?pay_for_order=true&key=wc_order_Xk3pQ9aZr2LmN",
            completed=False,
            consents=(
                Consent(Channel.CALL, True, "uk-call-consent-v2", at, "woocommerce-checkout"),
                Consent(Channel.SMS, False, "uk-call-consent-v2", at, "woocommerce-checkout"),
            ),
        ),
    )


def test_woocommerce_paid_order_completes_its_checkout() -> None:
    body = (DATA / "woocommerce_order_processing.json").read_bytes()
    checkout, order = parse_woocommerce(woo_headers(body), body, SECRET).records
    assert isinstance(checkout, CheckoutRecord)
    assert isinstance(order, OrderRecord)
    assert checkout.completed
    assert order.external_id == order.checkout_external_id == checkout.external_id == "4172"
    assert order.created_at == datetime(2024, 3, 5, 8, 30, tzinfo=UTC)  # when it was paid
    assert (order.total, order.currency) == (Decimal("70.89"), "GBP")
    assert order.customer.external_id == "57"


@pytest.mark.parametrize("status", ["cancelled", "refunded", "trash"])
def test_woocommerce_other_statuses_record_nothing(status: str) -> None:
    payload = load("woocommerce_order_pending.json")
    payload["status"] = status
    body = encode(payload)
    assert parse_woocommerce(woo_headers(body), body, SECRET).records == ()


def test_woocommerce_item_without_unit_price_uses_the_subtotal() -> None:
    payload = load("woocommerce_order_pending.json")
    del payload["line_items"][0]["price"]
    body = encode(payload)
    (checkout,) = parse_woocommerce(woo_headers(body), body, SECRET).records
    assert isinstance(checkout, CheckoutRecord)
    assert checkout.items[0].unit_price == Decimal("12.50")
    assert str(checkout.items[0].unit_price) == "12.50"


def test_woocommerce_ping_is_accepted_unsigned() -> None:
    delivery = parse_woocommerce({"User-Agent": "WooCommerce/8.6.1"}, b"webhook_id=12", SECRET)
    assert (delivery.topic, delivery.delivery_id, delivery.records) == ("ping", "ping-12", ())


def test_woocommerce_ping_with_a_wrong_signature_is_rejected() -> None:
    headers = {"X-WC-Webhook-Signature": b64_hmac("other", b"webhook_id=12")}
    with pytest.raises(WebhookRejected) as err:
        parse_woocommerce(headers, b"webhook_id=12", SECRET)
    assert_rejected(err.value, "bad_signature", 401)


def test_woocommerce_signatures() -> None:
    body = (DATA / "woocommerce_order_pending.json").read_bytes()
    with pytest.raises(WebhookRejected) as wrong:
        parse_woocommerce(woo_headers(body, secret="other"), body, SECRET)
    assert_rejected(wrong.value, "bad_signature", 401)
    headers = woo_headers(body)
    del headers["X-WC-Webhook-Signature"]
    with pytest.raises(WebhookRejected) as missing:
        parse_woocommerce(headers, body, SECRET)
    assert_rejected(missing.value, "missing_signature", 401)


def test_woocommerce_ignored_topic() -> None:
    body = b'{"id": 311, "name": "Stoneware Mug"}'
    delivery = parse_woocommerce(woo_headers(body, "product.updated"), body, SECRET)
    assert delivery.records == ()


@pytest.mark.parametrize(
    ("path", "value", "named"),
    [
        ("status", None, "status"),
        ("id", None, "id"),
        ("total", "seventy", "total"),
        ("currency", "£", "currency"),
        ("date_modified_gmt", "04/03/2024", "date_modified_gmt"),
        ("billing", "Oliver Bennett, 020 7946 0018", "billing"),
        ("line_items.0.quantity", 2.5, "line_items[0].quantity"),
        ("meta_data", {"cartline_call_consent": "yes"}, "meta_data"),
    ],
)
def test_woocommerce_malformed_order(path: str, value: object, named: str) -> None:
    payload = load("woocommerce_order_pending.json")
    set_path(payload, path, value)
    body = encode(payload)
    with pytest.raises(WebhookRejected) as err:
        parse_woocommerce(woo_headers(body), body, SECRET)
    assert_rejected(err.value, "malformed", 400)
    assert str(err.value).startswith(f"{named}:")


# --- Generic ---------------------------------------------------------------------------------


def test_generic_checkout_event() -> None:
    body = (DATA / "generic_checkout.json").read_bytes()
    delivery = parse_generic(generic_headers(body), body, SECRET, now=NOW)
    assert (delivery.source, delivery.topic) == ("generic", "checkout")
    assert delivery.delivery_id == "evt_01HR7M4Q1X9S8J2K3B5C6D7E8F"
    consented = datetime(2024, 3, 6, 21, 44, 10, tzinfo=UTC)
    assert delivery.records == (
        CheckoutRecord(
            source="generic",
            external_id="cart-88213",
            customer=Customer(
                phone="+1 (305) 555-0142",
                email="dana.kim@example.net",
                first_name="Dana",
                last_name="Kim",
                address=Address("US", "FL", "33139", "Miami Beach"),
                external_id="4411",
            ),
            total=Decimal("173.45"),
            currency="USD",
            abandoned_at=datetime(2024, 3, 6, 21, 45, tzinfo=UTC),
            items=(
                LineItem("Trail Running Shoes", 1, Decimal("129.95"), "TRS-42"),
                LineItem("Merino Socks", 3, Decimal("14.5")),
            ),
            checkout_url="https://shop.example.net/cart/recover/88213?sig=ab12",
            completed=False,
            consents=(
                Consent(
                    Channel.CALL,
                    True,
                    "call-v3",
                    consented,
                    "checkout-form",
                    "I agree to receive one automated call about my cart at the number above.",
                ),
                Consent(Channel.SMS, False, "sms-v1", consented, "generic"),
            ),
            campaign="spring-recovery",
        ),
    )
    assert all(
        r.abandoned_at.tzinfo is UTC for r in delivery.records if isinstance(r, CheckoutRecord)
    )


def test_generic_order_event() -> None:
    body = (DATA / "generic_order.json").read_bytes()
    (order,) = parse_generic(generic_headers(body), body, SECRET, now=NOW).records
    assert order == OrderRecord(
        source="generic",
        external_id="99120",
        customer=Customer(phone="+13055550142", email="dana.kim@example.net"),
        total=Decimal("173.45"),
        currency="USD",
        created_at=datetime(2024, 3, 7, 9, 2, 33, tzinfo=UTC),
        checkout_external_id="cart-88213",
    )


@pytest.mark.parametrize("skew_s", [-300, 0, 300])
def test_generic_accepts_timestamps_inside_the_window(skew_s: int) -> None:
    body = (DATA / "generic_order.json").read_bytes()
    headers = generic_headers(body, NOW + timedelta(seconds=skew_s))
    assert parse_generic(headers, body, SECRET, now=NOW).topic == "order"


@pytest.mark.parametrize("skew_s", [-301, 301, -86_400])
def test_generic_rejects_stale_timestamps(skew_s: int) -> None:
    body = (DATA / "generic_order.json").read_bytes()
    headers = generic_headers(body, NOW + timedelta(seconds=skew_s))
    with pytest.raises(WebhookRejected) as err:
        parse_generic(headers, body, SECRET, now=NOW)
    assert_rejected(err.value, "stale", 401)


def test_generic_captured_request_cannot_be_replayed_later() -> None:
    body = (DATA / "generic_checkout.json").read_bytes()
    headers = generic_headers(body)
    parse_generic(headers, body, SECRET, now=NOW)
    with pytest.raises(WebhookRejected) as err:
        parse_generic(headers, body, SECRET, now=NOW + timedelta(minutes=10))
    assert err.value.code == "stale"


def test_generic_custom_tolerance() -> None:
    body = (DATA / "generic_order.json").read_bytes()
    headers = generic_headers(body, NOW - timedelta(seconds=60))
    with pytest.raises(WebhookRejected):
        parse_generic(headers, body, SECRET, now=NOW, tolerance_s=30)


def test_generic_signature_covers_the_timestamp() -> None:
    body = (DATA / "generic_order.json").read_bytes()
    headers = generic_headers(body)
    headers["X-Cartline-Timestamp"] = str(int(NOW.timestamp()) + 1)
    with pytest.raises(WebhookRejected) as err:
        parse_generic(headers, body, SECRET, now=NOW)
    assert_rejected(err.value, "bad_signature", 401)


def test_generic_signature_variants() -> None:
    body = (DATA / "generic_order.json").read_bytes()
    good = generic_headers(body)["X-Cartline-Signature"]
    old = generic_headers(body, secret="old-secret")["X-Cartline-Signature"]
    ts = generic_headers(body)["X-Cartline-Timestamp"]
    for signature in (good.upper().replace("V1=", "v1="), f"{old}, {good}", f"{good},v0=abc"):
        headers = {"x-cartline-timestamp": ts, "x-cartline-signature": signature}
        assert parse_generic(headers, body, SECRET, now=NOW).records
    bare = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    for signature in (old, f"v1={bare}", good[3:], "v1=", "v2=" + good[3:]):
        headers = {"X-Cartline-Timestamp": ts, "X-Cartline-Signature": signature}
        with pytest.raises(WebhookRejected) as err:
            parse_generic(headers, body, SECRET, now=NOW)
        assert_rejected(err.value, "bad_signature", 401)


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({}, "missing_signature"),
        ({"X-Cartline-Signature": "v1=00"}, "missing_signature"),
        ({"X-Cartline-Timestamp": "1709761530"}, "missing_signature"),
        ({"X-Cartline-Timestamp": "soon", "X-Cartline-Signature": "v1=00"}, "bad_signature"),
        ({"X-Cartline-Timestamp": "-5", "X-Cartline-Signature": "v1=00"}, "bad_signature"),
    ],
)
def test_generic_missing_or_bad_headers(headers: dict[str, str], code: str) -> None:
    with pytest.raises(WebhookRejected) as err:
        parse_generic(headers, b"{}", SECRET, now=NOW)
    assert_rejected(err.value, code, 401)


def mutate(name: str, change: Callable[[dict[str, Any]], None]) -> bytes:
    payload = load(name)
    change(payload)
    return encode(payload)


@pytest.mark.parametrize(
    ("body", "named"),
    [
        (b"{", "body"),
        (b'[{"id": "e1"}]', "body"),
        (mutate("generic_checkout.json", lambda p: p.pop("id")), "id"),
        (mutate("generic_checkout.json", lambda p: p.update(type="dana.kim@example.net")), "type"),
        (mutate("generic_checkout.json", lambda p: p.update(data=None)), "data"),
        (mutate("generic_checkout.json", lambda p: p["data"].pop("total")), "data.total"),
        (mutate("generic_checkout.json", lambda p: p["data"].update(total="-3")), "data.total"),
        (
            mutate("generic_checkout.json", lambda p: p["data"].update(phone_number="3055550142")),
            "data.phone_number",
        ),
        (
            mutate("generic_checkout.json", lambda p: p["data"].update(phone=3055550142)),
            "data.phone",
        ),
        (
            mutate("generic_checkout.json", lambda p: p["data"].update(currency="+13055550142")),
            "data.currency",
        ),
        (
            mutate(
                "generic_checkout.json", lambda p: p["data"].update(email=["dana.kim@example.net"])
            ),
            "data.email",
        ),
        (
            mutate("generic_checkout.json", lambda p: p["data"]["items"][1].update(quantity="two")),
            "data.items[1].quantity",
        ),
        (
            mutate(
                "generic_checkout.json", lambda p: p["data"].update(abandoned_at="2024-03-06T16:45")
            ),
            "data.abandoned_at",
        ),
        (
            mutate(
                "generic_checkout.json", lambda p: p["data"]["consents"][0].update(channel="fax")
            ),
            "data.consents[0].channel",
        ),
        (
            mutate("generic_checkout.json", lambda p: p["data"]["address"].update(country="USA")),
            "data.address.country",
        ),
        (
            mutate(
                "generic_checkout.json", lambda p: p["data"].update(checkout_url="javascript:x")
            ),
            "data.checkout_url",
        ),
        (mutate("generic_order.json", lambda p: p["data"].pop("created_at")), "data.created_at"),
        (mutate("generic_order.json", lambda p: p.update(type="checkout")), "data"),
    ],
)
def test_generic_malformed_bodies_name_the_field(body: bytes, named: str) -> None:
    with pytest.raises(WebhookRejected) as err:
        parse_generic(generic_headers(body), body, SECRET, now=NOW)
    assert_rejected(err.value, "malformed", 400)
    assert str(err.value).startswith(named)


def test_generic_payload_accepts_one_event_or_a_list() -> None:
    checkout = load("generic_checkout.json")
    order = load("generic_order.json")
    assert len(parse_generic_payload(checkout)) == 1
    records = parse_generic_payload([checkout, order], source="api")
    assert [type(r) for r in records] == [CheckoutRecord, OrderRecord]
    assert {r.source for r in records} == {"api"}
    assert parse_generic_payload([]) == ()


def test_generic_payload_errors_locate_the_event() -> None:
    order = load("generic_order.json")
    bad = load("generic_order.json")
    bad["data"]["total"] = "free"
    with pytest.raises(WebhookRejected) as err:
        parse_generic_payload([order, bad])
    assert str(err.value).startswith("[1].data.total:")
    with pytest.raises(WebhookRejected) as not_event:
        parse_generic_payload([order, "dana.kim@example.net"])
    assert_rejected(not_event.value, "malformed", 400)
    assert str(not_event.value).startswith("[1]")
    for body in ("text", 3, None, [order] * 1001):
        with pytest.raises(WebhookRejected):
            parse_generic_payload(body)
