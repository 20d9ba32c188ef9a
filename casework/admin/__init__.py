"""The administrator's side: users and organisations, never case data.

Administrators (Django staff without superuser rights) manage accounts. They
cannot grant superuser rights or single permissions, and cannot change the
roles of their own account: the separation of duties between the people who
hand out access and the people who use it or audit it.

Four eyes on power (docs/adr/0014-four-eyes-on-power.md): the admin's own
forms cannot grant a role that opens case data, the access log or account
management, set a password, change the disclosure fields of a legal basis, add
a legal basis or change an organisation's type — for anyone, superusers
included. Those go through a change request (``casework.services.administration``)
that another administrator approves on the request's page.

One module a subject; importing this package registers every model admin:
``accounts`` (organisations, users), ``legal_bases``, ``change_requests``,
``sign_in`` (single sign-on, sign-in locks), ``api_clients`` (the integration
API's client systems), ``retention`` (retention rules), ``webhooks`` (the clients'
webhooks and their deliveries); ``four_eyes`` holds the request pages they share.
"""

from casework.admin import (
    accounts,
    api_clients,
    change_requests,
    legal_bases,
    retention,
    sign_in,
    webhooks,
)

__all__ = [
    "accounts",
    "api_clients",
    "change_requests",
    "legal_bases",
    "retention",
    "sign_in",
    "webhooks",
]
