"""The data subject's register extract (registerutdrag, GDPR art. 15) and its secrecy review.

An ``ExtractRequest`` is made by the data protection role (``casework.roles.DATA_PROTECTION``)
for one person and the requesting organisation. The items are assembled from the live
data whenever they are shown (nothing decrypted is stored while the request is under
review); ``item_keys`` holds the keys of the items the review saw (model label and row
id: no personal data), so a release over data that changed since is refused. A
``WithheldItem`` is one item the secrecy review withholds under OSL, with the provision
cited. On release the document is sealed under the person's data key (``document``):
what was released stays readable to the organisation until the person is erased, and
unreadable after (docs/adr/0025-register-extract.md).
"""

from __future__ import annotations

import uuid

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from casework.fields import EncryptedTextField
from casework.models.accounts import Organisation, User
from casework.models.persons import Person


class ExtractRequest(models.Model):
    """One register extract: asked for, reviewed for secrecy, released."""

    class Status(models.TextChoices):
        REVIEW = "review", _("Secrecy review")
        RELEASED = "released", _("Released")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    person = models.ForeignKey(
        Person, verbose_name=_("person"), on_delete=models.PROTECT, related_name="extracts"
    )
    organisation = models.ForeignKey(
        Organisation,
        verbose_name=_("responsible organisation"),
        on_delete=models.PROTECT,
        related_name="+",
    )
    # ``None``: made by an operator (``manage.py register_extract``).
    requested_by = models.ForeignKey(
        User, verbose_name=_("requested by"), on_delete=models.PROTECT, null=True, related_name="+"
    )
    requested_at = models.DateTimeField(_("requested"), default=timezone.now, editable=False)
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.REVIEW
    )
    # The keys of the items the secrecy review saw ("app.model:pk"): no personal data.
    item_keys = models.JSONField(default=list, editable=False)
    released_by = models.ForeignKey(
        User, verbose_name=_("released by"), on_delete=models.PROTECT, null=True, related_name="+"
    )
    released_at = models.DateTimeField(_("released"), null=True, blank=True)
    # The released document (JSON), sealed under the person's data key.
    document = EncryptedTextField(_("released extract"))

    ENCRYPTED_FIELDS = ("document",)

    class Meta:
        verbose_name = _("register extract")
        verbose_name_plural = _("register extracts")
        ordering = ["-requested_at"]
        indexes = [models.Index(fields=["organisation", "requested_at"])]

    def __str__(self) -> str:
        return f"Extract {self.pk}"


class WithheldItem(models.Model):
    """An item of an extract withheld under secrecy (OSL), with the provision cited.

    ``description`` names the item by its kind and case number only (never its content).
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    request = models.ForeignKey(ExtractRequest, on_delete=models.CASCADE, related_name="withheld")
    item_key = models.CharField(_("item"), max_length=120)
    description = models.CharField(_("description"), max_length=200)
    provision = models.CharField(_("secrecy provision"), max_length=200)
    decided_by = models.ForeignKey(
        User, verbose_name=_("decided by"), on_delete=models.PROTECT, related_name="+"
    )
    decided_at = models.DateTimeField(_("decided"), default=timezone.now, editable=False)

    class Meta:
        verbose_name = _("withheld item")
        verbose_name_plural = _("withheld items")
        ordering = ["decided_at"]
        constraints = [
            models.UniqueConstraint(fields=["request", "item_key"], name="withhelditem_once")
        ]

    def __str__(self) -> str:
        return f"{self.request_id}: {self.item_key}"


__all__ = ["ExtractRequest", "WithheldItem"]
