"""Retention rules (gallring) as data: per organisation (or kind of organisation) and
programme, who is responsible for the record set and how long after which event it is
kept. Written only by an approved four-eyes request (``casework.services.retention``)
and by the data migration that seeds the defaults; the table is under change history.
The arithmetic is ``casework.retention``; docs/adr/0024-retention.md."""

from __future__ import annotations

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from casework.models.accounts import Organisation


class RetentionRule(models.Model):
    """How long the cases of an organisation (or of every organisation of a kind) in a
    programme (or in every programme) are kept, and who answers for them.

    The most specific rule decides a case: its owner organisation's own rule for the
    programme, then its own for every programme, then its kind's for the programme, then
    its kind's for every programme. A case no active rule covers is never culled.
    """

    class Event(models.TextChoices):
        LAST_ENTRY = "last_entry", _("Last entry in the case")
        CLOSED = "closed", _("Case closed")

    organisation = models.ForeignKey(
        Organisation,
        verbose_name=_("organisation"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text=_("Empty: every organisation of the type below."),
    )
    organisation_kind = models.CharField(
        _("organisation type"),
        max_length=20,
        choices=Organisation.Kind.choices,
        blank=True,
        help_text=_("The type of organisation whose cases the rule covers (without one)."),
    )
    programme = models.CharField(
        _("programme"),
        max_length=20,
        blank=True,
        help_text=_("A programme's code (sig, sspf, defector); empty: every programme."),
    )
    controller = models.ForeignKey(
        Organisation,
        verbose_name=_("controller (personuppgiftsansvarig)"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text=_("Empty: the case's responsible organisation."),
    )
    event = models.CharField(_("counted from"), max_length=20, choices=Event.choices)
    years = models.PositiveSmallIntegerField(
        _("years kept"), validators=[MinValueValidator(1), MaxValueValidator(100)]
    )
    end_of_following_year = models.BooleanField(
        _("culled during the following year"),
        default=False,
        help_text=_(
            "Culled from 1 January of the year after the years have passed, at the latest "
            "by 31 December."
        ),
    )
    research_exception = models.BooleanField(
        _("keep persons born on the 5th, 15th or 25th"), default=False
    )
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("retention rule")
        verbose_name_plural = _("retention rules")
        ordering = ["organisation_kind", "organisation_id", "programme"]
        default_permissions = ("view", "change")
        constraints = [
            models.UniqueConstraint(
                fields=["organisation", "organisation_kind", "programme"],
                nulls_distinct=False,
                name="retentionrule_one_per_scope",
            ),
            models.CheckConstraint(
                condition=models.Q(organisation__isnull=False) | ~models.Q(organisation_kind=""),
                name="retentionrule_has_scope",
            ),
            models.CheckConstraint(
                condition=models.Q(years__gte=1, years__lte=100), name="retentionrule_years"
            ),
        ]

    def __str__(self) -> str:
        scope = str(self.organisation) if self.organisation_id else self.organisation_kind
        return f"{scope} / {self.programme or '*'}"


__all__ = ["RetentionRule"]
