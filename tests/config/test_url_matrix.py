"""Every URL the app serves x every demo role and anonymous, GET and POST: no 500 and no
person data (or case number) outside what ``casework.policy`` grants the role.

How it works
------------
* ``url_patterns()`` walks Django's URL resolver recursively: our own patterns
  (``config/urls.py``), the viewflow site with its apps and flow viewsets (hundreds of
  node URLs) and the admin's.
* Each pattern is classified by the table below — ``BY_ROUTE`` (the full route),
  ``BY_NAME`` (the URL name) or ``BY_VIEW`` (the view's dotted path: the families,
  e.g. viewflow's ``DetailTaskView`` for every node of every flow) — which says how to fill
  its path parameters. A pattern without parameters needs no entry. **A pattern with
  parameters that the table cannot classify fails the test** (``test_every_url_is_classified``)
  with a message saying where to add it.
* The fillers take objects from the seeded data (``url_matrix_seed.py``: the demo's four
  programmes and a few factory cases; one person erased), per role: for each kind of object
  one the role may see and one it may not (per ``casework.policy``), where both exist.
* ``test_role`` requests every filled URL as the role, GET and POST (a small body with
  dangerous generic fields such as ``select_all=1``; CSRF checks off, as the test client
  does), each inside a transaction that is rolled back, with the client's cookies restored
  (a logout or a language switch does not carry over). It collects every problem — an
  exception (a 500), a 500 answer, a string of ``Seed.forbidden(user)`` in the body or the
  ``Location`` header — into one assertion message.

Known leaks
-----------
``KNOWN_LEAKS`` lists problems that have an open issue, keyed by (role, URL name, method)
with the issue. The test tolerates them, and fails when one no longer happens, so the list
shrinks as the fixes land: delete the entry then. Today it is empty: every leak issue 14
found is fixed.

The seed is committed once for the module (``seeded``, ~20 s: ``seed_demo`` with every
programme's demo cases) and flushed at its end; the tests are ordinary (rolled back) tests
on top of it. Independent access-log events of a request go out on the ``audit``
connection and commit, which is why the users are committed.
"""

from __future__ import annotations

import html
import logging
import os
import re
import time
import zlib
from collections import defaultdict
from dataclasses import dataclass
from http.cookies import SimpleCookie

import pytest
from django.db import connections, transaction
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, resolve
from django.urls.resolvers import RegexPattern, RoutePattern

from casework import policy
from tests.conftest import DEMO_USERS, committed_seed

from . import url_matrix_seed

DATABASES = ["default", "keystore", "audit"]
ROLES = ("anonymous", *DEMO_USERS)
# The POST body: the generic fields of bulk and admin actions that widen a selection.
POST_BODY = {
    "select_all": "1",
    "select_across": "1",
    "action": "delete_selected",
    "index": "0",
    "_selected_action": "1",
    "_action": "complete",
    "version": "1",
    "next": "/",
}


# --- Walking the resolver ------------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    route: str  # the full route, e.g. "arenden/flows/sig/<int:process_pk>/screen/<int:task_pk>/"
    name: str  # the full URL name with namespaces ("" when unnamed)
    view: str  # the view's dotted path (class, or function)
    regex: bool  # a regular-expression pattern somewhere on the way
    params: tuple[str, ...]
    posts: bool  # False: a class-based view without ``post`` (Django answers 405 to a POST)

    def build(self, values: dict[str, str]) -> str:
        path = self.route
        for param in self.params:
            path = re.sub(r"<(?:[^>:]+:)?" + param + ">", str(values[param]), path)
        return "/" + path


_PARAM = re.compile(r"<(?:[^>:]+:)?([^>]+)>")


def _view_path(callback) -> str:
    target = getattr(callback, "view_class", None) or callback
    return f"{target.__module__}.{target.__qualname__}"


