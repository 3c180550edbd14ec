"""Data filters: every operator selects what it should and leaves out what it should, over a
real loopback receiver; bad filters are refused naming the part at fault; publish compiles a
filter once per subscription."""

from __future__ import annotations

import pytest

from dispatcher import filters, publish
from dispatcher.filters import FilterError, compile_filter
from portal.extensions import db
from portal.services import ServiceError
from portal.services import subscriptions as service
from portal.services.event_types import create_custom_type
from tests.factories import make_subscription, make_tenant

ORDER = {"amount": 250, "currency": "EUR", "customer": {"country": "DE", "tags": ["vip"]}}

# (filter, data it selects, data it leaves out)
OPERATORS = {
    "equality": ({"currency": "EUR"}, ORDER, {**ORDER, "currency": "USD"}),
    "$eq object": ({"customer": {"$eq": {"country": "DE", "tags": ["vip"]}}}, ORDER, {}),
    "$neq": ({"currency": {"$neq": "USD"}}, ORDER, {**ORDER, "currency": "USD"}),
    "$in": ({"customer.country": {"$in": ["DE", "FR"]}}, ORDER, {"customer": {"country": "US"}}),
    "$nin": ({"customer.country": {"$nin": ["US"]}}, ORDER, {"customer": {"country": "US"}}),
    "$gt": ({"amount": {"$gt": 100}}, ORDER, {"amount": 100}),
    "$gte": ({"amount": {"$gte": 250}}, ORDER, {"amount": 249.5}),
    "$lt": ({"amount": {"$lt": 300}}, ORDER, {"amount": 300}),
    "$lte": ({"amount": {"$lte": 250.0}}, ORDER, {"amount": "1"}),
    "$exists true": ({"customer.tags": {"$exists": True}}, ORDER, {"customer": {}}),
    "$exists false": ({"refund": {"$exists": False}}, ORDER, {"refund": None}),
    "$startsWith": ({"customer.country": {"$startsWith": "D"}}, ORDER, {"customer": "DE"}),
    "list index": ({"customer.tags.0": "vip"}, ORDER, {"customer": {"tags": []}}),
    "$and": ({"$and": [{"amount": {"$gt": 1}}, {"currency": "EUR"}]}, ORDER, {"amount": 5}),
    "$or": ({"$or": [{"currency": "USD"}, {"amount": {"$gt": 200}}]}, ORDER, {"amount": 5}),
    "$not": ({"$not": {"currency": "USD"}}, ORDER, {"currency": "USD"}),
    "two operators": ({"amount": {"$gte": 100, "$lt": 1000}}, ORDER, {"amount": 1000}),
}


@pytest.mark.parametrize("case", OPERATORS, ids=list(OPERATORS))
def test_operator_selects_and_leaves_out_over_loopback(app, receiver, run_worker, case):
    spec, selected, left_out = OPERATORS[case]
    tenant = make_tenant()
    create_custom_type(tenant.id, "order.placed")
    make_subscription(tenant.id, receiver.url("/filtered"), events=["order.*"], data_filter=spec)
    make_subscription(tenant.id, receiver.url("/all"), events=["order.*"])
    wanted = publish("order.placed", selected, tenant_id=tenant.id)
    publish("order.placed", left_out, tenant_id=tenant.id)
    db.session.commit()
    run_worker()

    receiver.wait_for(2, "/all")
    assert [r.json["id"] for r in receiver.received("/filtered")] == [wanted.id]


def test_true_is_not_one_and_numbers_compare_by_value():
    assert compile_filter({"n": 1})({"n": 1.0})
    assert not compile_filter({"n": 1})({"n": True})
    assert not compile_filter({"flag": True})({"flag": 1})
    assert compile_filter({})({"anything": 1})


@pytest.mark.parametrize(
    ("spec", "where"),
    [
        ({"amount": {"$gte": "100"}}, "amount.$gte"),
        ({"$or": [{"a": 1}, {"b": {"$between": 1}}]}, "$or[1].b.$between"),
        ({"$or": []}, "$or"),
        ({"a": {"$in": [{"x": 1}]}}, "a.$in"),
        ({"a": {"$exists": "yes"}}, "a.$exists"),
        ({"a..b": 1}, "a..b"),
        ({"$nor": [{"a": 1}]}, "$nor"),
        ({"$not": {"$not": {"$not": {"$not": {"$not": {"a": 1}}}}}}, "$not.$not.$not.$not"),
    ],
)
def test_a_bad_filter_names_the_part_at_fault(spec, where):
    with pytest.raises(FilterError) as caught:
        compile_filter(spec)
    assert caught.value.where.startswith(where)


def test_filters_are_bounded_in_size_and_conditions():
    with pytest.raises(FilterError, match="bytes"):
        compile_filter({"a": "x" * filters.MAX_FILTER_BYTES})
    many = {f"f{n}": n for n in range(filters.MAX_CONDITIONS + 1)}
    with pytest.raises(FilterError, match="conditions"):
        compile_filter(many)


def test_saving_a_bad_filter_is_refused_with_its_location(app):
    tenant = make_tenant()
    with pytest.raises(ServiceError) as caught:
        service.create(
            tenant.id,
            url="http://127.0.0.1:9/x",
            events=["*"],
            data_filter={"$or": [{"a": 1}, {"amount": {"$gt": "big"}}]},
        )
    assert caught.value.field == "data_filter"
    assert caught.value.message == "data_filter.$or[1].amount.$gt: expected a number"


def test_try_filter_answers_without_saving(app):
    assert service.try_data_filter({"amount": {"$gt": 1}}, {"amount": 2}) is True
    assert service.try_data_filter({"amount": {"$gt": 1}}, {"amount": 0}) is False
    with pytest.raises(ServiceError):
        service.try_data_filter({"amount": {"$gt": 1}}, ["not", "an", "object"])


def test_publish_compiles_each_filter_once_and_again_after_an_edit(app, monkeypatch):
    tenant = make_tenant()
    create_custom_type(tenant.id, "order.placed")
    sub, _ = make_subscription(
        tenant.id, "http://127.0.0.1:9/x", events=["order.*"], data_filter={"amount": 1}
    )
    compiled = []
    real = filters.compile_filter
    monkeypatch.setattr(filters, "compile_filter", lambda spec: compiled.append(spec) or real(spec))
    filters._compiled.clear()
    for _ in range(5):
        publish("order.placed", {"amount": 1}, tenant_id=tenant.id)
    assert compiled == [{"amount": 1}]
    service.update(tenant.id, sub.id, {"data_filter": {"amount": True}})
    db.session.commit()
    publish("order.placed", {"amount": 1}, tenant_id=tenant.id)
    assert compiled == [{"amount": 1}, {"amount": True}]
