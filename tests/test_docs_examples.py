"""The guides' code samples, run against real signed deliveries so the docs cannot drift.

docs/receiving.md's verifiers (standardwebhooks, svix, plain HMAC in Python and Node) are fed what
the loopback receiver recorded; docs/publishing.md's samples run in a subprocess (billing's model
would otherwise join this process's metadata) against the same database and Redis, and what they
publish must arrive.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from types import ModuleType

import pytest
from sqlalchemy import text
from standardwebhooks import Webhook

from dispatcher import publish, signing
from portal.extensions import db
from portal.services import subscriptions as subscription_service
from tests.factories import make_subscription, make_tenant

ROOT = Path(__file__).resolve().parent.parent
RECEIVING = ROOT / "docs" / "receiving.md"
PUBLISHING = ROOT / "docs" / "publishing.md"

# The secret that signs receiving.md's example request (quoted in the guide).
EXAMPLE_SECRET = "whsec_FseVypu0q0cYhnZZET4555+Z9/Smc7HpwX2Fi+IjvZA="

INVOICE = {
    "invoice_id": "inv_8JkQ2mVw3R",
    "customer_id": "cus_4Tq9Lm2XaP",
    "amount_due": 12900,
    "currency": "EUR",
    "status": "draft",
    "customer_name": "Café Müller",  # non-ASCII: the body is raw UTF-8, verifiers must cope
}

FENCE = re.compile(r"^```(\w*)(?:[ \t]+title=\"([^\"]*)\")?[ \t]*$")


@dataclass(frozen=True)
class Block:
    """One fenced code block of a guide."""

    lang: str
    title: str | None
    code: str
    gap_before: str  # the text between the previous block and this one


def code_blocks(path: Path) -> list[Block]:
    """The fenced blocks of a Markdown file, in order."""
    blocks: list[Block] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    gap: list[str] = []
    index = 0
    while index < len(lines):
        opening = FENCE.match(lines[index])
        if not opening:
            gap.append(lines[index])
            index += 1
            continue
        end = lines.index("```", index + 1)
        lang, title = opening.groups()
        code = "\n".join(lines[index + 1 : end]) + "\n"
        blocks.append(Block(lang, title, code, "\n".join(gap)))
        gap = []
        index = end + 1
    return blocks


def block(path: Path, title: str) -> Block:
    """The block of `path` with this title."""
    (found,) = [b for b in code_blocks(path) if b.title == title]
    return found


def load_sample(path: Path, title: str, tmp_path: Path, monkeypatch) -> ModuleType:
    """Import a Python sample as a module from its own file, the way a consumer would."""
    name = "hookline_docs_" + re.sub(r"\W", "_", title.removesuffix(".py"))
    file = tmp_path / f"{name}.py"
    file.write_text(block(path, title).code, encoding="utf-8")
    spec = importlib.util.spec_from_file_location(name, file)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, name, module)
    spec.loader.exec_module(module)
    return module


@dataclass(frozen=True)
class Delivered:
    """A request as the endpoint received it, and the secrets valid for it (newest first)."""

    body: bytes
    headers: dict[str, str]
    secrets: tuple[str, ...]


def deliver(receiver, run_worker, *, rotate: bool = False) -> Delivered:
    """Publish an invoice.created to a loopback endpoint and return what arrived."""
    tenant = make_tenant()
    subscription, secret = make_subscription(
        tenant.id, receiver.url("/webhooks/hookline"), events=["invoice.*"]
    )
    secrets = (secret,)
    if rotate:
        new_secret, _ = subscription_service.rotate_secret(tenant.id, subscription.id, 3600)
        db.session.commit()
        secrets = (new_secret, secret)
    publish("invoice.created", INVOICE, tenant_id=tenant.id)
    db.session.commit()
    run_worker()
    (got,) = receiver.wait_for(1)
    return Delivered(got.body, got.headers, secrets)


def resigned(delivered: Delivered, *, age: int) -> Delivered:
    """The same delivery, validly signed by every secret but `age` seconds ago (a replay)."""
    timestamp = int(time.time()) - age
    msg_id = delivered.headers["webhook-id"]
    signature = signing.signature_header(
        [signing.secret_key_bytes(s) for s in delivered.secrets], msg_id, timestamp, delivered.body
    )
    headers = dict(delivered.headers)
    for name in ("webhook-timestamp", "X-Webhook-Timestamp"):
        headers[name] = str(timestamp)
    for name in ("webhook-signature", "X-Webhook-Signature"):
        headers[name] = signature
    return replace(delivered, headers=headers)


def tampered(delivered: Delivered) -> Delivered:
    """The same delivery with the amount changed after signing."""
    body = delivered.body.replace(b'"amount_due":12900', b'"amount_due":1')
    assert body != delivered.body
    return replace(delivered, body=body)


def test_every_code_sample_in_the_guides_is_run_by_these_tests():
    samples = {
        (path.name, b.lang, b.title)
        for path in (RECEIVING, PUBLISHING)
        for b in code_blocks(path)
        if b.lang in {"python", "js", "http"}
    }
    assert samples == {
        ("receiving.md", "http", "example request"),
        ("receiving.md", "python", "receiver.py"),
        ("receiving.md", "python", "verify_svix.py"),
        ("receiving.md", "python", "verify_hmac.py"),
        ("receiving.md", "python", "verify_ed25519.py"),  # tests/test_docs_ed25519.py
        ("receiving.md", "js", "verifyWebhook.js"),
        ("publishing.md", "python", "quick start"),
        ("publishing.md", "python", "handling a refusal"),
        ("publishing.md", "python", "idempotency"),
        ("publishing.md", "python", "custom event type"),
        ("publishing.md", "python", "billing/models.py"),
        ("publishing.md", "python", "billing/invoices.py"),
        ("publishing.md", "python", "billing caller"),
    }


def test_example_request_in_receiving_guide_matches_a_real_delivery(app, receiver, run_worker):
    real = deliver(receiver, run_worker)
    head, _, body_text = block(RECEIVING, "example request").code.partition("\n\n")
    request_line, *header_lines = head.splitlines()
    example = dict(line.split(": ", 1) for line in header_lines)
    body = body_text.strip().encode()

    assert request_line == "POST /webhooks/hookline HTTP/1.1"
    assert {name.lower() for name in example} == {name.lower() for name in real.headers}
    for name in ("Content-Type", "User-Agent", "X-Webhook-Event-Type", "X-Webhook-Attempt"):
        assert example[name] == real.headers[name]
    assert list(json.loads(body)) == list(json.loads(real.body))
    assert body == json.dumps(json.loads(body), separators=(",", ":"), ensure_ascii=False).encode()
    assert int(example["Content-Length"]) == len(body)
    # The example is genuinely signed with the secret the guide quotes.
    assert EXAMPLE_SECRET in RECEIVING.read_text(encoding="utf-8")
    key = signing.secret_key_bytes(EXAMPLE_SECRET)
    expected = signing.sign(key, example["webhook-id"], int(example["webhook-timestamp"]), body)
    assert example["webhook-signature"] == expected == example["X-Webhook-Signature"]
    assert example["webhook-id"] == example["X-Webhook-Event-Id"] == json.loads(body)["id"]


def test_standardwebhooks_receiver_sample_accepts_each_event_once(
    app, receiver, run_worker, tmp_path, monkeypatch
):
    delivered = deliver(receiver, run_worker)
    monkeypatch.setenv("HOOKLINE_WEBHOOK_SECRET", delivered.secrets[0])
    sample = load_sample(RECEIVING, "receiver.py", tmp_path, monkeypatch)
    client = sample.app.test_client()

    def post(request: Delivered) -> int:
        headers = {
            k: v for k, v in request.headers.items() if k.lower() not in {"host", "content-length"}
        }
        return client.post("/webhooks/hookline", data=request.body, headers=headers).status_code

    assert post(delivered) == 204
    assert sample.inbox == [json.loads(delivered.body)]
    assert post(delivered) == 204  # a retry of the same event
    assert len(sample.inbox) == 1
    assert post(tampered(delivered)) == 400
    assert post(resigned(delivered, age=600)) == 400
    assert len(sample.inbox) == 1


def test_svix_sample_verifies_a_real_delivery_and_rejects_a_tampered_one(
    app, receiver, run_worker, tmp_path, monkeypatch
):
    from svix.webhooks import WebhookVerificationError

    delivered = deliver(receiver, run_worker)
    sample = load_sample(RECEIVING, "verify_svix.py", tmp_path, monkeypatch)
    (secret,) = delivered.secrets

    event = sample.verify_with_svix(delivered.body, delivered.headers, secret)

    assert event["data"] == INVOICE
    with pytest.raises(WebhookVerificationError):
        sample.verify_with_svix(tampered(delivered).body, delivered.headers, secret)


def test_plain_python_sample_verifies_a_real_delivery(
    app, receiver, run_worker, tmp_path, monkeypatch
):
    delivered = deliver(receiver, run_worker)
    sample = load_sample(RECEIVING, "verify_hmac.py", tmp_path, monkeypatch)

    event = sample.verify_webhook(delivered.body, delivered.headers, delivered.secrets[0])

    assert event == json.loads(delivered.body)
    assert event["data"]["customer_name"] == "Café Müller"


def test_plain_python_sample_accepts_old_and_new_secret_during_rotation_grace(
    app, receiver, run_worker, tmp_path, monkeypatch
):
    delivered = deliver(receiver, run_worker, rotate=True)
    sample = load_sample(RECEIVING, "verify_hmac.py", tmp_path, monkeypatch)

    assert len(delivered.headers["webhook-signature"].split(" ")) == 2
    for secret in delivered.secrets:
        assert sample.verify_webhook(delivered.body, delivered.headers, secret)["data"] == INVOICE


def test_plain_python_sample_rejects_tampered_replayed_and_foreign_requests(
    app, receiver, run_worker, tmp_path, monkeypatch
):
    delivered = deliver(receiver, run_worker)
    sample = load_sample(RECEIVING, "verify_hmac.py", tmp_path, monkeypatch)
    secret = delivered.secrets[0]
    replayed = resigned(delivered, age=600)

    with pytest.raises(sample.WebhookVerificationError, match="no matching signature"):
        sample.verify_webhook(tampered(delivered).body, delivered.headers, secret)
    with pytest.raises(sample.WebhookVerificationError, match="tolerance"):
        sample.verify_webhook(replayed.body, replayed.headers, secret)
    # Only the age was wrong: a wider tolerance accepts the replay.
    assert sample.verify_webhook(replayed.body, replayed.headers, secret, tolerance=3600)
    with pytest.raises(sample.WebhookVerificationError, match="no matching signature"):
        sample.verify_webhook(delivered.body, delivered.headers, signing.generate_secret())
    with pytest.raises(sample.WebhookVerificationError, match="missing"):
        sample.verify_webhook(delivered.body, {"webhook-id": "evt_1"}, secret)


NODE_HARNESS = """
const fs = require("node:fs");
const path = require("node:path");
const { verifyWebhook } = require(path.join(__dirname, "verifyWebhook.js"));