def url_patterns() -> list[Route]:
    routes: list[Route] = []

    def walk(patterns, prefix: str, namespace: str, regex: bool) -> None:
        for pattern in patterns:
            text = str(pattern.pattern)
            is_regex = regex or isinstance(pattern.pattern, RegexPattern)
            if isinstance(pattern, URLResolver):
                ns = namespace
                if pattern.namespace:
                    ns = f"{namespace}:{pattern.namespace}" if namespace else pattern.namespace
                walk(pattern.url_patterns, prefix + text, ns, is_regex)
            else:
                assert isinstance(pattern, URLPattern)
                assert isinstance(pattern.pattern, RoutePattern | RegexPattern)
                name = f"{namespace}:{pattern.name}" if namespace and pattern.name else ""
                name = name or pattern.name or ""
                full = prefix + text
                params = tuple(
                    _PARAM.findall(full)
                    if not is_regex
                    else re.findall(r"\(\?P<([^>]+)>", full) + _PARAM.findall(full)
                )
                view_class = getattr(pattern.callback, "view_class", None)
                posts = view_class is None or hasattr(view_class, "post")
                routes.append(
                    Route(full, name, _view_path(pattern.callback), is_regex, params, posts)
                )

    walk(get_resolver().url_patterns, "", "", False)
    return routes


# --- Filling path parameters ---------------------------------------------------------------------
#
# A filler takes (the seed's objects, the route, the role's user or None) and gives a list of
# (URL, what it is). Per object kind: one the role may see and one it may not, where both exist.


class Objects:
    """The seeded objects the fillers choose from, with the policy's answers per user."""

    def __init__(self, seed: url_matrix_seed.Seed):
        from viewflow.workflow.models import Task

        from casework.statistics import registry
        from casework.views import CaseworkApp
        from config.urls import site
        from workflows.gvi import models as gvi
        from workflows.sspf import models as sspf

        self.seed = seed
        (app,) = [vs for vs in site.viewsets if isinstance(vs, CaseworkApp)]
        # A flow's URL namespace ("arenden:flows:sig"), from its chart's URL.
        self.flows = {
            resolve(flow.instance.reverse("chart")).namespace: flow for flow in app.flow_classes
        }
        namespace_of = {flow: namespace for namespace, flow in self.flows.items()}
        self.processes: dict[str, list] = {}
        for namespace, flow_class in self.flows.items():
            self.processes[namespace] = list(
                flow_class.process_class.objects.filter(flow_class=flow_class).order_by("pk")
            )
        subject = {}
        for processes in self.processes.values():
            for process in processes:
                subject[process.pk] = getattr(process, "case_id", None) or "gvi"
        self.subject = subject
        self.tasks = defaultdict(list)  # (flow namespace, node name) → tasks
        for task in Task.objects.order_by("pk"):
            node = task.flow_task
            self.tasks[(namespace_of[node.flow_class], node.name)].append(task)
        self.cases = seed.cases
        self.groups = list(gvi.Group.objects.order_by("pk"))
        self.members = list(gvi.GroupMember.objects.order_by("pk"))
        self.call_ins = list(gvi.CallIn.objects.order_by("pk"))
        self.notifications = list(gvi.CustomNotification.objects.order_by("pk"))
        self.meetings = list(sspf.OperationalMeeting.objects.order_by("pk"))
        self.programmes = sorted(registry.programmes())
        self._visible_cases: dict[str, frozenset] = {}

    def visible_cases(self, user) -> frozenset:
        key = user.username if user else ""
        if key not in self._visible_cases:
            self._visible_cases[key] = frozenset(self.seed.case_grants(user)[2])
        return self._visible_cases[key]

    def sees_subject(self, user, subject) -> bool:
        if subject == "gvi":
            return bool(user and policy.gvi_access(user))
        return subject in self.visible_cases(user)

    def pick(self, user, items, subject_of) -> list:
        """One item the user may see and one it may not (the first of each), if any."""
        seen, unseen = None, None
        for item in items:
            if self.sees_subject(user, subject_of(item)):
                seen = seen or item
            else:
                unseen = unseen or item
            if seen and unseen:
                break
        return [item for item in (seen, unseen) if item is not None]


def _flow_and_node(route: Route) -> tuple[str, str]:
    namespace, node, _view = route.name.rsplit(":", 2)
    return namespace, node


