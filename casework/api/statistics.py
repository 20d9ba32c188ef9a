"""The follow-up statistics the steering group sees (``GET /api/v1/statistics/``).

The same publication as the dashboard (``casework.statistics``): the page's form checks
the period and the selection, ``tables.reports`` builds every programme's tables and
``disclosure`` has suppressed every count in them (a count from 1 to the threshold
minus one shows "<5" and no value, a count hidden to protect another its mark and no
value, a withheld table no rows). Anonymised, so a client may read it without an acting
person; an acting person must be allowed the statistics (``policy.can_view_statistics``).
Every answer and every refusal is logged as the dashboard logs it (``statistics.access``).
"""

from __future__ import annotations

from django.utils import translation
from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response

from casework import policy
from casework.api import schema
from casework.api.problems import Problem, bad_input, forbidden
from casework.api.views import ApiView, Bilingual
from casework.statistics import access, disclosure, periods, registry, tables
from casework.statistics.forms import StatisticsForm

# --- The answer ----------------------------------------------------------------------------------


class CountOut(serializers.Serializer):
    """One count as every output shows it: ``display`` (the count, "<5", the secondary
    mark, ".." or a dash), ``value`` only where it is shown, ``state`` (shown, primary,
    secondary, withheld, none)."""

    label = serializers.CharField()
    display = serializers.CharField()
    value = serializers.IntegerField(allow_null=True)
    state = serializers.CharField()


class MeasureOut(CountOut):
    key = serializers.CharField()


class TableOut(serializers.Serializer):
    key = serializers.CharField()
    title = serializers.CharField()
    heading = serializers.CharField()
    withheld = serializers.BooleanField()
    rows = CountOut(many=True)
    total = CountOut(allow_null=True)


class MedianOut(serializers.Serializer):
    label = serializers.CharField()
    display = serializers.CharField()


class TrendPointOut(serializers.Serializer):
    period = serializers.CharField()
    display = serializers.CharField()
    value = serializers.IntegerField(allow_null=True)
    state = serializers.CharField()


class TrendOut(serializers.Serializer):
    key = serializers.CharField()
    label = serializers.CharField()
    points = TrendPointOut(many=True)


class ProgrammeOut(serializers.Serializer):
    code = serializers.CharField()
    label = serializers.CharField()
    selection_label = serializers.CharField()
    refusal = serializers.CharField()
    overview = MeasureOut(many=True)
    tables = TableOut(many=True)
    medians = MedianOut(many=True)
    trends = TrendOut(many=True)


class StatisticsOut(serializers.Serializer):
    period = serializers.CharField()
    period_kind = serializers.CharField()
    preliminary = serializers.BooleanField()
    selection = serializers.CharField()
    threshold = serializers.IntegerField()
    programmes = ProgrammeOut(many=True)


def _count(row: tables.Row) -> dict:
    return {"label": str(row.label), "display": row.display, "value": row.value, "state": row.state}


def _programme(report: tables.ProgrammeReport) -> dict:
    """A programme's publication as the page shows it: a withheld table without its rows."""
    keys = [measure.key for measure in tables.measures(report.spec)]
    return {
        "code": report.spec.code,
        "label": str(report.spec.label),
        "selection_label": str(report.selection_label),
        "refusal": str(report.refusal),
        "overview": [
            {"key": key, **_count(row)} for key, row in zip(keys, report.overview, strict=False)
        ],
        "tables": [
            {
                "key": table.key,
                "title": str(table.title),
                "heading": str(table.heading),
                "withheld": table.withheld,
                "rows": [] if table.withheld else [_count(row) for row in table.rows],
                "total": None if table.withheld else _count(table.total),
            }
            for table in report.tables
        ],
        "medians": [{"label": str(m.label), "display": m.display} for m in report.medians],
        "trends": [
            {
                "key": trend.key,
                "label": str(trend.label),
                "points": [
                    {"period": point.period.key, **_count(point.row)} for point in trend.points
                ],
            }
            for trend in report.trends
        ],
    }