const results = {};
for (const c of JSON.parse(fs.readFileSync(process.argv[2], "utf8"))) {
  const body = fs.readFileSync(c.bodyFile); // a Buffer, like express.raw() gives
  try {
    results[c.name] = { valid: true, event: verifyWebhook(body, c.headers, c.secret) };
  } catch (err) {
    results[c.name] = { valid: false, error: `${err.constructor.name}: ${err.message}` };
  }
}
console.log(JSON.stringify(results));
"""


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_node_sample_verifies_recorded_deliveries_and_rejects_bad_ones(
    app, receiver, run_worker, tmp_path
):
    rotated = deliver(receiver, run_worker, rotate=True)
    new_secret, old_secret = rotated.secrets
    cases = {
        "new secret": (rotated, new_secret),
        "old secret in grace": (rotated, old_secret),
        "tampered": (tampered(rotated), new_secret),
        "replayed": (resigned(rotated, age=600), new_secret),
        "foreign secret": (rotated, signing.generate_secret()),
    }
    (tmp_path / "verifyWebhook.js").write_text(block(RECEIVING, "verifyWebhook.js").code)
    (tmp_path / "harness.js").write_text(NODE_HARNESS)
    recorded = []
    for number, (name, (request, secret)) in enumerate(cases.items()):
        body_file = tmp_path / f"body-{number}.bin"
        body_file.write_bytes(request.body)
        recorded.append(
            {"name": name, "bodyFile": str(body_file), "headers": request.headers, "secret": secret}
        )
    (tmp_path / "cases.json").write_text(json.dumps(recorded))

    run = subprocess.run(
        ["node", str(tmp_path / "harness.js"), str(tmp_path / "cases.json")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert run.returncode == 0, run.stderr
    results = json.loads(run.stdout)
    for name in ("new secret", "old secret in grace"):
        assert results[name]["valid"], results[name]
        assert results[name]["event"] == json.loads(rotated.body)
    assert results["tampered"]["error"] == "WebhookVerificationError: no matching signature"
    assert "tolerance" in results["replayed"]["error"]
    assert results["foreign secret"]["error"] == "WebhookVerificationError: no matching signature"


# Runs publishing.md's samples in a fresh process: its files become a package on sys.path, the
# tables its models add are created (and reported, so the test can drop them), then its snippets
# run in order in one namespace, each one's printed output recorded.
PUBLISHING_DRIVER = """
import contextlib, io, json, sys, types
from pathlib import Path