def fill_task(objects: Objects, route: Route, user):
    """A viewflow task URL of a flow node: tasks of that node (one the user's policy shows,
    one it does not); a node without tasks in the seed gets a task of another node of the
    same flow (viewflow must not serve it)."""
    namespace, node = _flow_and_node(route)
    tasks = objects.tasks.get((namespace, node))
    note = "task"
    if not tasks:
        if not _shared(route, user):
            return []
        tasks = [t for (ns, _n), ts in objects.tasks.items() if ns == namespace for t in ts][:1]
        note = "task of another node"
    chosen = objects.pick(user, tasks, lambda t: objects.subject[t.process_id])
    if route.view in SHARED_VIEWS and not os.environ.get("URL_MATRIX_FULL"):
        # A shared page: one task, the one the role may see or the other by turns.
        chosen = chosen[zlib.crc32(route.route.encode()) // STRIDE % len(chosen) :][:1]
    return [
        (route.build({"process_pk": t.process_id, "task_pk": t.pk}), f"{note} {t.pk}")
        for t in chosen
    ]


def fill_process(objects: Objects, route: Route, user):
    namespace = route.name.rsplit(":", 1)[0]
    chosen = objects.pick(user, objects.processes[namespace], lambda p: objects.subject[p.pk])
    return [(route.build({"process_pk": p.pk}), f"process {p.pk}") for p in chosen]


def fill_case(objects: Objects, route: Route, user):
    """Per programme one case the user may open and one not; the erased person's case and a
    defector case handed over to the police region, always."""
    chosen = []
    for programme in {c.programme for c in objects.cases}:
        chosen += objects.pick(
            user, [c for c in objects.cases if c.programme == programme], lambda c: c.pk
        )
    chosen += [objects.seed.erased_case, objects.seed.handed_over_case]
    unique = {c.pk: c for c in chosen}
    return [(route.build({"case_id": c.pk}), f"case {c.reference}") for c in unique.values()]


def _gvi(attribute: str, param: str):
    def fill(objects: Objects, route: Route, user):
        items = getattr(objects, attribute)[:1] + getattr(objects, attribute)[-1:]
        unique = {item.pk: item for item in items}
        return [(route.build({param: pk}), f"{attribute} {pk}") for pk in unique]

    return fill


def fill_meeting(objects: Objects, route: Route, user):
    return [(route.build({"meeting_id": m.pk}), f"meeting {m.pk}") for m in objects.meetings[:2]]


def fill_access_event(objects: Objects, route: Route, user):
    """The newest event about a person, and one denial."""
    from audit.models import AccessEvent

    events = [
        AccessEvent.objects.filter(person_id__isnull=False).order_by("-pk").first(),
        AccessEvent.objects.filter(action=AccessEvent.Action.ACCESS_DENIED).order_by("-pk").first(),
    ]
    return [(route.build({"pk": e.pk}), f"event {e.pk}") for e in events if e is not None]


def fill_break_glass(objects: Objects, route: Route, user):
    """The seed's break-the-glass access (the auditor's review page), and one that does not
    exist."""
    from casework.models import BreakGlassAccess

    accesses = [str(pk) for pk in BreakGlassAccess.objects.values_list("pk", flat=True)[:1]]
    accesses.append("00000000-0000-0000-0000-000000000000")
    return [(route.build({"access_id": pk}), f"break-the-glass {pk}") for pk in accesses]


def fill_statistics_csv(objects: Objects, route: Route, user):
    return [
        (route.build({"programme": p, "table": "overview"}), f"{p} overview")
        for p in objects.programmes
    ] + [(route.build({"programme": "sig", "table": "finns-inte"}), "no such table")]


def _admin_model(route: Route):
    from django.apps import apps

    match = re.match(r"admin/([a-z_]+)/([a-z_]+)/", route.route)
    return apps.get_model(match[1], match[2])


def fill_admin_object(objects: Objects, route: Route, user):
    """An admin object page: the first and last object of the route's model."""
    model = _admin_model(route)
    pks = list(model.objects.order_by("pk").values_list("pk", flat=True))
    param = route.params[0]
    return [(route.build({param: pk}), f"{model._meta.label} {pk}") for pk in {*pks[:1], *pks[-1:]}]


def fill_admin_shortcut(objects: Objects, route: Route, user):
    from django.contrib.contenttypes.models import ContentType

    from casework.models import Case, Person

    case = objects.cases[0]
    return [
        (
            route.build(
                {
                    "content_type_id": ContentType.objects.get_for_model(Case).pk,
                    "object_id": case.pk,
                }
            ),
            "a case",
        ),
        (
            route.build(
                {
                    "content_type_id": ContentType.objects.get_for_model(Person).pk,
                    "object_id": case.person_id,
                }
            ),
            "a person",
        ),
    ]


def fill_task_manage(objects: Objects, route: Route, user, param: str = "task_pk"):
    """The coordinators' page of one open task: one task the role's policy shows, one not."""
    tasks = [t for ts in objects.tasks.values() for t in ts]
    chosen = objects.pick(user, tasks, lambda t: objects.subject[t.process_id])
    return [(route.build({param: t.pk}), f"task {t.pk}") for t in chosen]


def fill_api_task(objects: Objects, route: Route, user):
    """An API operation on one open task (``task_id``): as ``fill_task_manage``."""
    return fill_task_manage(objects, route, user, param="task_id")


def fill_password_set(objects: Objects, route: Route, user):
    """The set-password link: a valid one for a case worker's account, and a forged one."""
    from urllib.parse import urlsplit

    from django.utils.encoding import force_bytes
    from django.utils.http import urlsafe_base64_encode

    from casework.models import User
    from casework.services.password_links import set_password_link

    account = User.objects.get(username="anna.social")
    uid = urlsafe_base64_encode(force_bytes(account.pk))
    return [
        (urlsplit(set_password_link(account)).path, "a valid link"),
        (route.build({"uidb64": uid, "token": "forged-token"}), "a forged link"),
    ]


def fill_extract(objects: Objects, route: Route, user):
    """A register extract (ADR 0025): one of the role's organisation and one of another,
    the released one for a download."""
    from casework.models import ExtractRequest

    extracts = list(ExtractRequest.objects.order_by("-status", "requested_at"))
    if route.name == "registerutdrag:download":
        extracts = [e for e in extracts if e.status == ExtractRequest.Status.RELEASED] + [
            e for e in extracts if e.status != ExtractRequest.Status.RELEASED
        ]
    reach = [e for e in extracts if user is not None and policy.extract_in_reach(user, e)]
    other = [e for e in extracts if e not in reach]
    return [
        (route.build({"pk": e.pk, "format": "pdf"}), f"extract {e.pk}")
        for e in reach[:1] + other[:1]
    ]


def literal(*paths: str):
    """A regular-expression pattern: the given paths."""

    def fill(objects, route, user):
        return [(path, "literal") for path in paths]

    return fill


VIEWFLOW = "viewflow.workflow.flow.views"
# The families: every pattern served by one of these views (whatever its flow and node).
BY_VIEW = {
    # viewflow's task pages of every node of every flow (index, detail, assign, unassign,
    # undo, revive, cancel): process_pk and task_pk from the node's own tasks.
    **dict.fromkeys(
        [
            f"{VIEWFLOW}.detail.IndexTaskView",
            f"{VIEWFLOW}.detail.UserIndexTaskView",
            f"{VIEWFLOW}.detail.DetailTaskView",
            f"{VIEWFLOW}.actions.AssignTaskView",
            f"{VIEWFLOW}.actions.UnassignTaskView",
            f"{VIEWFLOW}.actions.UndoTaskView",
            f"{VIEWFLOW}.actions.ReviveTaskView",
            f"{VIEWFLOW}.actions.CancelTaskView",
            # Samverkan's guarded task pages (workflows/registry.py, ADR 0013).
            "workflows.common.viewsets.IndexTaskView",
            "workflows.common.viewsets.UserIndexTaskView",
        ],
        fill_task,
    ),
    # Our step pages (each flow node's "execute"): the same.
    **dict.fromkeys(
        [
            "workflows.sig.views.ScreeningView",
            "workflows.sig.views.ConsentView",
            "workflows.sig.views.DecisionView",
            "workflows.sig.views.PlanView",
            "workflows.sig.views.ApprovePlanView",
            "workflows.sig.views.FollowUpView",
            "workflows.sspf.views.AssessmentView",
            "workflows.sspf.views.ConsentView",
            "workflows.sspf.views.MappingView",
            "workflows.sspf.views.NetworkMeetingView",
            "workflows.sspf.views.PlanPartView",
            "workflows.sspf.views.FollowUpView",
            "workflows.defector.views.InitialCheckView",
            "workflows.defector.views.IntakeView",
            "workflows.defector.views.ConsentView",
            "workflows.defector.views.AssessmentView",
            "workflows.defector.views.ReviewView",
            "workflows.defector.views.ReassessTaskView",
            "workflows.defector.views.LoweringTaskView",
            "workflows.gvi.task_views.NotificationStepView",
            "workflows.gvi.task_views.CallInStepView",
            "workflows.gvi.task_views.MinorNoticeView",
            "workflows.gvi.task_views.ReferralNoticeView",
        ],
        fill_task,
    ),
    # A process of the flow: its page, its cancel action, its chart (the flow's own chart has
    # no parameters).
    f"{VIEWFLOW}.detail.DetailProcessView": fill_process,
    f"{VIEWFLOW}.actions.CancelProcessView": fill_process,
    f"{VIEWFLOW}.chart.FlowChartView": fill_process,
    # The admin's pages of one object of a registered model.
    "django.contrib.admin.options.ModelAdmin.change_view": fill_admin_object,
    "django.contrib.admin.options.ModelAdmin.delete_view": fill_admin_object,
    "django.contrib.admin.options.ModelAdmin.history_view": fill_admin_object,
    "django.contrib.auth.admin.UserAdmin.user_change_password": fill_admin_object,
    "casework.admin.accounts.UserAdmin.user_change_password": fill_admin_object,
    # Four eyes on power (ADR 0014): the request pages of one object, a request's page.
    "casework.admin.accounts.UserAdmin.request_role_view": fill_admin_object,
    "casework.admin.accounts.UserAdmin.request_password_link_view": fill_admin_object,
    # The request pages of the registers changed only by request (legal bases, retention
    # rules): one view of the shared RequestedRegister.
    "casework.admin.four_eyes.RequestedRegister.request_view": fill_admin_object,
    "casework.admin.accounts.OrganisationAdmin.request_kind_view": fill_admin_object,
    "casework.admin.change_requests.AdminChangeRequestAdmin.change_view": fill_admin_object,
    # Single sign-on (ADR 0018): a provider's or a linked identity's approval request.
    "casework.admin.sign_in.SsoAdmin.request_approval_view": fill_admin_object,
}
BY_NAME = {
    "arenden:case": fill_case,
    # The case's team page (ADR 0026): the same cases as the case page.
    "arenden:case_team": fill_case,
    # The person's record of a case (ADR 0027): corrections and protected identity.
    "arenden:record": fill_case,
    # The integration API: a session is no credential there (401 for every role); its own
    # matrix of clients and acting persons is tests/api/test_authorization.py.
    "api:case": fill_case,
    "api:case_actions": fill_case,
    "api:gvi_notification_delivery": _gvi("notifications", "notification_id"),
    "api:task_complete": fill_api_task,
    "api:webhook": literal("/api/v1/webhooks/1/"),
    "arenden:sspf:meeting": fill_meeting,
    "gvi:group": _gvi("groups", "group_id"),
    "gvi:member": _gvi("members", "member_id"),
    "gvi:call_in": _gvi("call_ins", "call_in_id"),
    "gvi:notification": _gvi("notifications", "notification_id"),
    "granskning:event": fill_access_event,
    "granskning:break_glass_review": fill_break_glass,
    "statistik:csv": fill_statistics_csv,
    "admin:view_on_site": fill_admin_shortcut,
    "admin:app_list": literal("/admin/auth/", "/admin/casework/", "/admin/axes/"),
    "arenden:task_manage": fill_task_manage,
    # Register extracts (ADR 0025): the data protection role's pages of one extract.
    **dict.fromkeys(
        [
            "registerutdrag:extract",
            "registerutdrag:withhold",
            "registerutdrag:restore",
            "registerutdrag:again",
            "registerutdrag:release",
            "registerutdrag:download",
        ],
        fill_extract,
    ),
    "password_set": fill_password_set,
    # Single sign-on (ADR 0018): the seeded provider, and one that does not exist.
    "sso_begin": literal("/konto/sso/logga-in/kommunen/", "/konto/sso/logga-in/finns-inte/"),
    # The integration API's clients (four eyes): approval and new-secret requests.
    "admin:casework_apiclient_request_approval": fill_admin_object,
    "admin:casework_apiclient_request_secret": fill_admin_object,
}
BY_ROUTE = {
    # The admin's old object URL (a redirect to the change page), per model.
    **{
        f"admin/{model}/<path:object_id>/": fill_admin_object
        for model in (
            "auth/group",
            "casework/organisation",
            "casework/user",
            "casework/legalbasis",
            "casework/retentionrule",  # retention rules (ADR 0024)
            "casework/adminchangerequest",
            "casework/identityprovider",
            "casework/externalidentity",
            "axes/accessattempt",  # sign-in locks (ADR 0016)
            "casework/apiclient",  # the integration API's clients
            "casework/webhook",  # the API clients' webhooks (ADR 0022)
            "casework/webhookdelivery",
        )
    },
    # The admin's catch-all (unknown admin paths).
    "admin/(?P<url>.*)$": literal("/admin/finns-inte/", "/admin/casework/person/"),
}


def classify(route: Route):
    """The filler of ``route``, ``None`` for one without parameters, or a KeyError."""
    if not route.params:
        return None
    for table, key in ((BY_ROUTE, route.route), (BY_NAME, route.name), (BY_VIEW, route.view)):
        if key in table:
            return table[key]
    raise KeyError(
        f"URL pattern {route.route!r} (name {route.name!r}, view {route.view}) has path "
        f"parameters {route.params} the role x URL matrix cannot fill. Add it to "
        "tests/config/test_url_matrix.py: to BY_VIEW (a family of one view class, e.g. a new "
        "step view: fill_task), BY_NAME (one page, keyed by its URL name) or BY_ROUTE (an "
        "unnamed pattern), with a filler giving one object the role may see and one it may "
        "not (see fill_case)."
    )


# --- Known leaks ---------------------------------------------------------------------------------
#
# (role, URL name — or the route for an unnamed pattern —, method) → the open issue it is
# tolerated for. The test fails when an entry stops leaking: delete it.

KNOWN_LEAKS: dict[tuple[str, str, str], str] = {}


# --- The fixture: the seed, committed for the module --------------------------------------------


@pytest.fixture(scope="module")
def seeded(django_db_setup, django_db_blocker):
    def build() -> Objects:
        started = time.monotonic()
        objects = Objects(url_matrix_seed.build())
        print(f"\nmatrix seed: {time.monotonic() - started:.1f} s")
        return objects

    with committed_seed(
        django_db_blocker, build, DEMO_SIG_CASES=True, DEMO_API_CLIENTS=True
    ) as objects:
        yield objects


# --- Requesting ----------------------------------------------------------------------------------


def _body(response) -> str:
    if getattr(response, "streaming", False):
        raw = b"".join(response.streaming_content)
    else:
        raw = response.content
    text = raw.decode("utf-8", errors="replace")
    return html.unescape(text) + "\n" + response.get("Location", "")


def _request(client: Client, method: str, url: str):
    """One request whose every change is rolled back, cookies included.

    The key store is not wrapped: a data key a request commits there (a registration) is
    an orphan once the request's rows are rolled back, and goes with the test's
    transaction."""
    cookies = {key: morsel.value for key, morsel in client.cookies.items()}
    try:
        with transaction.atomic(using="default"):
            try:
                if method == "GET":
                    return client.get(url), None
                return client.post(url, POST_BODY), None
            except Exception as exc:
                return None, exc
            finally:
                transaction.set_rollback(True, using="default")
    finally:
        client.cookies = SimpleCookie(cookies)


# viewflow's generic pages of a task (all alike but for the node), and the task pages of a
# node the seed has no task of (filled with another node's task: viewflow must not serve
# it): in the default run each role requests a share of these (every pattern by
# ``len(ROLES) // STRIDE`` roles or more), a shared page with one task (the one the role may
# see or the other, by turns); ``URL_MATRIX_FULL=1`` requests all of them as every role, with
# both tasks. Everything else is requested by every role (the run stays near 90 s on two
# cores).
SHARED_VIEWS = {
    f"{VIEWFLOW}.detail.IndexTaskView",
    f"{VIEWFLOW}.detail.UserIndexTaskView",
    f"{VIEWFLOW}.actions.AssignTaskView",
    f"{VIEWFLOW}.actions.UnassignTaskView",
    f"{VIEWFLOW}.actions.UndoTaskView",
    f"{VIEWFLOW}.actions.ReviveTaskView",
    f"{VIEWFLOW}.actions.CancelTaskView",
}
STRIDE = 4


def _shared(route: Route, user) -> bool:
    """Whether the role of ``user`` requests its share of ``route``."""
    if os.environ.get("URL_MATRIX_FULL"):
        return True
    role = ROLES.index(user.username if user else "anonymous")
    return zlib.crc32(route.route.encode()) % STRIDE == role % STRIDE


def targets(objects: Objects, user, role: str) -> list[tuple[str, str, str, tuple[str, ...]]]:
    """(URL name or route, URL, what it is, methods) for every pattern, filled for ``user``.

    A POST to a class-based view without ``post`` is left out: Django's ``View.dispatch``
    answers 405 before anything of the view runs."""
    found = []
    for route in url_patterns():
        filler = classify(route)
        key = route.name or route.route
        if route.view in SHARED_VIEWS and not _shared(route, user):
            continue
        methods = ("GET", "POST") if route.posts else ("GET",)
        filled = [(route.build({}), "")] if filler is None else filler(objects, route, user)
        found += [(key, url, what, methods) for url, what in filled]
    return found


def _check(user, role: str, objects: Objects) -> tuple[dict, int, set[str]]:
    """Every problem of ``user`` (None: anonymous) by (URL key, method), the number of
    requests, and the strings of granted person data the responses showed."""
    forbidden = objects.seed.forbidden(user)
    granted = objects.seed.person_tokens() - set(forbidden)
    shown_granted: set[str] = set()
    client = Client()
    if user is not None:
        client.force_login(user)
    problems: dict[tuple[str, str], list[str]] = defaultdict(list)
    count = 0
    for key, url, what, methods in targets(objects, user, role):
        for method in methods:
            count += 1
            response, exc = _request(client, method, url)
            where = f"{method} {url} ({what or key})"
            if exc is not None:
                problems[(key, method)].append(f"{where}: raised {type(exc).__name__}")
                continue
            if response.status_code >= 500:
                problems[(key, method)].append(f"{where}: answered {response.status_code}")
                continue
            found = url_matrix_seed.tokens(_body(response))
            shown_granted |= found & granted
            shown = sorted({forbidden[t] for t in found if t in forbidden})
            if shown:
                problems[(key, method)].append(
                    f"{where}: {response.status_code} shows {len(shown)}: {', '.join(shown[:5])}"
                    + (" …" if len(shown) > 5 else "")
                )
    return problems, count, shown_granted


# --- The tests -----------------------------------------------------------------------------------


def test_every_url_is_classified():
    """A new URL pattern with path parameters must be added to the table (how: the message)."""
    unclassified = []
    for route in url_patterns():
        try:
            classify(route)
        except KeyError as exc:
            unclassified.append(str(exc.args[0]))
    assert not unclassified, "\n".join(unclassified)
    assert len(url_patterns()) > 300  # viewflow's node URLs are in the walk


@pytest.mark.django_db(databases=DATABASES)
@pytest.mark.parametrize("role", ROLES)
def test_role(seeded, role, settings):
    from casework.models import User

    assert settings.AUDIT_SEALER == "inline"
    # Speed only: sessions in the cookie (no session row to read per request), and the
    # access-log events of the denials committed without waiting for the disk.
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.signed_cookies"
    logging.getLogger("django.request").setLevel(logging.CRITICAL)  # every 403 and 404
    with connections["audit"].cursor() as cursor:
        cursor.execute("SET synchronous_commit TO OFF")
    user = None if role == "anonymous" else User.objects.get(username=role)
    started = time.monotonic()
    problems, count, shown_granted = _check(user, role, seeded)
    print(f"\n{role}: {count} requests in {time.monotonic() - started:.1f} s")
    if user is not None and seeded.seed.case_grants(user)[0]:
        # The control: the pages do show the data the policy grants, so the search works.
        assert shown_granted, f"{role}: no response showed any person data it may see"
    unexpected = []
    for (key, method), found in sorted(problems.items()):
        if (role, key, method) in KNOWN_LEAKS:
            continue
        unexpected.append(f"{key} {method}:\n    " + "\n    ".join(found))
    fixed = [
        f"{entry} ({finding})"
        for entry, finding in KNOWN_LEAKS.items()
        if entry[0] == role and (entry[1], entry[2]) not in problems
    ]
    message = []
    if unexpected:
        message.append(f"{role}: problems (a 500, or data the policy does not grant):")
        message += unexpected
    if fixed:
        message.append(f"{role}: known leaks that no longer happen — delete them from KNOWN_LEAKS:")
        message += fixed
    assert not message, "\n".join(message)