# --- The operation -------------------------------------------------------------------------------


PARAMETERS = [
    OpenApiParameter(
        "Samverkan-Acting-User",
        OpenApiTypes.STR,
        OpenApiParameter.HEADER,
        required=False,
        description="Optional: the employee the client acts for (then one allowed the "
        "statistics: the steering group).",
    ),
    OpenApiParameter(
        "period",
        OpenApiTypes.STR,
        OpenApiParameter.QUERY,
        pattern=periods.key_pattern(),
        description="A year (2025), a quarter (2025-Q3) or a month (2025-09) that has begun; "
        "by default the running year, as on the page.",
    ),
    OpenApiParameter(
        "selection",
        OpenApiTypes.STR,
        OpenApiParameter.QUERY,
        enum=[value for value, _label in StatisticsForm().fields["selection"].choices],
        description="One area, gender or age band (e.g. gender:female, age:15-17), for a "
        "whole year only; by default (empty) all cases.",
    ),
    OpenApiParameter(
        "programme",
        OpenApiTypes.STR,
        OpenApiParameter.QUERY,
        enum=list(registry.programmes()),
        description="One programme's code; by default every one.",
    ),
]


def _form_errors(data) -> dict[str, list[Bilingual]]:
    """The page form's errors for ``data``, each in Swedish and in English."""
    found: dict[str, list[str]] = {}
    for language in ("sv", "en"):
        with translation.override(language):
            form = StatisticsForm(data)
            form.is_valid()
            found[language] = {name: list(errors) for name, errors in form.errors.items()}
    return Bilingual.paired(found["sv"], found["en"])


class StatisticsView(ApiView):
    """The steering group's follow-up statistics for a period (and a selection): every
    programme's overview, breakdown tables, medians and trends, suppressed as on the
    dashboard. With or without an acting person (then one allowed the statistics)."""

    required_scope = "statistics:read"
    acting_person = False
    purpose = _("API: reading the statistics")

    @extend_schema(
        operation_id="statistics_read",
        summary="The follow-up statistics the steering group sees (small counts suppressed)",
        parameters=PARAMETERS,
        responses={
            200: OpenApiResponse(StatisticsOut, description="Every programme's publication."),
            **schema.problems(400, 401, 403, 409, 429),
        },
    )
    def get(self, request):
        person = request.auth.person
        if person is not None and not policy.can_view_statistics(person):
            raise forbidden(_("The acting person may not see the statistics."))
        data = request.query_params.copy()
        data.setdefault("period", StatisticsForm.default_period())
        form = StatisticsForm(data)
        code = data.get("programme", "")
        if code and code not in registry.programmes():
            self.refuse(person, data)
            raise bad_input({"programme": [_("There is no such programme.")]})
        if not form.is_valid():
            self.refuse(person, data)
            raise bad_input(_form_errors(data))
        period, selection = form.cleaned_data["period"], form.cleaned_data["selection"]
        try:
            reports = tables.reports(period, selection, codes=frozenset([code]) if code else None)
        except disclosure.SelectionRefused as refused:
            self.refuse(person, data)
            # Well-formed, but disclosure control refuses it for this period's numbers
            # (or a month's or a quarter's): the page's refusal, as a conflict.
            raise Problem(
                status.HTTP_409_CONFLICT,
                "selection-refused",
                _("Selection refused"),
                refused.args[0],
            ) from None
        access.log_view(user=person, period=period.key, selection=selection)
        answer = {
            "period": period.key,
            "period_kind": period.kind,
            "preliminary": period.is_current(),
            "selection": selection,
            "threshold": reports[0].threshold if reports else disclosure.threshold(),
            "programmes": [_programme(report) for report in reports],
        }
        return Response(StatisticsOut(answer).data)

    @staticmethod
    def refuse(person, data) -> None:
        """A refused request is logged as the page logs one (its parameters, invalid)."""
        access.log_view(
            user=person,
            period=data.get("period", ""),
            selection=data.get("selection", ""),
            invalid=True,
        )
