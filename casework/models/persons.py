"""The data subject (``Person``), its guardians and the data keys.

Encrypted fields hold sealed values (``casework.fields``); only
``casework.services`` and ``casework.selectors`` seal and open them. ``DataKey``
lives in a database of its own (alias ``keystore``, see ``casework.routers``).
"""

from __future__ import annotations

import uuid

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from casework.fields import EncryptedDateField, EncryptedTextField


class Person(models.Model):
    """The data subject: a young person, a group member, a defector …

    Name, personnummer, date of birth, address, phone and note are encrypted
    under the person's own data key; birth year, gender, area and protected
    identity are plain because statistics are computed from them without
    decrypting anything. After erasure (``erased_at``) the data key is gone,
    the encrypted columns and the blind index are empty, and only the plain
    statistics columns remain.
    """

    class Gender(models.TextChoices):
        FEMALE = "female", _("Female")
        MALE = "male", _("Male")
        OTHER = "other", _("Other")
        UNKNOWN = "unknown", _("Unknown")

    class Area(models.TextChoices):
        """Örebro's partnership areas (the agreement's priority areas), and the rest."""

        VIVALLA_BARONBACKARNA = "vivalla_baronbackarna", "Vivalla/Baronbackarna"
        VARBERGA_OXHAGEN = "varberga_oxhagen", "Varberga/Oxhagen"
        BRICKEBACKEN = "brickebacken", "Brickebacken"
        OTHER = "other", _("Other area")

    class ProtectedIdentity(models.IntegerChoices):
        NONE = 0, _("None")
        CONFIDENTIALITY_MARKING = 1, _("Confidentiality marking (sekretessmarkering)")
        PROTECTED_REGISTRATION = 2, _("Protected population registration (skyddad folkbokföring)")
        ASSUMED_IDENTITY = 3, _("Assumed identity (fingerade personuppgifter)")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # Encrypted (sealed values; see casework.fields)
    name = EncryptedTextField(_("name"))
    personnummer = EncryptedTextField(_("personal identity number"))
    birth_date = EncryptedDateField(_("date of birth"))
    address = EncryptedTextField(_("address"))
    phone = EncryptedTextField(_("phone"))
    note = EncryptedTextField(_("note"))
    # Blind index of the personnummer (casework.crypto.blind_index); empty once erased.
    personnummer_index = models.IntegerField(
        _("personal identity number index"), null=True, blank=True, editable=False
    )
    # Plain: statistics only
    birth_year = models.PositiveSmallIntegerField(_("birth year"))
    gender = models.CharField(
        _("gender"), max_length=10, choices=Gender.choices, default=Gender.UNKNOWN
    )
    area = models.CharField(_("area"), max_length=30, choices=Area.choices, default=Area.OTHER)
    protected_identity = models.PositiveSmallIntegerField(
        _("protected identity"), choices=ProtectedIdentity.choices, default=ProtectedIdentity.NONE
    )
    created_at = models.DateTimeField(_("created"), default=timezone.now, editable=False)
    updated_at = models.DateTimeField(_("updated"), null=True, blank=True, editable=False)
    erased_at = models.DateTimeField(_("erased"), null=True, blank=True, editable=False)

    ENCRYPTED_FIELDS = ("name", "personnummer", "birth_date", "address", "phone", "note")

    class Meta:
        verbose_name = _("person")
        verbose_name_plural = _("persons")
        indexes = [
            models.Index(fields=["personnummer_index"], name="person_pnr_blind_idx"),
            # The persons with protected identity (the log review's rule reads them all).
            models.Index(
                fields=["id"],
                name="person_protected_idx",
                condition=models.Q(protected_identity__gt=0),
            ),
        ]
        permissions = [("erase_person", _("Can erase a person (destroys the data key)"))]

    def __str__(self) -> str:
        return f"Person {self.pk}"


class DataKey(models.Model):
    """A data key (DEK), wrapped under a key-encryption key; in the key-store database.

    One per owner: a person now, a GVI group later (``owner_type`` names the
    model). The row never holds the key in the clear; ``kek_version`` says which
    KEK of the keyring wraps it. Deleting the row is erasure: everything sealed
    under the key, in the database and in every backup of it, becomes noise.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner_type = models.CharField(max_length=50)
    owner_id = models.UUIDField()
    kek_version = models.PositiveIntegerField()
    wrapped_key = models.BinaryField()
    created_at = models.DateTimeField(default=timezone.now)
    rewrapped_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        default_permissions = ()
        constraints = [
            models.UniqueConstraint(fields=["owner_type", "owner_id"], name="datakey_one_per_owner")
        ]
        indexes = [models.Index(fields=["kek_version", "id"], name="datakey_version_idx")]

    def __str__(self) -> str:
        return f"DataKey {self.pk} (KEK v{self.kek_version})"


class GuardianQuerySet(models.QuerySet):
    def current(self):
        """The guardians whose custody has not ended."""
        return self.filter(ended_at__isnull=True)


class Guardian(models.Model):
    """A guardian (vårdnadshavare) of a minor person; contact data encrypted.

    A guardian whose custody ended (a court decision, a move to foster care …) is not
    deleted: ``ended_at`` is set, and the consent rules and the pages count only the
    current guardians (:meth:`GuardianQuerySet.current`). Corrections of the contact
    data keep the old ciphertext in the change history (``casework_guardian`` is tracked).
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    person = models.ForeignKey(Person, on_delete=models.CASCADE, related_name="guardians")
    name = EncryptedTextField(_("name"))
    phone = EncryptedTextField(_("phone"))
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    ended_at = models.DateTimeField(_("ended"), null=True, blank=True, editable=False)

    objects = GuardianQuerySet.as_manager()

    ENCRYPTED_FIELDS = ("name", "phone")

    class Meta:
        verbose_name = _("guardian")
        verbose_name_plural = _("guardians")

    def __str__(self) -> str:
        return f"Guardian {self.pk}"


__all__ = ["DataKey", "Guardian", "Person"]