work = Path(sys.argv[1])
spec = json.loads((work / "spec.json").read_text())
sys.path.insert(0, str(work))

from portal import create_app
from portal.extensions import db

app = create_app()
with app.app_context():
    known = set(db.metadata.tables)
    for module in spec["modules"]:
        __import__(module)
    added = [t for t in db.metadata.sorted_tables if t.name not in known]
    (work / "tables.json").write_text(json.dumps([t.name for t in added]))
    db.metadata.create_all(db.engine, tables=added)
    namespace = {"tenant": types.SimpleNamespace(id=spec["tenant_id"])}
    outputs = {}
    for snippet in spec["snippets"]:
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            exec(compile(snippet["code"], snippet["title"], "exec"), namespace)
        outputs[snippet["title"]] = printed.getvalue()
    db.session.remove()
(work / "outputs.json").write_text(json.dumps(outputs))
"""


def _is_output_of(sample: Block, previous: Block | None) -> bool:
    """A text block directly below a Python snippet shows what that snippet prints."""
    return (
        sample.lang == "text"
        and previous is not None
        and previous.lang == "python"
        and not sample.gap_before.strip()
    )


def _publishing_samples(work: Path) -> tuple[list[str], list[dict], dict[str, str]]:
    """Write the guide's files under `work`; return their modules, the snippets in order, and
    the output the guide shows after a snippet (a text block right below it)."""
    modules: list[str] = []
    snippets: list[dict] = []
    expected: dict[str, str] = {}
    previous: Block | None = None
    for sample in code_blocks(PUBLISHING):
        if sample.lang == "python" and sample.title.endswith(".py"):
            file = work / sample.title
            file.parent.mkdir(parents=True, exist_ok=True)
            (file.parent / "__init__.py").touch()
            file.write_text(sample.code, encoding="utf-8")
            modules.append(sample.title.removesuffix(".py").replace("/", "."))
        elif sample.lang == "python":
            snippets.append({"title": sample.title, "code": sample.code})
        elif _is_output_of(sample, previous):
            expected[previous.title] = sample.code
        previous = sample
    return modules, snippets, expected


def test_publishing_guide_samples_run_and_their_events_arrive_signed(
    app, receiver, run_worker, tmp_path
):
    tenant_id = make_tenant().id
    _, secret = make_subscription(tenant_id, receiver.url("/everything"), events=["*"])
    db.session.remove()  # hold no transaction (and no SQLite lock) while the samples run
    modules, snippets, expected_output = _publishing_samples(tmp_path)
    (tmp_path / "spec.json").write_text(
        json.dumps({"tenant_id": tenant_id, "modules": modules, "snippets": snippets})
    )
    (tmp_path / "driver.py").write_text(PUBLISHING_DRIVER)
    tables_file = tmp_path / "tables.json"

    try:
        run = subprocess.run(
            [sys.executable, str(tmp_path / "driver.py"), str(tmp_path)],
            cwd=ROOT,
            env=dict(os.environ),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert run.returncode == 0, run.stderr
        outputs = json.loads((tmp_path / "outputs.json").read_text())
        assert set(expected_output) == {"handling a refusal", "billing caller"}
        for title, shown in expected_output.items():
            assert outputs[title] == shown, title

        run_worker()
        got = receiver.received()
        for request in got:
            Webhook(secret).verify(request.body, request.headers)
        assert sorted(r.json["type"] for r in got) == [
            "invoice.created",  # quick start
            "invoice.created",  # billing's invoice
            "payment.succeeded",  # once, though announced twice with one idempotency key
            "shipment.delivered",  # the custom type
        ]
        (invoice_id, amount_due) = db.session.execute(
            text("SELECT id, amount_due FROM billing_invoices WHERE tenant_id = :tenant"),
            {"tenant": tenant_id},
        ).one()  # the refused invoice was rolled back with its event
        (billing_event,) = [r.json for r in got if r.json["data"].get("invoice_id") == invoice_id]
        assert billing_event["data"]["amount_due"] == amount_due == 12900
        assert billing_event["tenant_id"] == tenant_id
    finally:
        db.session.rollback()
        added = json.loads(tables_file.read_text()) if tables_file.exists() else []
        for table in reversed(added):
            db.session.execute(text(f'DROP TABLE IF EXISTS "{table}"'))
        db.session.commit()
