"""The data subject's register extract through the real UI in Chromium, in Swedish (ADR 0025):
``dina.dataskydd`` asks for the extract of a person with an active SIG case, tries to
withhold an item without a provision (a Swedish error, nothing withheld), withholds it
citing OSL, releases the extract and downloads the PDF, whose text (read back with pypdf)
holds the person's case and not the withheld item.

The case is made through the services first (the SIG journey has its own test).
"""

from __future__ import annotations

import pytest
from django.utils import timezone
from playwright.sync_api import expect
from pypdf import PdfReader

from tests.browser.journey import banner, log_in, sv
from tests.browser.journey import shot as _shot
from tests.conftest import COMMITTED_DB
from tests.workflows.sig.factories import PERSON_NAME, sig_case

pytestmark = COMMITTED_DB

SECRET = "Uppgiftslämnaren vill vara anonym: grannen på våning tre."
PROVISION = "OSL 26 kap. 1 §"


def shot(page, name: str) -> None:
    _shot(page, "extract", name)


@pytest.fixture
def sig_with_secret(demo):
    """An active SIG case with one action whose note the review will withhold."""
    from casework.crypto.keystore import PERSON, load_data_key
    from casework.crypto.records import open_value
    from casework.models import Action
    from casework.services import cases as case_services
    from workflows.sig.models import Status

    case = sig_case(demo, Status.ACTIVE)
    action = case_services.add_action(
        user=demo["anna.social"],
        case=case,
        purpose="Browser test: register extract",
        kind=Action.Kind.FAMILY_SUPPORT,
        status=Action.Status.PLANNED,
        date=timezone.localdate(),
        note=SECRET,
    )
    dek = load_data_key(owner_type=PERSON, owner_id=case.person_id)
    return case, action, open_value(case.person, "personnummer", dek)


def test_data_protection_withholds_an_item_and_releases_the_extract(
    sig_with_secret, page, problems, tmp_path
):
    case, action, personnummer = sig_with_secret
    page.goto("/")
    log_in(page, "dina.dataskydd")
    expect(page.get_by_role("heading", name=sv("Register extracts"), level=1)).to_be_visible()
    page.get_by_label(sv("Personal identity number")).fill(personnummer)
    page.get_by_role("button", name=sv("Put together a register extract")).click()
    expect(page.locator("[data-extract-status]")).to_have_text(sv("Secrecy review"))
    item = page.locator(f'[data-item="casework.action:{action.pk}"]')
    expect(item).to_contain_text(SECRET)
    expect(page.locator("body")).to_contain_text(case.reference)
    shot(page, "review")

    # Without a provision: a Swedish error, nothing withheld.
    item.get_by_role("button", name=sv("Withhold")).click()
    expect(page.locator(".samverkan-banner--error")).to_contain_text("Ange sekretessbestämmelsen")
    expect(page.locator("[data-withheld-list]")).to_have_count(0)

    item = page.locator(f'[data-item="casework.action:{action.pk}"]')
    item.get_by_label(sv("Secrecy provision")).fill(PROVISION)
    item.get_by_role("button", name=sv("Withhold")).click()
    banner(page, sv("The item is withheld."))
    withheld = page.locator(f'[data-withheld="casework.action:{action.pk}"]')
    expect(withheld).to_contain_text(PROVISION)
    shot(page, "withheld")

    page.get_by_role("button", name=sv("Release to the data subject")).click()
    banner(page, sv("The register extract has been released."))
    expect(page.locator("[data-extract-status]")).to_have_text(sv("Released"))
    # The release record keeps the withheld item and its provision.
    expect(page.locator(f'[data-withheld="casework.action:{action.pk}"]')).to_contain_text(
        PROVISION
    )
    shot(page, "released")
    # The link's PDF, fetched in the browser's session (a click would hand it to the
    # browser's download manager, which Chromium reports as an aborted navigation).
    href = page.get_by_role("link", name=sv("Download as PDF")).get_attribute("href")
    response = page.request.get(href)
    assert response.ok and response.headers["content-type"] == "application/pdf"
    path = tmp_path / "registerutdrag.pdf"
    path.write_bytes(response.body())

    text = "\n".join(p.extract_text() for p in PdfReader(path).pages)
    assert case.reference in text
    assert PERSON_NAME in text
    assert "Mål: skolgång." in text  # the plan
    assert SECRET not in text and "anonym" not in text
    assert "1 uppgifter har sekretessprövats och lämnas inte ut, med stöd av" in text
    assert PROVISION in text
    problems.assert_none()
