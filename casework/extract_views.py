"""The data protection role's pages: register extracts (registerutdrag, GDPR art. 15).

A list with the form that asks for one, an extract's page (its secrecy review, then what
was released and withheld), the review's actions (withhold an item, take a withholding
back, put the extract together again, release it) and the released document's download
as PDF or JSON. Each view maps a form to one service or selector call; the policy is
asked there (and by the application). See docs/adr/0025-register-extract.md.
"""

from __future__ import annotations

from uuid import UUID

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import redirect
from django.urls import path
from django.utils.translation import gettext_lazy as _
from django.views.generic import TemplateView
from viewflow.urls import Application

from casework import policy
from casework.extract_pdf import FORMATS, render
from casework.models import ExtractRequest
from casework.selectors import extracts as selectors
from casework.selectors.persons import PersonErased
from casework.services import extracts as services
from casework.views import PolicyRequiredMixin

ERASED = _("The person has been erased: nothing about them can be read any more.")


class ExtractForm(forms.Form):
    personnummer = forms.CharField(label=_("Personal identity number"), max_length=20)


class WithholdForm(forms.Form):
    item_key = forms.CharField(max_length=120)
    provision = forms.CharField(label=_("Secrecy provision"), max_length=300, required=False)


class ExtractView(PolicyRequiredMixin, TemplateView):
    policy_check = staticmethod(policy.can_produce_register_extract)

    def extract(self) -> ExtractRequest:
        try:
            return selectors.get_extract(user=self.request.user, extract_id=self.kwargs["pk"])
        except ExtractRequest.DoesNotExist:
            raise Http404 from None


class IndexView(ExtractView):
    template_name = "casework/extracts/index.html"

    def get(self, request, *args, **kwargs):
        return self.page(ExtractForm())

    def post(self, request, *args, **kwargs):
        form = ExtractForm(request.POST)
        if form.is_valid():
            try:
                extract = services.request_extract(
                    user=request.user, personnummer=form.cleaned_data["personnummer"]
                )
            except ValidationError as exc:
                form.add_error("personnummer", exc)
            else:
                return redirect("registerutdrag:extract", pk=extract.pk)
        return self.page(form)

    def page(self, form):
        extracts = selectors.list_extracts(user=self.request.user)
        return self.render_to_response(self.get_context_data(form=form, extracts=extracts))


class DetailView(ExtractView):
    template_name = "casework/extracts/extract.html"

    def get(self, request, *args, **kwargs):
        extract = self.extract()
        review = None
        if extract.status == ExtractRequest.Status.REVIEW:
            try:
                review = selectors.review_extract(user=request.user, request=extract)
            except PersonErased:
                messages.error(request, ERASED)
        withheld = {item.item_key: item for item in extract.withheld.all()}
        sections = [
            (title, [(item, withheld.get(item.key)) for item in items])
            for title, items in (review.sections() if review else [])
        ]
        context = self.get_context_data(extract=extract, sections=sections, withheld=withheld)
        return self.render_to_response(context)


class ActionView(ExtractView):
    """One step of the secrecy review (``operation``), then back to the extract's page."""

    http_method_names = ["post"]
    operation = ""
    done = ""

    def post(self, request, *args, **kwargs):
        extract = self.extract()
        try:
            self.run(extract)
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        except PersonErased:
            messages.error(request, ERASED)
        else:
            messages.success(request, self.done)
        return redirect("registerutdrag:extract", pk=extract.pk)

    def run(self, extract: ExtractRequest) -> None:
        user = self.request.user
        if self.operation == "withhold":
            form = WithholdForm(self.request.POST)
            if not form.is_valid():
                raise ValidationError(_("Choose an item and cite the secrecy provision."))
            services.withhold_item(
                user=user,
                extract_id=extract.pk,
                item_key=form.cleaned_data["item_key"],
                provision=form.cleaned_data["provision"],
            )
        elif self.operation == "restore":
            withheld = extract.withheld.filter(pk__in=_uuid(self.request.POST.get("withheld")))
            if not withheld:
                raise ValidationError(_("The item is not withheld."))
            services.restore_item(user=user, extract_id=extract.pk, withheld_id=withheld[0].pk)
        elif self.operation == "again":
            services.reassemble(user=user, extract_id=extract.pk)
        else:
            services.release_extract(user=user, extract_id=extract.pk)


def _uuid(value) -> list:
    try:
        return [UUID(str(value))]
    except ValueError:
        return []


class DownloadView(ExtractView):
    def get(self, request, *args, **kwargs):
        extract = self.extract()
        format = kwargs["format"]
        if format not in FORMATS:
            raise Http404
        try:
            document = selectors.released_document(
                user=request.user, request=extract, format=format
            )
        except (ExtractRequest.DoesNotExist, PersonErased):
            raise Http404 from None
        content_type = "application/pdf" if format == "pdf" else "application/json"
        response = HttpResponse(render(document, format), content_type=content_type)
        response["Content-Disposition"] = (
            f'attachment; filename="registerutdrag-{extract.pk}.{format}"'
        )
        return response


def _action(operation: str, done):
    return ActionView.as_view(operation=operation, done=done)


class ExtractApp(Application):
    """Register extracts: the data protection role's start page and the secrecy review."""

    title = _("Register extracts")
    icon = "folder_shared"
    app_name = "registerutdrag"
    menu_template_name = None
    permission = staticmethod(policy.can_produce_register_extract)

    index_path = path("", IndexView.as_view(), name="index")
    extract_path = path("<uuid:pk>/", DetailView.as_view(), name="extract")
    withhold_path = path(
        "<uuid:pk>/undanta/", _action("withhold", _("The item is withheld.")), name="withhold"
    )
    restore_path = path(
        "<uuid:pk>/ta-tillbaka/",
        _action("restore", _("The item is no longer withheld.")),
        name="restore",
    )
    again_path = path(
        "<uuid:pk>/sammanstall/",
        _action("again", _("The extract has been put together again.")),
        name="again",
    )
    release_path = path(
        "<uuid:pk>/lamna-ut/",
        _action("release", _("The register extract has been released.")),
        name="release",
    )
    download_path = path("<uuid:pk>/utdrag.<str:format>", DownloadView.as_view(), name="download")
