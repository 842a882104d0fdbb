"""Who is calling: the authenticated principal, as far as core needs to know.

The owner model (docs/security.md): the principal that creates an operation owns it.

- an owner reads, cancels and deletes its own operations and lists only those;
- an admin does all of that for every owner's operations and lists them all;
- a waiter (the workflow's identity) resumes waiting methods and reads (Get/Wait) every
  owner's operations, because it polls the children of every owner's chains; it cannot
  cancel or delete other owners' operations, nor list them.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True, slots=True)
class Principal:
    """The caller of an RPC.

    Attributes:
        subject: Stable id of the caller (e.g. a service account email); "" when auth is off.
        admin: Sees and manages every owner's operations.
        waiter: May resume waiting methods (the workflow's identity, or in-process) and read
            every owner's operations.
    """

    subject: str = ""
    admin: bool = False
    waiter: bool = False

    def may_see(self, owner: str) -> bool:
        """Whether an operation owned by ``owner`` is visible (Get, Wait) to this caller."""
        return self.admin or self.waiter or owner == self.subject

    def may_manage(self, owner: str) -> bool:
        """Whether this caller may cancel or delete an operation owned by ``owner``."""
        return self.admin or owner == self.subject


#: The caller when authentication is off. Nothing about it can be verified, so it is
#: trusted like the network it comes from: it owns "" and may resume waiting methods.
ANONYMOUS = Principal(waiter=True)
#: The server itself (embedded waiter, tracker): sees everything and may resume.
INTERNAL = Principal(subject="", admin=True, waiter=True)
