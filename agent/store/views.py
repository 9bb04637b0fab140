"""What the dashboard and the API read: calls, contacts and checkouts, one page at a time.

Each list is newest first and pages by id (``before_id``: the last id of the previous
page). A list is one query; nothing here writes, and nothing here logs: the caller
writes the processing-log entry for what it shows. The queries live in
``call_views`` and ``people_views``; this module is the one name to import.
"""

from agent.store.call_views import (
    CallDetail,
    CallFilter,
    CallRow,
    count_calls,
    get_call,
    list_calls,
    outcome_counts,
    recording_file,
)
from agent.store.people_views import (
    CheckoutRow,
    ContactDetail,
    ContactRow,
    contact_consents,
    get_contact,
    get_contact_row,
    list_checkouts,
    list_contacts,
)

__all__ = [
    "CallDetail",
    "CallFilter",
    "CallRow",
    "CheckoutRow",
    "ContactDetail",
    "ContactRow",
    "contact_consents",
    "count_calls",
    "get_call",
    "get_contact",
    "get_contact_row",
    "list_calls",
    "list_checkouts",
    "list_contacts",
    "outcome_counts",
    "recording_file",
]
