import pytest
from django.core.management import call_command
from django.test import Client
from tests.casework.test_erased_person_pages import seeded, _erase  # noqa


@pytest.mark.django_db(databases=["default", "keystore"])
def test_dbg(seeded):
    from workflows.sspf import SspfCase, OperationalMeeting
    from workflows.sspf_demo import SLOTS, person_id
    from workflows.defector import DefectorCase
    from workflows.defector_demo import SLOTS as DS, person_id as dpid
    case = SspfCase.objects.get(person_id=person_id(next(s for s in SLOTS if s.key == "sspf-plan")))
    d = DefectorCase.objects.get(person_id=dpid(next(s for s in DS if s.key == "review")))
    _erase(case.person_id); _erase(d.person_id)
    c = Client(raise_request_exception=False); c.force_login(seeded["sara.samordnare"])
    for url in [f"/arenden/fall/{case.pk}/"] + [f"/arenden/sspf/moten/{m.pk}/" for m in OperationalMeeting.objects.filter(items__case=case)]:
        print(url, c.get(url).status_code)
    c.force_login(seeded["alex.avhopp"])
    print(c.get(f"/arenden/fall/{d.pk}/").status_code)
