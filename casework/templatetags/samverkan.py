"""Template helpers of the site shell."""

from __future__ import annotations

import hashlib

from django import template
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.urls import get_script_prefix
from django.utils.translation import get_language

from casework.access_cache import GenerationCache, access_generation
from casework.addresses import SAMPLE_UUID, fill_address, kept_address_parts
from casework.labels import label

register = template.Library()


@register.filter
def menu_key(user) -> str:
    """What a side menu depends on besides the language: who, for which organisation,
    with which permissions (a changed role gives a new key, so a new menu). Kept on the
    user object for as long as its permission cache (``kept_on_user``)."""
    if not getattr(user, "is_authenticated", False):
        return "anonymous"
    from casework.policy.accounts import kept_on_user

    return kept_on_user(user, "_samverkan_menu_key", _menu_key)


def _menu_key(user) -> str:
    permissions = "\n".join(sorted(user.get_all_permissions()))
    digest = hashlib.blake2b(permissions.encode(), digest_size=12).hexdigest()
    return f"{user.pk}:{user.organisation_id}:{digest}"


# The parts of the page shell kept by ``{% shellpart %}``: this process's, each under the
# access generation it was rendered under (docs/adr/0036-fast-pages.md, session 16).
_parts: GenerationCache[str] = GenerationCache(size=2048)


@receiver(setting_changed)
def _settings_changed(**kwargs) -> None:
    # Static and script addresses, languages, templates: a test's settings, not a deploy's.
    _parts.clear()


def _generation(context) -> int | None:
    """The access generation the request's user was read under (``casework.auth``);
    0 for a request without a signed-in user (nothing of an account in the page)."""
    request = context.get("request")
    user = getattr(request, "user", None)
    if not getattr(user, "is_authenticated", False):
        return 0
    generation = getattr(user, "_access_generation", None)
    return access_generation() if generation is None else generation


class ShellPartNode(template.Node):
    def __init__(self, nodelist, name: str, keys) -> None:
        self.nodelist = nodelist
        self.name = name
        self.keys = keys

    def render(self, context) -> str:
        key = (
            self.name,
            get_language(),
            get_script_prefix(),
            *(str(value.resolve(context)) for value in self.keys),
        )
        return _parts.get(key, _generation(context), lambda: self.nodelist.render(context))


@register.tag
def shellpart(parser, token):
    """``{% shellpart "name" key … %}…{% endshellpart %}``: a part of the page shell
    rendered once a process for its name, the keys' values, the language and the script
    prefix, while the access generation stands (any change to an account, a role, an
    organisation renders it anew; a deploy is a new process). Only for markup that is a
    function of these alone: a link list by ``request.user|menu_key``, static addresses.
    Never a CSRF token, a count, the request's path or anything else of the request."""
    bits = token.split_contents()
    if len(bits) < 2 or bits[1][0] not in "\"'" or bits[1][0] != bits[1][-1]:
        raise template.TemplateSyntaxError("{% shellpart %} needs a quoted name first.")
    nodelist = parser.parse(("endshellpart",))
    parser.delete_first_token()
    return ShellPartNode(nodelist, bits[1][1:-1], [parser.compile_filter(b) for b in bits[2:]])


@register.filter
def uses_task_inbox(user) -> bool:
    """A case worker (``casework.policy.can_use_task_inbox``): the absence page's link."""
    from casework import policy

    return policy.can_use_task_inbox(user)


register.filter("label", label)


def _case_address(case_id) -> str:
    from django.urls import reverse

    return reverse("arenden:case", kwargs={"case_id": case_id})


def _case_address_parts() -> tuple[str, ...] | None:
    return kept_address_parts("case", _case_address, (SAMPLE_UUID,))


@register.simple_tag
def case_url(case_id) -> str:
    """``{% url 'arenden:case' case_id %}`` for the rows of a list: a ``<uuid:case_id>``
    path, each case's the same text with its own id, reversed once a process
    (``casework.addresses``), not once a row."""
    parts = _case_address_parts()
    return _case_address(case_id) if parts is None else fill_address(parts, (case_id,))


# One line of the SIG case list (``workflows/case_list.html``): the markup the loop over
# the rows wrote, with the same texts escaped as ``{{ }}`` escaped them.
_CASE_LIST_ROW = (
    "\n        <tr{overdue_class}>\n"
    '          <td><a href="{url}" data-turbo="false">{reference}</a>{culled}</td>\n'
    '          <td><span class="samverkan-status samverkan-status--{status}">{status_label}'
    "</span></td>\n"
    "          <td>{opened_on}</td>\n"
    "          <td>{review_on}{overdue}</td>\n"
    "          <td>{via_label}</td>\n"
    "        </tr>\n      "
)


@register.simple_tag(takes_context=True)
def case_list_rows(context, rows, overdue) -> str:
    """The SIG case list's lines (``CaseRow``), made in Python: a loop of ten variable
    lookups, two conditions and a tag a row cost ~150 function calls a row in the
    template engine (docs/adr/0036-fast-pages.md, session 17). The row texts come from
    ``case_row_texts`` (the language and time zone looked up once), each distinct text
    is escaped once, and the case address is reversed once (session 18). Nothing is kept
    between renders; each text is escaped as the template escaped it."""
    from django.utils.html import conditional_escape
    from django.utils.safestring import mark_safe
    from django.utils.translation import gettext

    from casework.selectors.cases import case_row_texts

    if not rows:
        return ""
    escaped: dict[str, str] = {}

    def once(text: str) -> str:
        value = escaped.get(text)
        if value is None:
            value = escaped[text] = conditional_escape(text)
        return value

    parts = _case_address_parts()
    culled = overdue_note = None
    lines = []
    for row, (status_label, opened_on, review_on, via_label) in zip(
        rows, case_row_texts(rows), strict=True
    ):
        case = row.case
        late = case.pk in overdue
        if case.culled_at and culled is None:
            culled = " " + conditional_escape(gettext("(culled)"))
        if late and overdue_note is None:
            overdue_note = (
                f' <span class="samverkan-overdue">{conditional_escape(gettext("overdue"))}</span>'
            )
        lines.append(
            _CASE_LIST_ROW.format(
                overdue_class=' class="samverkan-row--overdue"' if late else "",
                url=conditional_escape(
                    _case_address(case.pk) if parts is None else fill_address(parts, (case.pk,))
                ),
                reference=conditional_escape(case.reference),
                culled=culled if case.culled_at else "",
                status=once(case.status),
                status_label=once(status_label),
                opened_on=once(opened_on),
                review_on=once(review_on),
                overdue=overdue_note if late else "",
                via_label=once(via_label),
            )
        )
    return mark_safe("".join(lines))  # noqa: S308 - every value above is escaped
