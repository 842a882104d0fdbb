"""Who is calling: the authenticated principal, as far as core needs to know."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True, slots=True)
class Principal:
    """The caller of an RPC.

    Attributes:
        subject: Stable id of the caller (e.g. a service account email); "" when auth is off.
        admin: Sees and manages every owner's operations.
        waiter: May resume waiting methods (the workflow's identity, or in-process).
    """

    subject: str = ""
    admin: bool = False
    waiter: bool = False

    def may_see(self, owner: str) -> bool:
        """Whether an operation owned by ``owner`` is visible to this caller."""
        return self.admin or owner == self.subject


#: The caller when authentication is off: owns "" and sees everything owned by "".
ANONYMOUS = Principal()
#: The server itself (embedded waiter, tracker): sees everything and may resume.
INTERNAL = Principal(subject="", admin=True, waiter=True)
